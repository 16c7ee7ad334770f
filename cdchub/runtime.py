"""Starting the runtime's dataflows through Bytewax's own entry point, ``python -m bytewax.run``.

``cdchub run`` starts each dataflow of ``flows/dataflows.py`` as ``settings.runtime.processes`` local processes of
``settings.runtime.workers`` workers each; ``cdchub flow <name>`` runs one flow alone the same way.  The recovery
directory of a dataflow is initialised once with :data:`RECOVERY_PARTITIONS` partitions — the most workers, over all
processes, a dataflow may ever run with (Bytewax cannot change it later).  Every process sets itself up in
:func:`prepare_process`, which the dataflow factories call first.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Iterable
from pathlib import Path
from types import FrameType, TracebackType

from cdchub.settings import Settings, get_settings

log = logging.getLogger(__name__)

RECOVERY_PARTITIONS = 16
#: Bytewax's epoch, whole seconds: state is snapshotted this often; a resume replays at most this much input.
EPOCH_S = 2


def recovery_dir(settings: Settings, name: str) -> Path:
    """``<state dir>/recovery/<dataflow or flow>``, initialised on first use."""
    from bytewax.recovery import init_db_dir

    path = settings.state_dir / "recovery" / name
    if not path.exists():
        path.mkdir(parents=True)
        init_db_dir(path, RECOVERY_PARTITIONS)  # type: ignore[no-untyped-call]
    return path


def bytewax_command(import_str: str, recovery: Path, workers: int, process_id: int | None = None,
                    addresses: list[str] | None = None) -> list[str]:
    """The argv of ``python -m bytewax.run`` for a dataflow factory of ``flows/dataflows.py``."""
    argv = [sys.executable, "-m", "bytewax.run", import_str, "-r", str(recovery), "-s", str(EPOCH_S), "-b", "0",
            "-w", str(workers)]
    if process_id is not None and addresses:
        argv += ["-i", str(process_id), "-a", ";".join(addresses)]
    return argv


def dataflow_commands(name: str, settings: Settings) -> list[list[str]]:
    """The command of each local process of dataflow ``name`` (one, or ``runtime.processes`` talking over
    ``127.0.0.1:<base port + i>``)."""
    rt = settings.runtime
    recovery = recovery_dir(settings, name)
    import_str = f"flows.dataflows:dataflow({name!r})"
    if rt.processes <= 1:
        return [bytewax_command(import_str, recovery, rt.workers)]
    offset = rt.base_port + 10 * list(_dataflow_names()).index(name)
    addresses = [f"127.0.0.1:{offset + i}" for i in range(rt.processes)]
    return [bytewax_command(import_str, recovery, rt.workers, i, addresses) for i in range(rt.processes)]


def _dataflow_names() -> Iterable[str]:
    from flows.dataflows import DATAFLOWS

    return DATAFLOWS


def exec_single(name: str, settings: Settings) -> None:
    """Replace this process with ``python -m bytewax.run`` running flow ``name`` alone."""
    argv = bytewax_command(f"flows.dataflows:single({name!r})", recovery_dir(settings, name), settings.runtime.workers)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, argv)


def prepare_process(role: str, flows: Iterable[str]) -> Settings:
    """Set up a runtime process: die with its supervisor, log like every cdchub process, share the org's limits
    (tokens, concurrency, credits) with the installation, and stop cleanly on SIGTERM and SIGINT."""
    from cdchub.cli.logs import configure_logging
    from cdchub.supervisor import guard_child
    from connectors.common import shared_state
    from connectors.common.health import HEALTH
    from connectors.zoho import budget

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
    from cdchub.cli.logs import silence_native_stderr

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
