"""What every process of one installation shares through its state dir: small JSON records under a file lock, and
slots that bound how many calls are in flight across all of them.

A process opts in with :func:`share` (``cdchub`` does it for every long-running command); without it (unit tests,
one-off scripts) records and slots are this process's own.  Locks are ``flock`` locks, so a process that dies
releases what it held.  One host: a state dir on a shared file system extends this to several hosts.
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_directory: Path | None = None
_memory: dict[str, dict[str, Any]] = {}
_memory_lock = threading.Lock()


def share(state_dir: Path) -> None:
    """Share records and slots with every process using ``state_dir``."""
    global _directory
    _directory = state_dir


def unshare() -> None:
    global _directory
    _directory = None


def directory() -> Path | None:
    return _directory


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


@contextmanager
def locked_record(folder: str, name: str, local: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
    """The record ``<state dir>/<folder>/<name>.json`` (mode 600) under its lock, for reading and changing in place;
    written back when the block ends, also when it raises.  Without sharing: ``local`` if given (the caller's own),
    else a record of this process."""
    if _directory is None:
        with _memory_lock:
            yield local if local is not None else _memory.setdefault(f"{folder}/{name}", {})
        return
    where = _directory / folder
    where.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = where / f"{_safe(name)}.json"
    with (where / f"{_safe(name)}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            try:
                record: dict[str, Any] = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
            except ValueError:
                record = {}  # a torn or foreign file: start from nothing
            try:
                yield record
            finally:
                tmp = path.with_suffix(".tmp")
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    json.dump(record, fh)
                os.replace(tmp, path)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def read_records(state_dir: Path, folder: str) -> dict[str, dict[str, Any]]:
    """Every record of a folder as last written (for status; no lock, a record being replaced is skipped)."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted((state_dir / folder).glob("*.json")):
        try:
            found[path.stem] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
    return found


class SharedSlots:
    """At most ``size`` holders at once across every process of the installation (and its threads).

    Each slot is a file locked while held: a holder tries the slots from a random one on and, when all are taken,
    waits for one.  Waiting here is waiting for the target system's capacity, like waiting for its answer."""

    def __init__(self, name: str, size: int) -> None:
        if size < 1:
            raise ValueError(f"{name}: at least one slot, got {size}")
        self.name = name
        self.size = size
        self._local = threading.BoundedSemaphore(size)

    @contextmanager
    def hold(self) -> Iterator[None]:
        with self._local:
            if _directory is None:
                yield
                return
            fd = self._take(_directory / "slots")
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)

    def _take(self, where: Path) -> int:
        where.mkdir(parents=True, exist_ok=True, mode=0o700)
        first = random.randrange(self.size)
        for i in range(self.size):
            fd = os.open(where / f"{_safe(self.name)}-{(first + i) % self.size}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                os.close(fd)
        fd = os.open(where / f"{_safe(self.name)}-{first}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd
