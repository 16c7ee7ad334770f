"""Settings of the ZOHO CRM simulator and where its accepted OAuth credentials come from.

Credentials (client id, client secret, refresh token) are looked up, per value, in this order: command-line
flag, environment variable (``ZOHO_SIM_CLIENT_ID``, ``ZOHO_SIM_CLIENT_SECRET``, ``ZOHO_SIM_REFRESH_TOKEN``),
file in the secrets dir (``zoho_client_id``, ``zoho_client_secret``, ``zoho_refresh_token``; default
``<repo>/.cache/secrets``, the same files cdchub's settings read). A value found nowhere is generated once and
written to its file (mode 0600), so the hub and the simulator agree without anyone copying secrets around.
"""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

SECRET_FILES = {
    "client_id": "zoho_client_id",
    "client_secret": "zoho_client_secret",
    "refresh_token": "zoho_refresh_token",
}
SECRET_ENV = {
    "client_id": "ZOHO_SIM_CLIENT_ID",
    "client_secret": "ZOHO_SIM_CLIENT_SECRET",
    "refresh_token": "ZOHO_SIM_REFRESH_TOKEN",
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

    @property
    def db_path(self) -> Path | None:
        return self.state_dir / "zoho.sqlite3" if self.state_dir else None


def _generate(kind: str) -> str:
    if kind == "client_id":
        return "1000." + secrets.token_hex(15).upper()
    if kind == "client_secret":
        return secrets.token_hex(21)
    return f"1000.{secrets.token_hex(16)}.{secrets.token_hex(16)}"


def resolve_credentials(
    secrets_dir: Path,
    *,
    client_id: str | None = None,
    client_secret: str | None = None,
    refresh_token: str | None = None,
) -> ZohoCredentials:
    given = {"client_id": client_id, "client_secret": client_secret, "refresh_token": refresh_token}
    values: dict[str, str] = {}
    for kind, filename in SECRET_FILES.items():
        value = given[kind] or os.environ.get(SECRET_ENV[kind])
        path = secrets_dir / filename
        if not value and path.exists():
            value = path.read_text(encoding="utf-8").strip()
        if not value:
            value = _generate(kind)
            secrets_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            # O_EXCL + 0600: never readable by others, and never overwrite a file another process just wrote.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(value + "\n")
            log.warning("no %s configured: generated one into %s", kind, path)
        values[kind] = value
    return ZohoCredentials(**values)
