"""A supervised, detached process: pid file + log (``.cache/run/`` by default), start, readiness wait, stop.

A daemon is ``running`` only when its pid file names a live, non-zombie process whose command line contains
the daemon's ``marker`` (so a recycled pid is never mistaken for ours).  Processes start in their own session
so they outlive the Python process that started them and can be stopped as a group (SIGTERM, wait, SIGKILL).
Linux only (reads ``/proc``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from infra.stack.errors import StackError
from infra.stack.paths import RUN_DIR, ensure_dir
from infra.stack.probes import port_open, port_owner, wait_until

log = logging.getLogger(__name__)

LOG_TAIL_LINES = 40


def _alive(pid: int, marker: str) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state not in ("Z", "X") and marker in cmdline


def _reap(pid: int) -> None:
    """Collect the exit status if ``pid`` is our own child, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    if not path.exists():
        return f"(no log at {path})"
    with path.open(errors="replace") as fh:
        return "".join(deque(fh, maxlen=lines)).rstrip() or "(log is empty)"


@dataclass
class Daemon:
    """One long-running process of the stack.

    ``is_ready`` is the readiness probe (cheap, may be called many times); ``ports`` are checked to be free
    before start, so a port held by something else fails with a clear message, not a bind error in a log.
    """

    name: str
    argv: Sequence[str]
    is_ready: Callable[[], bool]
    marker: str
    ports: Sequence[int] = ()
    cwd: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    ready_timeout_s: float = 60.0
    stop_timeout_s: float = 30.0
    #: Where its pid file and log are.
    run_dir: Path = RUN_DIR

    @property
    def pid_file(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.run_dir / f"{self.name}.log"

    def pid(self) -> int | None:
        """The pid of our live process, or None (a stale pid file is removed)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        if _alive(pid, self.marker):
            return pid
        _reap(pid)
        self.pid_file.unlink(missing_ok=True)
        return None

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return tail(self.log_file, lines)

    def _with_log(self, message: str) -> str:
        return f"{message}\n--- last lines of {self.log_file} ---\n{self.log_tail()}"

    def ensure_started(self) -> str:
        """Start the process unless it runs already, then wait until it is ready; return a one-line detail."""
        pid = self.pid()
        if pid is not None:
            if self.is_ready():
                return f"already running (pid {pid})"
            log.info("%s: pid %s is running but not ready yet; waiting", self.name, pid)
            waited = self._wait_ready(pid)
            return f"was starting (pid {pid}), ready after {waited:.1f}s"
        for port in self.ports:
            if port_open(port):
                raise StackError(
                    f"{self.name}: port {port} is already in use by another process ({port_owner(port)}); "
                    f"stop it or change the port in cdchub settings"
                )
        pid = self._spawn()
        waited = self._wait_ready(pid)
        return f"started (pid {pid}), ready in {waited:.1f}s"

    def _spawn(self) -> int:
        ensure_dir(self.run_dir)
        if self.log_file.exists():
            self.log_file.replace(self.log_file.with_suffix(".log.1"))
        with self.log_file.open("ab") as out:
            try:
                proc = subprocess.Popen(
                    list(self.argv),
                    cwd=self.cwd,
                    env={**os.environ, **self.env},
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as exc:
                raise StackError(f"{self.name}: cannot start {self.argv[0]}: {exc}") from exc
        self.pid_file.write_text(f"{proc.pid}\n")
        log.info("%s: started pid %s, log %s", self.name, proc.pid, self.log_file)
        return proc.pid

    def _wait_ready(self, pid: int) -> float:
        return wait_until(
            self.is_ready,
            self.ready_timeout_s,
            what=f"{self.name} (pid {pid})",
            still_worth_waiting=lambda: _alive(pid, self.marker),
            on_give_up=self._with_log,
        )

    def stop(self) -> bool:
        """SIGTERM the process group, wait ``stop_timeout_s``, then SIGKILL; True if something was stopped."""
        pid = self.pid()
        if pid is None:
            return False
        self._signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout_s
        while time.monotonic() < deadline:
            if self._gone(pid):
                break
            time.sleep(0.2)
        else:
            log.warning(
                "%s: pid %s ignored SIGTERM for %.0fs; sending SIGKILL", self.name, pid, self.stop_timeout_s
            )
            self._signal(pid, signal.SIGKILL)
            wait_until(lambda: self._gone(pid), 10, f"{self.name} after SIGKILL")
        self.pid_file.unlink(missing_ok=True)
        return True

    def _gone(self, pid: int) -> bool:
        _reap(pid)
        return not _alive(pid, self.marker)

    @staticmethod
    def _signal(pid: int, sig: signal.Signals) -> None:
        try:
            os.killpg(pid, sig)  # the daemon leads its own session, so this reaches its children too
        except ProcessLookupError:
            pass
        except PermissionError:
            os.kill(pid, sig)
