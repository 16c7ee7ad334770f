"""Settings of the Huilianyi simulator and where its accepted app id / app secret come from.

App id and secret are looked up per value: flag, then ``HUILIANYI_SIM_APP_ID`` / ``HUILIANYI_SIM_APP_SECRET``,
then the files ``huilianyi_app_id`` / ``huilianyi_app_secret`` in the secrets dir (default
``<repo>/.cache/secrets``); generated once into those files (mode 0600) when found nowhere.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path

from infra.simulators.common.secretfiles import SecretSpec, resolve_secrets

SECRET_SPECS = {
    "app_id": SecretSpec("huilianyi_app_id", "HUILIANYI_SIM_APP_ID", lambda: f"hly{secrets.token_hex(8)}"),
    "app_secret": SecretSpec("huilianyi_app_secret", "HUILIANYI_SIM_APP_SECRET", lambda: secrets.token_hex(16)),
}
DEFAULT_CAMPAIGN_IDS = ("4876876000000300001", "4876876000000300002", "4876876000000300003")


@dataclass(frozen=True)
class HuilianyiCredentials:
    app_id: str
    app_secret: str


@dataclass(frozen=True)
class HuilianyiSimConfig:
    credentials: HuilianyiCredentials
    state_dir: Path | None  # None: in memory only
    token_ttl_s: int = 7200
    company_code: str = "HQ01"
    company_name: str = "上海示例科技有限公司"
    driver_interval_s: float = 0.0  # 0: the background driver is off (tick it through /__sim/tick)
    driver_seed: int | None = None
    campaign_ids: tuple[str, ...] = DEFAULT_CAMPAIGN_IDS
    admin_token: str | None = None
    fault_seed: int | None = None

    @property
    def db_path(self) -> Path | None:
        return self.state_dir / "huilianyi.sqlite3" if self.state_dir else None

    @property
    def company_oid(self) -> str:
        """Stable per company code, so it survives restarts without being stored."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"huilianyi-sim/company/{self.company_code}"))


def resolve_credentials(
    secrets_dir: Path, *, app_id: str | None = None, app_secret: str | None = None
) -> HuilianyiCredentials:
    values = resolve_secrets(secrets_dir, SECRET_SPECS, {"app_id": app_id, "app_secret": app_secret})
    return HuilianyiCredentials(**values)
