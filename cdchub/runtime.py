"""Starting the runtime's dataflows through Bytewax's own entry point, ``python -m bytewax.run``.

``cdchub run`` starts each dataflow of ``flows/dataflows.py`` as ``settings.runtime.processes`` local processes of
``settings.runtime.workers`` workers each; ``cdchub flow <name>`` runs one flow alone the same way.  The recovery
directory of a dataflow is initialised once with :data:`RECOVERY_PARTITIONS` partitions — the most workers, over all
processes, a dataflow may ever run with (Bytewax cannot change it later).  Every process sets itself up in
:func:`flows.process.prepare_process`, which the dataflow factories call first.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable
from pathlib import Path

from connectors.common.delivery import SHARDS_FILE, shards_for
from connectors.settings import Settings

log = logging.getLogger(__name__)

RECOVERY_PARTITIONS = 16
#: Bytewax's epoch, whole seconds: state is snapshotted this often; a resume replays at most this much input.
EPOCH_S = 2


def recovery_dir(settings: Settings, name: str, workers: int | None = None) -> Path:
    """``<state dir>/recovery/<dataflow or flow>``, initialised on first use with its delivery shards
    (``delivery.shards_for`` the dataflow's ``workers`` in all, by default the runtime's: one for a dataflow of one
    worker).  A store made before they were chosen keeps the four it was made with — a key must not move to another
    shard while a version of it waits in the old one.  The dataflow reads them from the store
    (``flows/dataflows.py``)."""
    from bytewax.recovery import init_db_dir

    path = settings.state_dir / "recovery" / name
    if not path.exists():
        path.mkdir(parents=True)
        init_db_dir(path, RECOVERY_PARTITIONS)  # type: ignore[no-untyped-call]
        total = workers if workers is not None else settings.runtime.workers * settings.runtime.processes
        (path / SHARDS_FILE).write_text(f"{shards_for(total)}\n")
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
