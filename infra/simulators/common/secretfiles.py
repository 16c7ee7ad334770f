"""Credentials a simulator accepts, looked up value by value: flag, then environment variable, then secrets
file.

A value found nowhere is generated once and written to its file (mode 0600, ``O_EXCL`` so a file another
process just wrote is never overwritten: its value is used instead), so the hub's settings, which read the same
files, and the simulator agree without anyone copying secrets around.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SecretSpec:
    filename: str  # in the secrets dir, e.g. ``huilianyi_app_id``
    env: str  # environment variable that overrides the file
    generate: Callable[[], str]  # a fresh value when none is configured anywhere


def create_secret_file(path: Path, value: str) -> bool:
    """Write ``value`` into a new file readable by its owner only; False (nothing written) if it exists already."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value + "\n")
    return True


def resolve_secrets(
    secrets_dir: Path, specs: Mapping[str, SecretSpec], given: Mapping[str, str | None]
) -> dict[str, str]:
    """One value per key of ``specs``: ``given[key]`` (a flag), else env, else the file, else new."""
    values: dict[str, str] = {}
    for key, spec in specs.items():
        value = given.get(key) or os.environ.get(spec.env)
        path = secrets_dir / spec.filename
        if not value and path.exists():
            value = path.read_text(encoding="utf-8").strip()
        if not value:
            value = spec.generate()
            if create_secret_file(path, value):
                log.warning("no %s configured: generated one into %s", spec.filename, path)
            else:  # another process wrote it just now: use theirs
                value = path.read_text(encoding="utf-8").strip()
        values[key] = value
    return values
