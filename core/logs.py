"""Where every cdchub process's output goes: log handlers, quiet third-party loggers, and native code's stderr.

Two kinds of process log differently:

- **processes** (the capture, the pollers, the dataflows, the console, ``run``'s supervisor, ``up``) log every line
  with its time, logger and level, plainly, to stderr — usually a file under ``.cache/run``;
- **interactive commands** (``trace``, ``replay``, ``status`` …) log warnings, and cdchub's own information, through
  rich's handler when stderr is a terminal.

Both keep third-party chatter out (``httpx``'s request lines, the schema registry client's, librdkafka's) unless
``-v`` asks for it.  Native code writes straight to file descriptor 2 — Bytewax's Rust panic messages and
backtraces, librdkafka's ``CONFWARN``/``GETPID`` lines — below Python's logging;
:func:`silence_native_stderr` points that descriptor at ``/dev/null`` while Python's own output (``sys.stderr``,
these handlers, rich) keeps going to where stderr went.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: Loggers of libraries whose INFO lines are one per HTTP request or client event: WARNING unless ``-v``.
#: ``httpx2`` is the schema registry client's httpx (confluent-kafka); ``librdkafka`` is where Kafka clients given
#: ``"logger": logging.getLogger("librdkafka")`` log (warnings such as CONFWARN included: ERROR unless ``-v``).
QUIET_LOGGERS = ("httpx", "httpx2", "httpcore", "urllib3", "authlib", "confluent_kafka", "kafka")
LIBRDKAFKA_LOGGER = "librdkafka"

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record comes (it is swapped while native output is silenced)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def _handler(interactive: bool) -> logging.Handler:
    if interactive and sys.stderr.isatty():
        from rich.console import Console
        from rich.logging import RichHandler

        # a Console without a file writes to sys.stderr as it is at each write
        return RichHandler(console=Console(stderr=True), show_path=False, log_time_format="[%X]")
    handler = _CurrentStderr()
    handler.setFormatter(logging.Formatter(_FORMAT))
    return handler


def configure_logging(verbose: bool = False, *, interactive: bool = False) -> None:
    """Log like every cdchub process (see the module doc); ``verbose``: debug lines and third-party chatter too.
    Calling it again replaces the handler it installed before (not other handlers, e.g. pytest's)."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_cdchub", False)]:
        root.removeHandler(old)
    handler = _handler(interactive)
    handler._cdchub = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    if interactive:
        root.setLevel(logging.INFO if verbose else logging.WARNING)
        logging.getLogger("cdchub").setLevel(logging.DEBUG if verbose else logging.INFO)
    else:
        root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.WARNING)
    logging.getLogger(LIBRDKAFKA_LOGGER).setLevel(logging.DEBUG if verbose else logging.ERROR)


def _stderr_is_fd2() -> bool:
    try:
        return sys.stderr is not None and sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):  # replaced by something without a descriptor (a test's capture)
        return False


def silence_native_stderr() -> Callable[[], None]:
    """Point file descriptor 2 at ``/dev/null``, and ``sys.stderr`` at a copy of what it was: native code's writes
    (Rust panics, librdkafka) are dropped, Python's output goes on as before.  Returns the function that undoes it.
    Does nothing when ``sys.stderr`` is not descriptor 2 (someone else already captures it)."""
    if not _stderr_is_fd2():
        return lambda: None
    previous = sys.stderr
    previous.flush()
    kept = os.dup(2)
    sys.stderr = os.fdopen(kept, "w", buffering=1, encoding=getattr(previous, "encoding", None) or "utf-8",
                           errors="backslashreplace")
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    os.close(null)

    def restore() -> None:
        replacement = sys.stderr
        replacement.flush()
        os.dup2(kept, 2)
        sys.stderr = previous
        replacement.close()

    return restore


@contextmanager
def native_stderr_silenced(enabled: bool = True) -> Iterator[None]:
    """:func:`silence_native_stderr` for the duration of a block (nothing when not ``enabled``)."""
    restore = silence_native_stderr() if enabled else (lambda: None)
    try:
        yield
    finally:
        restore()
