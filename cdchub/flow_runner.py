"""Runs a Bytewax flow of ``flows/`` with recovery enabled.

Recovery state (Kafka offsets, operator state) lives in ``<state_dir>/recovery/<flow>`` in a fixed number of SQLite
partitions; on restart Bytewax resumes from the last completed epoch and replays input after it — the sinks are
idempotent, so the replay makes no duplicate writes.
"""

from __future__ import annotations

import importlib
import logging
from datetime import timedelta

from bytewax._bytewax import cli_main, init_db_dir
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
    cli_main(
        flow,
        workers_per_process=1,
        epoch_interval=EPOCH,
        recovery_config=RecoveryConfig(recovery_dir, backup_interval=timedelta(seconds=0)),
    )
