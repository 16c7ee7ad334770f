"""Secrets of the local stack, generated once into ``.cache/secrets/`` (dir 700, files 600) and never printed.

``core.settings`` reads the same files (``read_secret``); the ZOHO simulator accepts exactly these
credentials.
Values are alphanumeric so they can sit unquoted in DSNs and URLs.
"""

from __future__ import annotations

import os
import secrets
import string
from collections.abc import Callable

from infra.stack.paths import SECRETS_DIR, ensure_dir

_ALNUM = string.ascii_letters + string.digits
_HEX = "0123456789abcdef"


def _random(alphabet: str, n: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


# name -> generator; the ZOHO values follow the shape of real ZOHO OAuth credentials ("1000.<...>").
GENERATORS: dict[str, Callable[[], str]] = {
    "pg_password": lambda: _random(_ALNUM, 32),
    "zoho_client_id": lambda: "1000." + _random(string.ascii_uppercase + string.digits, 30),
    "zoho_client_secret": lambda: _random(_HEX, 42),
    "zoho_refresh_token": lambda: f"1000.{_random(_HEX, 32)}.{_random(_HEX, 32)}",
    "kafka_sasl_password": lambda: _random(_ALNUM, 32),  # the SCRAM user of Kafka's SASL listener
}


def ensure_secrets() -> list[str]:
    """Create every missing secret file; return the names created (never the values)."""
    ensure_dir(SECRETS_DIR, mode=0o700)
    os.chmod(SECRETS_DIR, 0o700)
    created = []
    for name, make in GENERATORS.items():
        path = SECRETS_DIR / name
        if path.exists():
            continue
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(make() + "\n")
        created.append(name)
    return created


def secret(name: str) -> str:
    """The value of a local secret (empty if it was never generated)."""
    path = SECRETS_DIR / name
    return path.read_text().strip() if path.exists() else ""
