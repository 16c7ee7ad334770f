"""The child's side of ``cdchub run``'s supervision, which every cdchub process runs first (``cdchub/supervisor.py``
is the supervisor's side): stay interruptible, and die with the supervisor that started it."""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import signal
import sys

log = logging.getLogger(__name__)

#: Set in a child's environment: the pid of the supervisor it belongs to.
SUPERVISOR_ENV = "CDCHUB_SUPERVISOR_PID"
PR_SET_PDEATHSIG = 1


def interruptible() -> None:
    """Ctrl-C (SIGINT) stops this process even if it was started with SIGINT ignored — as every command started in
    the background of a non-interactive shell (``cmd &``) is, and its children after it; Python then keeps the
    signal ignored, and ``cdchub run`` could not be stopped, nor stop its children."""
    try:
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            signal.signal(signal.SIGINT, signal.default_int_handler)
    except ValueError:  # not the main thread: its owner decides
        pass


def guard_child() -> None:
    """Every cdchub process: interruptible (above); in a supervised child, also die with the supervisor.  Nothing
    else happens in a process nobody supervises."""
    interruptible()
    supervisor = os.environ.get(SUPERVISOR_ENV)
    if not supervisor:
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the supervisor's lock and stop still apply
        log.debug("PR_SET_PDEATHSIG is not available")
    if os.getppid() != int(supervisor):  # the supervisor died before the request took effect
        sys.exit(0)


def pid_alive(pid: int | None) -> bool:
    """Whether a process ``pid`` exists (one of another user's counts: it exists, signals are just not ours)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM
    return True
