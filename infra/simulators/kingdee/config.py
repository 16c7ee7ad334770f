"""Settings of the Kingdee WebAPI simulator and where its accepted credentials come from.

Credentials (acct id, user, password, app id, app secret) are looked up value by value: command-line flag,
environment variable (``KINGDEE_SIM_ACCT_ID``, ``_USER``, ``_PASSWORD``, ``_APP_ID``, ``_APP_SECRET``), file in the
secrets dir (``kingdee_acct_id``, ``kingdee_user``, ``kingdee_password``, ``kingdee_app_id``, ``kingdee_app_secret``;
default ``<repo>/.cache/secrets``). A value found nowhere is generated once into its file (mode 0600, never
overwriting), as the ZOHO simulator does. A generated app id has the official SDK's shape
``<client id>_<client secret obfuscated, 32 chars>`` (see ``signing.py``), so the SDK can sign with it.
"""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from infra.simulators.kingdee.signing import make_app_id

log = logging.getLogger(__name__)

KINDS = ("acct_id", "user", "password", "app_id", "app_secret")
SECRET_FILES = {kind: f"kingdee_{kind}" for kind in KINDS}
SECRET_ENV = {kind: f"KINGDEE_SIM_{kind.upper()}" for kind in KINDS}


@dataclass(frozen=True)
class KingdeeCredentials:
    acct_id: str
    user: str
    password: str
    app_id: str
    app_secret: str


@dataclass(frozen=True)
class KingdeeSimConfig:
    credentials: KingdeeCredentials
    database_url: str
    state_dir: Path | None  # None: sessions in memory only
    session_ttl_s: int = 1200
    sign_window_s: int = 900
    api_user_id: int = 100099
    max_query_limit: int = 2000
    admin_token: str | None = None
    fault_seed: int | None = None

    @property
    def db_path(self) -> Path | None:
        return self.state_dir / "kingdee.sqlite3" if self.state_dir else None


def _generate(kind: str) -> str:
    if kind == "acct_id":
        return secrets.token_hex(12)
    if kind == "user":
        return "cdchub_api"
    if kind == "app_id":
        return make_app_id(str(200000 + secrets.randbelow(800000)), secrets.token_bytes(24))
    return secrets.token_hex(16)


def resolve_credentials(secrets_dir: Path, **given: str | None) -> KingdeeCredentials:
    values: dict[str, str] = {}
    for kind in KINDS:
        value = given.get(kind) or os.environ.get(SECRET_ENV[kind])
        path = secrets_dir / SECRET_FILES[kind]
        if not value and path.exists():
            value = path.read_text(encoding="utf-8").strip()
        if not value:
            value = _generate(kind)
            secrets_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another process wrote it just now: use theirs
                value = path.read_text(encoding="utf-8").strip()
            else:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(value + "\n")
                log.warning("no kingdee %s configured: generated one into %s", kind, path)
        values[kind] = value
    return KingdeeCredentials(**values)
