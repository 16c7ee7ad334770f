"""Where the simulators find the repo, its cache and its secrets folder, whatever the working directory."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
CACHE_DIR = REPO_ROOT / ".cache"
SECRETS_DIR = CACHE_DIR / "secrets"
SIMULATOR_STATE_DIR = CACHE_DIR / "simulators"
