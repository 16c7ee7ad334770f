"""The supervisor of ``cdchub run``: starts the runtime's processes and makes sure none outlives it.

- **One run per state dir.**  ``<state dir>/run.lock`` is locked (``flock``) by the supervisor, and every child
  inherits the locked file, so the lock is held while *any* of them lives — also after the supervisor was killed
  with -9 and while its children are still stopping.  A second ``cdchub run`` on the same state dir refuses to
  start, naming the pids in ``run.pids`` (it would otherwise share the replication slot and the recovery state).
- **Children die with their supervisor.**  Each child asks the kernel for SIGTERM when its parent dies
  (``PR_SET_PDEATHSIG``, in :func:`guard_child`, which ``cdchub.cli`` runs first), and exits at once if the parent is
  already gone; SIGTERM stops every cdchub process cleanly (capture, pollers and flows resume where they stopped).
- **A child that exits is restarted**, after 1, 2, 4 … 60 s (reset once it ran a minute): capture, pollers and
  dataflows resume where they stopped.  An exit nobody asked for is a bug or an outage and is reported loudly
  (the live view and the child's log); it never stops the other children.
- **Every way of stopping stops them all.**  Ctrl-C (SIGINT), SIGTERM, SIGHUP (the terminal closed) and a closed
  output pipe (``cdchub run | tee`` interrupted): the supervisor stops writing, sends SIGINT to every child, waits,
  and kills what is left after the timeout.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from core.process import SUPERVISOR_ENV, pid_alive

log = logging.getLogger(__name__)

#: Set in a child's environment: the inherited descriptor of the run lock (kept open, never used).
LOCK_FD_ENV = "CDCHUB_RUN_LOCK_FD"


class AlreadyRunning(RuntimeError):
    """Another ``cdchub run`` (or its children, still stopping) uses this state dir."""


RESTART_FIRST_S = 1.0
RESTART_MAX_S = 60.0
#: A child that ran this long before exiting starts its restart backoff over.
RESTART_RESET_S = 60.0


@dataclass
class Restarts:
    """How often a child was restarted, and when the next start is due."""

    count: int = 0
    started_at: float = field(default_factory=time.monotonic)
    due_at: float | None = None
    last_exit: int | None = None


class Supervisor:
    def __init__(self, state_dir: Path, logs_dir: Path, project_root: Path) -> None:
        self.state_dir = state_dir
        self.logs_dir = logs_dir
        self.project_root = project_root
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.commands: dict[str, list[str]] = {}
        self.restarts: dict[str, Restarts] = {}
        self._lock: IO[str] | None = None

    @property
    def pids_path(self) -> Path:
        return self.state_dir / "run.pids"

    def acquire(self) -> None:
        """Take the run lock of the state dir, or raise :class:`AlreadyRunning` naming who holds it."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        lock = (self.state_dir / "run.lock").open("a")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise AlreadyRunning(self._holders()) from None
        self._lock = lock
        self._write_pids()

    def _holders(self) -> str:
        try:
            recorded = json.loads(self.pids_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            recorded = {}
        alive = {name: pid for name, pid in {"supervisor": recorded.get("supervisor"),
                                             **recorded.get("children", {})}.items() if pid and pid_alive(int(pid))}
        listed = ", ".join(f"{name} (pid {pid})" for name, pid in alive.items()) or "unknown processes"
        return (f"another `cdchub run` uses the state dir {self.state_dir}: {listed}. Stop it (Ctrl-C in its "
                f"terminal, or `kill {' '.join(str(p) for p in alive.values())}`) and try again.")

    def _write_pids(self) -> None:
        body = {"supervisor": os.getpid(), "children": {n: p.pid for n, p in self.children.items()}}
        tmp = self.pids_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(body), encoding="utf-8")
        os.replace(tmp, self.pids_path)

    def spawn(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        """Start ``command`` (a cdchub or Bytewax process) as a child that holds the run lock and dies with us."""
        assert self._lock is not None, "acquire() first"
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        logfile = open(self.logs_dir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
        lock_fd = self._lock.fileno()
        proc = subprocess.Popen(
            command, stdout=logfile, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, cwd=self.project_root, start_new_session=True, pass_fds=(lock_fd,),
            env={**os.environ, "PYTHONUNBUFFERED": "1", SUPERVISOR_ENV: str(os.getpid()),
                 LOCK_FD_ENV: str(lock_fd)},
        )
        logfile.close()
        self.children[name] = proc
        self.commands[name] = command
        self.restarts.setdefault(name, Restarts()).started_at = time.monotonic()
        self._write_pids()
        return proc

    def exited(self) -> list[str]:
        return [n for n, p in self.children.items() if p.poll() is not None]

    def rows(self) -> list[tuple[str, int, str, int]]:
        """Each child as the live view shows it: name, pid, state, restarts in its current backoff."""
        now = time.monotonic()
        found = []
        for name, proc in self.children.items():
            state, code = self.restarts[name], proc.poll()
            if code is None:
                text = "running"
            elif state.due_at is not None:
                text = f"exited {code}, restart in {max(0.0, state.due_at - now):.0f}s"
            else:
                text = f"exited {code}"
            found.append((name, proc.pid, text, state.count))
        return found

    def restart_exited(self) -> list[tuple[str, int, float]]:
        """Schedule a restart of every child that exited since the last call (returned as (name, exit code, delay))
        and start those whose time has come."""
        now = time.monotonic()
        found: list[tuple[str, int, float]] = []
        for name, proc in self.children.items():
            code = proc.poll()
            state = self.restarts[name]
            if code is None or state.due_at is not None:
                continue
            if now - state.started_at >= RESTART_RESET_S:
                state.count = 0
            delay = min(RESTART_MAX_S, RESTART_FIRST_S * 2 ** state.count)
            state.count += 1
            state.due_at, state.last_exit = now + delay, code
            log.error("%s exited with code %s; restarting it in %.0fs (restart %d)", name, code, delay, state.count)
            found.append((name, code, delay))
        for name, state in self.restarts.items():
            if state.due_at is not None and now >= state.due_at:
                state.due_at = None
                self.spawn(name, self.commands[name])
        return found

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGINT to every child, wait up to ``timeout_s`` for all of them, SIGKILL what is left."""
        for proc in self.children.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + timeout_s
        for name, proc in self.children.items():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %.0fs; killing it", name, timeout_s)
                proc.kill()
                proc.wait()
        self.release()

    def release(self) -> None:
        if self._lock is not None:
            self.pids_path.unlink(missing_ok=True)
            self._lock.close()
            self._lock = None


def stop_on_hangup() -> None:
    """SIGTERM and SIGHUP stop ``cdchub run`` like Ctrl-C does."""

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGHUP, interrupt)


def silence_stdout() -> None:
    """The reader of our output went away (a closed pipe): write on to nothing, so stopping can finish."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except OSError:
        pass
