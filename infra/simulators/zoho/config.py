"""Settings of the ZOHO CRM simulator and where its accepted OAuth credentials come from.

Credentials (client id, client secret, refresh token) are looked up, per value, in this order: command-line
flag, environment variable (``ZOHO_SIM_CLIENT_ID``, ``ZOHO_SIM_CLIENT_SECRET``, ``ZOHO_SIM_REFRESH_TOKEN``),
file in the secrets dir (``zoho_client_id``, ``zoho_client_secret``, ``zoho_refresh_token``; default
``<repo>/.cache/secrets``, the same files cdchub's settings read). A value found nowhere is generated once and
written to its file (mode 0600), so the hub and the simulator agree without anyone copying secrets around.

``scopes`` are those of the configured client's grant (``scopes.py``; default: all of them). ``search_lag_s`` is
how long ``/search`` trails writes (``search_index.py``; 0: at once, the default of the simulator alone; the local
stack runs it with cdchub's ``zoho_simulator_search_lag_s``, 2 s).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from infra.simulators.common.secretfiles import SecretSpec, resolve_secrets
from infra.simulators.zoho.scopes import FULL_ACCESS

SECRET_SPECS = {
    "client_id": SecretSpec(
        "zoho_client_id", "ZOHO_SIM_CLIENT_ID", lambda: "1000." + secrets.token_hex(15).upper()
    ),
    "client_secret": SecretSpec("zoho_client_secret", "ZOHO_SIM_CLIENT_SECRET", lambda: secrets.token_hex(21)),
    "refresh_token": SecretSpec(
        "zoho_refresh_token",
        "ZOHO_SIM_REFRESH_TOKEN",
        lambda: f"1000.{secrets.token_hex(16)}.{secrets.token_hex(16)}",
    ),
}


@dataclass(frozen=True)
class ZohoCredentials:
    client_id: str
    client_secret: str
    refresh_token: str


@dataclass(frozen=True)
class ZohoSimConfig:
    credentials: ZohoCredentials
    state_dir: Path | None  # None: in memory only
    token_ttl_s: int = 3600
    public_url: str | None = None  # api_domain handed out with tokens; default: the URL the client called
    utc_offset: str = "+08:00"
    max_concurrency: int = 5
    daily_credits: int = 50_000
    tokens_per_window: int = 10
    token_window_s: int = 600
    integration_user: str = "CDC Hub Integration"
    admin_token: str | None = None
    fault_seed: int | None = None
    scopes: tuple[str, ...] = FULL_ACCESS
    search_lag_s: float = 0.0

    @property
    def db_path(self) -> Path | None:
        return self.state_dir / "zoho.sqlite3" if self.state_dir else None


def resolve_credentials(
    secrets_dir: Path,
    *,
    client_id: str | None = None,
    client_secret: str | None = None,
    refresh_token: str | None = None,
) -> ZohoCredentials:
    given = {"client_id": client_id, "client_secret": client_secret, "refresh_token": refresh_token}
    return ZohoCredentials(**resolve_secrets(secrets_dir, SECRET_SPECS, given))
