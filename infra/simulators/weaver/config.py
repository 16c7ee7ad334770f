"""Settings of the Weaver OA simulator and where its accepted app ids come from.

App ids are looked up in this order: ``--app-id`` flags, ``WEAVER_SIM_APP_IDS`` (comma separated), the file
``weaver_app_id`` in the secrets dir (default ``<repo>/.cache/secrets``, one id per line). If none is found,
one is generated once into that file (mode 0600, never overwriting a file), so the hub and the simulator
agree.
"""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from infra.simulators.common.secretfiles import create_secret_file

log = logging.getLogger(__name__)

APP_ID_FILE = "weaver_app_id"
APP_ID_ENV = "WEAVER_SIM_APP_IDS"


@dataclass(frozen=True)
class DriverSettings:
    """How the simulated approvers behave (changeable at run time through ``PUT /__sim/driver``)."""

    interval_s: float = 5.0  # how often the background task looks for work; 0: only /__sim/tick acts
    delay_s: float = 60.0  # an approver acts this long after a request reached their node
    outcomes: str = "approve"  # "approve": everyone approves; "random": weighted draw below
    reject_rate: float = 0.15
    forward_rate: float = 0.1
    seed: int | None = None
    auto_resubmit: bool = True  # creators simulated by the driver re-submit a rejected request


@dataclass(frozen=True)
class WeaverSimConfig:
    app_ids: tuple[str, ...]
    state_dir: Path | None  # None: in memory only
    token_ttl_s: int = 1800
    max_token_ttl_s: int = 86_400
    utc_offset_h: int = 8
    driver: DriverSettings = DriverSettings()
    admin_token: str | None = None
    fault_seed: int | None = None

    @property
    def db_path(self) -> Path | None:
        return self.state_dir / "weaver.sqlite3" if self.state_dir else None


def generate_app_id() -> str:
    """Real app ids are upper-case UUIDs, e.g. ``EEAA5436-7577-4BE0-8C6C-89E9D88805EA``."""
    return str(uuid.uuid4()).upper()


def resolve_app_ids(secrets_dir: Path, given: list[str] | None = None) -> tuple[str, ...]:
    ids = [a.strip() for a in given or [] if a.strip()]
    if not ids:
        ids = [a.strip() for a in os.environ.get(APP_ID_ENV, "").split(",") if a.strip()]
    path = secrets_dir / APP_ID_FILE
    if not ids and path.exists():
        ids = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not ids:
        value = generate_app_id()
        if not create_secret_file(path, value):  # another process wrote it just now: use theirs
            return resolve_app_ids(secrets_dir)
        log.warning("no Weaver app id configured: generated one into %s", path)
        ids = [value]
    return tuple(dict.fromkeys(ids))
