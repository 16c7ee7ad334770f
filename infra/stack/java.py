"""Finding Java: 17+ for Kafka (``/usr/bin/java``), a Temurin 21+ JDK for Apicurio Registry 3.2+."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from infra.stack.errors import StackError

JVM_ROOT = Path("/usr/lib/jvm")


def _major(java_home: Path) -> int | None:
    """The major version from the JDK's ``release`` file (``JAVA_VERSION="17.0.15"``); no JVM started."""
    try:
        text = (java_home / "release").read_text()
    except OSError:
        return None
    m = re.search(r'^JAVA_VERSION="(\d+)', text, re.M)
    return int(m.group(1)) if m else None


def system_java(min_major: int = 17) -> Path:
    """``java`` on PATH (``/usr/bin/java`` on Debian), checked to be at least ``min_major``."""
    found = shutil.which("java")
    if not found:
        raise StackError(
            f"Java {min_major}+ is needed for Kafka but no `java` is on PATH (apt-get install openjdk-17-jre)"
        )
    java = Path(found).resolve()
    major = _major(java.parent.parent)
    if major is not None and major < min_major:
        raise StackError(f"Kafka needs Java {min_major}+, but {found} -> {java} is Java {major}")
    return Path(found)


def temurin_java(min_major: int = 21) -> Path:
    """The newest ``/usr/lib/jvm/temurin-*`` JDK with major version >= ``min_major``."""
    candidates: list[tuple[int, Path]] = []
    for home in sorted(JVM_ROOT.glob("temurin-*")):
        java = home / "bin" / "java"
        m = re.match(r"temurin-(\d+)", home.name)
        major = _major(home) or (int(m.group(1)) if m else None)
        if major is not None and java.exists():
            candidates.append((major, java))
    good = [c for c in candidates if c[0] >= min_major]
    if not good:
        seen = ", ".join(f"{p.parent.parent.name} (Java {v})" for v, p in candidates) or "none"
        raise StackError(
            f"Apicurio Registry 3.3 needs a Java {min_major}+ JDK under {JVM_ROOT}/temurin-*; found: {seen}. "
            f"Install one (e.g. the temurin-21-jdk or temurin-25-jdk package from Adoptium)."
        )
    return max(good)[1]
