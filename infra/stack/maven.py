"""Fetching from Maven Central with the ``mvn`` client (its local repository ``~/.m2`` is a second cache)."""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from pathlib import Path

from infra.stack.errors import StackError

log = logging.getLogger(__name__)

MVN_TIMEOUT_S = 1800
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # Maven 3.8 colours some lines even with -B


def run_mvn(args: list[str], what: str, cwd: Path | None = None) -> None:
    """Run ``mvn -B -q <args>`` without stdin; raise a StackError with Maven's output when it fails."""
    mvn = shutil.which("mvn")
    if not mvn:
        raise StackError(
            f"{what}: Maven (`mvn`) is needed to download from Maven Central (apt-get install maven)"
        )
    log.info("%s: mvn %s", what, " ".join(args))
    try:
        proc = subprocess.run(
            [mvn, "-B", "-q", *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=MVN_TIMEOUT_S,
            cwd=cwd,
        )
    except subprocess.TimeoutExpired as exc:
        raise StackError(f"{what}: download did not finish in {MVN_TIMEOUT_S}s") from exc
    if proc.returncode != 0:
        out = _ANSI.sub("", proc.stdout + proc.stderr).strip().splitlines()
        raise StackError(f"{what}: download failed (mvn exit {proc.returncode}):\n" + "\n".join(out[-30:]))


def copy_dependencies(pom: Path, dest: Path, what: str) -> None:
    """Resolve every dependency of ``pom`` into ``dest`` (atomically: a half-finished copy is never used)."""
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    run_mvn(["-f", str(pom), "dependency:copy-dependencies", f"-DoutputDirectory={tmp}"], what)
    if not any(tmp.glob("*.jar")):
        raise StackError(f"{what}: mvn succeeded but copied no jars into {tmp}")
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)


def copy_artifact(coordinates: str, dest_dir: Path, what: str) -> None:
    """Download one artifact (``group:artifact:version[:packaging[:classifier]]``) into ``dest_dir``."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    # Run outside any project (cwd = dest_dir) so Maven does not pick up an unrelated pom.xml.
    run_mvn(
        ["dependency:copy", f"-Dartifact={coordinates}", f"-DoutputDirectory={dest_dir}"], what, cwd=dest_dir
    )
