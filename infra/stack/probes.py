"""Small readiness probes: is a TCP port taken, who holds it, does a URL answer, wait for a condition.

Readiness is always a polled condition with a deadline, never a fixed sleep.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable

import httpx

from infra.stack.errors import StackError


def port_open(port: int, host: str = "127.0.0.1", timeout_s: float = 0.5) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def port_owner(port: int) -> str:
    """Best-effort description of the process listening on ``port`` (from ``ss``), for error messages."""
    if not shutil.which("ss"):
        return "unknown process"
    out = subprocess.run(
        ["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True, stdin=subprocess.DEVNULL
    ).stdout.strip()
    return out.split("users:", 1)[-1].strip("()") if "users:" in out else (out or "unknown process")


def http_status(url: str, timeout_s: float = 2.0) -> int | None:
    """The HTTP status of ``GET url``, or None when nothing answers."""
    try:
        return httpx.get(url, timeout=timeout_s).status_code
    except httpx.HTTPError:
        return None


def wait_until(
    condition: Callable[[], bool],
    timeout_s: float,
    what: str,
    still_worth_waiting: Callable[[], bool] = lambda: True,
    on_give_up: Callable[[str], str] = lambda msg: msg,
    interval_s: float = 0.25,
) -> float:
    """Poll ``condition`` until it holds; return the seconds waited.

    Gives up early when ``still_worth_waiting`` turns false (e.g. the process died), else at the deadline; the
    error message is passed through ``on_give_up`` so callers can append the component's log.
    """
    start = time.monotonic()
    deadline = start + timeout_s
    while True:
        if condition():
            return time.monotonic() - start
        if not still_worth_waiting():
            raise StackError(on_give_up(f"{what}: the process exited before it became ready"))
        if time.monotonic() >= deadline:
            raise StackError(on_give_up(f"{what}: not ready after {timeout_s:.0f}s"))
        time.sleep(interval_s)
        interval_s = min(interval_s * 1.5, 0.5)
