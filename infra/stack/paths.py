"""Where the local stack keeps its files: all under ``.cache/`` (git-ignored), so a second start is fast."""

from __future__ import annotations

from pathlib import Path

from core.settings import CACHE_DIR, PROJECT_ROOT, SECRETS_DIR

INFRA_DIR = PROJECT_ROOT / "infra"
RUN_DIR = CACHE_DIR / "run"  # pid files, logs and the stack lock
KAFKA_DIR = CACHE_DIR / "kafka"
REGISTRY_DIR = CACHE_DIR / "registry"

__all__ = [
    "CACHE_DIR",
    "INFRA_DIR",
    "KAFKA_DIR",
    "PROJECT_ROOT",
    "REGISTRY_DIR",
    "RUN_DIR",
    "SECRETS_DIR",
    "ensure_dir",
]


def ensure_dir(path: Path, mode: int = 0o755) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=mode)
    return path
