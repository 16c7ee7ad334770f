"""The console user's password: from the settings (``CDCHUB_CONSOLE__PASSWORD`` or the secrets file), or generated
once into the secrets file (mode 600) when there is none.  The value is never printed or logged; only where the file
is.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from core.settings import SECRETS_DIR, ConsoleSettings

PASSWORD_FILE = "console_password"


def console_password(settings: ConsoleSettings, secrets_dir: Path = SECRETS_DIR) -> tuple[str, Path | None]:
    """The password, and the file it was generated into (None when it was already set)."""
    configured = settings.password.get_secret_value()
    if configured:
        return configured, None
    path = secrets_dir / PASSWORD_FILE
    if path.exists():  # written since the settings were read
        existing = path.read_text(encoding="utf-8").strip()
        if existing:
            return existing, None
    secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    password = secrets.token_urlsafe(18)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(password + "\n")
    os.chmod(path, 0o600)
    return password, path
