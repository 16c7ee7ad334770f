"""Settings of the Kingdee WebAPI simulator and where its accepted credentials come from.

Credentials (acct id, user, password, app id, app secret) are looked up value by value: command-line flag,
environment variable (``KINGDEE_SIM_ACCT_ID``, ``_USER``, ``_PASSWORD``, ``_APP_ID``, ``_APP_SECRET``), file in the
secrets dir (``kingdee_acct_id``, ``kingdee_user``, ``kingdee_password``, ``kingdee_app_id``, ``kingdee_app_secret``;
default ``<repo>/.cache/secrets``). A value found nowhere is generated once into its file (mode 0600, never
overwriting), as the ZOHO simulator does. A generated app id has the official SDK's shape
``<client id>_<client secret obfuscated, 32 chars>`` (see ``signing.py``), so the SDK can sign with it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from infra.simulators.common.secretfiles import SecretSpec, resolve_secrets
from infra.simulators.kingdee.account_forms import STRICT, AccountForms
from infra.simulators.kingdee.signing import make_app_id


def _spec(kind: str, generate: Callable[[], str]) -> SecretSpec:
    return SecretSpec(f"kingdee_{kind}", f"KINGDEE_SIM_{kind.upper()}", generate)


SECRET_SPECS = {
    "acct_id": _spec("acct_id", lambda: secrets.token_hex(12)),
    "user": _spec("user", lambda: "cdchub_api"),
    "password": _spec("password", lambda: secrets.token_hex(16)),
    "app_id": _spec("app_id", lambda: make_app_id(str(200000 + secrets.randbelow(800000)), secrets.token_bytes(24))),
    "app_secret": _spec("app_secret", lambda: secrets.token_hex(16)),
}


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
    #: The account's form set-up (required fields, coding rules): ``account_forms.STRICT`` unless told otherwise.
    forms: AccountForms = STRICT

    @property
    def db_path(self) -> Path | None:
        return self.state_dir / "kingdee.sqlite3" if self.state_dir else None


def resolve_credentials(secrets_dir: Path, **given: str | None) -> KingdeeCredentials:
    return KingdeeCredentials(**resolve_secrets(secrets_dir, SECRET_SPECS, given))
