"""Inside a dataflow process: what it does before its dataflow runs (:func:`prepare_process`) and how it stops
(:func:`stop_quietly`).  ``cdchub/runtime.py`` builds the processes' command lines; this is their side."""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Iterable
from types import FrameType, TracebackType

from connectors.settings import Settings, get_settings

log = logging.getLogger(__name__)


def prepare_process(role: str, flows: Iterable[str]) -> Settings:
    """Set up a runtime process: die with its supervisor, log like every cdchub process, share the org's limits
    (tokens, concurrency, credits) with the installation, and stop cleanly on SIGTERM and SIGINT."""
    from connectors.common import shared_state
    from connectors.common.health import HEALTH
    from connectors.zoho import budget
    from core.logs import configure_logging
    from core.process import guard_child

    guard_child()
    configure_logging()
    settings = get_settings()
    shared_state.share(settings.state_dir)
    budget.enable(settings.state_dir, role)
    stop_quietly(role)
    HEALTH.start(settings.state_dir, role, list(flows))
    log.info("%s: running %s (pid %d)", role, ", ".join(flows), os.getpid())
    return settings


def stop_quietly(role: str) -> None:
    """SIGTERM and SIGINT stop this dataflow process with one log line instead of a Rust panic and two tracebacks.

    Why Bytewax panics: with one worker in the process (``-w 1``, the default) the worker runs on the main thread, so
    the interrupt is raised inside whatever step runs then; Bytewax turns a step's exception into a panic of the
    worker (the panic hook prints it, with a backtrace when ``RUST_BACKTRACE`` is set), catches it and re-raises it as
    a ``BytewaxRuntimeError``, which ``python -m bytewax.run`` leaves uncaught.  (With more workers the interrupt is
    taken by the main thread, which stops the workers without a panic and raises ``KeyboardInterrupt``.)  There is no
    way to stop a one-worker run without that panic, and none is needed: recovery makes stopping at any point safe
    (the next run resumes from the last epoch, the sinks are idempotent).  So on the first stop signal this process
    logs that it stops, drops what native code writes to stderr from then on (the panic), and ends quietly with exit
    code 0: the entry point's ``cli_main`` is wrapped to catch the interrupt it raises."""
    from core.logs import silence_native_stderr

    stopping: list[str] = []

    def stop(signum: int, _frame: FrameType | None) -> None:
        if not stopping:
            stopping.append(signal.Signals(signum).name)
            log.info("%s: stopping (%s)", role, stopping[0])
            silence_native_stderr()
        raise KeyboardInterrupt

    def stopped(exc: BaseException) -> None:
        if any(isinstance(e, KeyboardInterrupt) for e in _causes(exc)):
            log.info("%s: stopped (%s); the next start resumes from the last epoch", role, stopping[0])
        else:
            log.warning("%s: stopped (%s) with an error: %s: %s", role, stopping[0], type(exc).__name__, exc)

    entry = sys.modules.get("__main__")
    spec = getattr(entry, "__spec__", None)
    run = getattr(entry, "cli_main", None)
    if entry is not None and spec is not None and spec.name == "bytewax.run" and callable(run):
        def cli_main(*args: object, **kwargs: object) -> None:
            try:
                run(*args, **kwargs)
            except BaseException as exc:
                if not stopping:
                    raise
                stopped(exc)

        entry.cli_main = cli_main  # type: ignore[attr-defined]  # looked up when the entry point calls it

    hook = sys.excepthook

    def excepthook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if stopping:  # stopped while the dataflow was being built
            stopped(exc)
        else:
            hook(kind, exc, tb)

    sys.excepthook = excepthook
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def _causes(exc: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in found:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found
