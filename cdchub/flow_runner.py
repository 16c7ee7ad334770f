"""Runs a Bytewax flow of ``flows/`` with recovery enabled.

Recovery state (Kafka offsets, operator state) lives in ``<state_dir>/recovery/<flow>`` in a fixed number of SQLite
partitions; on restart Bytewax resumes from the last completed epoch and replays input after it — the sinks are
idempotent, so the replay makes no duplicate writes.
"""

from __future__ import annotations

import importlib
import logging
import signal
from datetime import timedelta
from types import FrameType

from bytewax._bytewax import cli_main, init_db_dir
from bytewax.errors import BytewaxRuntimeError
from bytewax.recovery import RecoveryConfig

from cdchub.settings import Settings

log = logging.getLogger(__name__)

#: The most worker processes a flow will ever run with (Bytewax cannot change it after the first run).
RECOVERY_PARTITIONS = 4
EPOCH = timedelta(seconds=2)


def run_flow(name: str, settings: Settings) -> None:
    module = importlib.import_module(f"flows.{name}")
    flow = module.build_flow(settings)
    recovery_dir = settings.state_dir / "recovery" / name
    if not recovery_dir.exists():
        recovery_dir.mkdir(parents=True)
        init_db_dir(recovery_dir, RECOVERY_PARTITIONS)
    log.info("running flow %s (recovery in %s)", name, recovery_dir)
    stopping: list[int] = []

    def stop(signum: int, _frame: FrameType | None) -> None:
        # Bytewax surfaces the interrupt as an error of whichever step was running; recovery makes stopping at
        # any point safe (the next run resumes from the last epoch, and the sinks are idempotent).
        stopping.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        cli_main(
            flow,
            workers_per_process=1,
            epoch_interval=EPOCH,
            recovery_config=RecoveryConfig(recovery_dir, backup_interval=timedelta(seconds=0)),
        )
    except (BytewaxRuntimeError, KeyboardInterrupt):
        if not stopping:
            raise
        log.info("flow %s stopped by signal %d; the next run resumes from its recovery state", name, stopping[0])
