"""Headless Chromium for the web console's end-to-end test: Debian's ``chromium`` and ``chromium-driver``, and a
small CJK font (``fonts-wqy-microhei``) so that screenshots show Chinese names as text rather than boxes.

Installed by the project itself, idempotently and without a prompt (CI runs as root with no standard input): nothing
happens when both binaries are there; otherwise ``apt-get install`` runs (after ``apt-get update`` if the package
lists do not know the packages yet).  Browser builds downloaded by other tools (Selenium Manager, Playwright) cannot
be fetched on the project's closed network, so the system chromedriver is used.
"""

from __future__ import annotations

from pathlib import Path

from infra.stack import debian
from infra.stack.errors import StackError

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CJK_FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")


def ensure_chromium() -> tuple[Path, Path]:
    """The paths of Chromium and chromedriver, installing the packages with apt-get when anything is missing."""
    if CHROMIUM.exists() and CHROMEDRIVER.exists() and CJK_FONT.exists():
        return CHROMIUM, CHROMEDRIVER
    debian.install(debian.BROWSER)
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER, CJK_FONT) if not p.exists()]
    if missing:
        raise StackError(f"apt-get installed {' '.join(debian.BROWSER)} but {', '.join(missing)} is still missing")
    return CHROMIUM, CHROMEDRIVER
