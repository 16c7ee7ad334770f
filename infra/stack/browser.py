"""Headless Chromium for the web console's end-to-end test: Debian's ``chromium`` and ``chromium-driver``, and a
small CJK font (``fonts-wqy-microhei``) so that screenshots show Chinese names as text rather than boxes.

Installed by the project itself, idempotently and without a prompt (CI runs as root with no standard input): nothing
happens when both binaries are there; otherwise ``apt-get install`` runs (after ``apt-get update`` if the package
lists do not know the packages yet).  Browser builds downloaded by other tools (Selenium Manager, Playwright) cannot
be fetched on the project's closed network, so the system chromedriver is used.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from infra.stack.errors import StackError

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CJK_FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
PACKAGES = ("chromium", "chromium-driver", "fonts-wqy-microhei")
APT_TIMEOUT_S = 900


def _apt(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["apt-get", "-y", "-q", *args], stdin=subprocess.DEVNULL, capture_output=True, text=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}, timeout=APT_TIMEOUT_S,
    )


def ensure_chromium() -> tuple[Path, Path]:
    """The paths of Chromium and chromedriver, installing the packages with apt-get when anything is missing."""
    if CHROMIUM.exists() and CHROMEDRIVER.exists() and CJK_FONT.exists():
        return CHROMIUM, CHROMEDRIVER
    if shutil.which("apt-get") is None:
        raise StackError(f"{CHROMIUM}, {CHROMEDRIVER} or {CJK_FONT} is missing and there is no apt-get to install "
                         f"{' and '.join(PACKAGES)}; install them with the system's package manager")
    done = _apt("install", "--no-install-recommends", *PACKAGES)
    if done.returncode != 0:  # a fresh machine's package lists may not know the packages yet
        update = _apt("update")
        if update.returncode != 0:
            raise StackError(f"apt-get update failed (exit {update.returncode}): {update.stderr.strip()[-800:]}")
        done = _apt("install", "--no-install-recommends", *PACKAGES)
    if done.returncode != 0:
        raise StackError(f"apt-get install {' '.join(PACKAGES)} failed (exit {done.returncode}; root is needed): "
                         f"{done.stderr.strip()[-800:]}")
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER, CJK_FONT) if not p.exists()]
    if missing:
        raise StackError(f"apt-get installed {' '.join(PACKAGES)} but {', '.join(missing)} is still missing")
    return CHROMIUM, CHROMEDRIVER
