"""What each runtime process says about its flows, for ``cdchub status``, the metrics and the console.

The steps of a dataflow report into the process-wide :data:`HEALTH` (messages read per worker, commands written,
dead letters, the commands retrying from state with since when and their last error); a thread writes it every
``WRITE_EVERY_S`` to ``<state dir>/runtime/<role>-<pid>.json``, and removes the file when the process stops
cleanly.  A reader (:func:`read_reports`) calls a process alive when its file is fresh and its pid runs.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import statistics
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.process import pid_alive

WRITE_EVERY_S = 2.0
#: Latencies kept per flow (source change → applied in the target) and how far back they count.
LATENCIES_KEPT = 500
LATENCY_WINDOW_MS = 120_000
#: A report older than this is stale (its process hangs, or died without removing it).
STALE_AFTER_S = 20.0
RUNTIME = "runtime"
#: How the delivery step names the error of a command that waits for an access token (``TokenUnavailable``).
TOKEN_WAIT = "TokenUnavailable"


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class FlowHealth:
    read: int = 0
    written: int = 0
    dead_letters: int = 0
    last_read_ms: int | None = None
    last_written_ms: int | None = None
    last_error: str | None = None
    last_error_ms: int | None = None
    #: Messages read per worker thread.
    workers: dict[str, int] = field(default_factory=dict)
    #: Commands retrying from state: key → (failing since, epoch ms; last error).
    retrying: dict[str, tuple[int, str]] = field(default_factory=dict)
    #: (applied at, latency) of the last writes, epoch ms.
    latencies: deque[tuple[int, int]] = field(default_factory=lambda: deque(maxlen=LATENCIES_KEPT))

    def summary(self) -> dict[str, Any]:
        body = asdict(self)
        retrying = body.pop("retrying")
        body.pop("latencies")
        body["retrying"] = len(retrying)
        body["retrying_since_ms"] = min((since for since, _ in retrying.values()), default=None)
        #: of those, the commands that only wait for an access token (a refused or rationed refresh)
        body["waiting_for_token"] = sum(1 for _, error in retrying.values() if error.startswith(TOKEN_WAIT))
        floor = _now_ms() - LATENCY_WINDOW_MS
        #: latencies of the writes of the last two minutes (ms), for views that add several flows up
        body["recent_latencies_ms"] = [ms for at, ms in self.latencies if at >= floor]
        return body


def percentile(values: list[int] | list[float], q: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return float(values[0])
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


class Health:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.flows: dict[str, FlowHealth] = {}
        self.role: str | None = None
        self.started_ms = _now_ms()
        self._path: Path | None = None

    def _flow(self, flow: str) -> FlowHealth:
        found = self.flows.get(flow)
        if found is None:
            found = self.flows[flow] = FlowHealth()
        return found

    def read(self, flow: str, count: int) -> None:
        with self._lock:
            h = self._flow(flow)
            h.read += count
            h.last_read_ms = _now_ms()
            worker = threading.current_thread().name
            h.workers[worker] = h.workers.get(worker, 0) + count

    def delivered(self, flow: str, written: list[str], failing: dict[str, tuple[float, str]],
                  given_up: list[str], latencies_ms: list[int] | None = None) -> None:
        """One delivery attempt: the keys written (and their source-to-target latencies), those still failing
        (since when, error), those given up."""
        with self._lock:
            h = self._flow(flow)
            now = _now_ms()
            if written:
                h.written += len(written)
                h.last_written_ms = now
            for ms in latencies_ms or []:
                h.latencies.append((now, max(0, ms)))
            for key in (*written, *given_up):
                h.retrying.pop(key, None)
            for key, (since, error) in failing.items():
                # a command waiting for an access token reports "since now" at each attempt (the wait is not held
                # against its retry budget): keep when it first failed, which is what "retrying since" means
                first = h.retrying.get(key, (int(since * 1000), ""))[0]
                h.retrying[key] = (min(first, int(since * 1000)), error)
                h.last_error, h.last_error_ms = error, now

    def dead_letter(self, flow: str, error: str) -> None:
        with self._lock:
            h = self._flow(flow)
            h.dead_letters += 1
            h.last_error, h.last_error_ms = error, _now_ms()

    def report(self) -> dict[str, Any]:
        with self._lock:
            return {"role": self.role, "pid": os.getpid(), "started_ms": self.started_ms, "updated_ms": _now_ms(),
                    "flows": {name: h.summary() for name, h in sorted(self.flows.items())}}

    def start(self, state_dir: Path, role: str, flows: list[str]) -> None:
        """Report for ``role`` (a dataflow, or a flow run alone) from now on."""
        self.role = role
        with self._lock:
            for flow in flows:
                self._flow(flow)
        self._path = state_dir / RUNTIME / f"{role}-{os.getpid()}.json"
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self.write()
        threading.Thread(target=self._loop, name="health", daemon=True).start()
        atexit.register(self._remove)

    def write(self) -> None:
        if self._path is None:
            return
        tmp = self._path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.report(), ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, self._path)

    def _loop(self) -> None:
        while True:
            time.sleep(WRITE_EVERY_S)  # the reporter's own thread, not a dataflow step
            with contextlib.suppress(OSError):  # a full disk must not stop the dataflow; the report goes stale
                self.write()

    def _remove(self) -> None:
        if self._path is not None:
            self._path.unlink(missing_ok=True)


HEALTH = Health()


def read_reports(state_dir: Path) -> list[dict[str, Any]]:
    """Every runtime process's last report, with ``alive`` (fresh and its pid running)."""
    reports = []
    now = _now_ms()
    for path in sorted((state_dir / RUNTIME).glob("*.json")):
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        body["alive"] = now - int(body.get("updated_ms") or 0) < STALE_AFTER_S * 1000 and pid_alive(
            int(body.get("pid") or 0))
        if not body["alive"] and now - int(body.get("updated_ms") or 0) > 24 * 3600 * 1000:
            path.unlink(missing_ok=True)  # a day-old report of a dead process: forget it
            continue
        reports.append(body)
    return reports
