"""Debian packages the project installs, through one apt-get helper (as root, no prompt, no standard input).

``install`` adds what is missing (after ``apt-get update`` when the package lists do not know a package yet);
``upgrade`` brings every package the project installs to the newest version the machine's package sources serve,
which is what a new machine gets.  CI runs ``upgrade`` before the tests (``make packages``), so a security update
that changes a package under us — as PostgreSQL 15.19 did with ``output_plugin_libraries`` — shows in CI the day
it is served, not first on a user's machine.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess

from infra.stack.errors import StackError

log = logging.getLogger(__name__)

APT_TIMEOUT_S = 900

POSTGRES = ("postgresql-15", "postgresql-client-15", "postgresql-common")
BROWSER = ("chromium", "chromium-driver", "fonts-wqy-microhei")
#: Every Debian package the project installs (the stack's database, the console test's browser).
ALL = (*POSTGRES, *BROWSER)


def _apt(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["apt-get", "-y", "-q", *args], stdin=subprocess.DEVNULL, capture_output=True, text=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}, timeout=APT_TIMEOUT_S,
    )


def _require_apt(packages: tuple[str, ...]) -> None:
    if shutil.which("apt-get") is None:
        raise StackError(f"there is no apt-get to install {' '.join(packages)}; install them with the system's "
                         "package manager")
    if os.geteuid() != 0:
        raise StackError(f"installing {' '.join(packages)} needs root; as root run: "
                         f"apt-get install -y {' '.join(packages)}")


def _update() -> None:
    done = _apt("update")
    if done.returncode != 0:
        raise StackError(f"apt-get update failed (exit {done.returncode}): {done.stderr.strip()[-800:]}")


def install(packages: tuple[str, ...], *, refresh: bool = False) -> None:
    """Install ``packages`` (newest candidates); ``refresh`` updates the package lists first."""
    _require_apt(packages)
    if refresh:
        _update()
    log.info("apt-get install %s", " ".join(packages))
    done = _apt("install", "--no-install-recommends", *packages)
    if done.returncode != 0 and not refresh:  # a fresh machine's package lists may not know the packages yet
        _update()
        done = _apt("install", "--no-install-recommends", *packages)
    if done.returncode != 0:
        raise StackError(f"apt-get install {' '.join(packages)} failed (exit {done.returncode}): "
                         f"{done.stderr.strip()[-800:]}")


def installed_version(package: str) -> str | None:
    done = subprocess.run(["dpkg-query", "-W", "-f", "${Status} ${Version}", package], capture_output=True,
                          text=True, stdin=subprocess.DEVNULL)
    fields = done.stdout.split()
    return fields[-1] if done.returncode == 0 and "installed" in fields else None


def upgrade(packages: tuple[str, ...] = ALL) -> list[str]:
    """Bring ``packages`` to the newest version served (installing any missing); returns "name old → new" lines."""
    before = {p: installed_version(p) for p in packages}
    install(packages, refresh=True)
    return [f"{p} {before[p] or 'not installed'} → {installed_version(p)}" for p in packages]
