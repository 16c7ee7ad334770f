"""Bring the local stack up, down, or report it: PostgreSQL, Kafka, Apicurio Registry, then the simulators.

``up`` is idempotent (a running, healthy component is left alone), pulls in what a component requires (the
registry needs Kafka), and fails with a StackError naming the component and showing its log.  A file lock
serialises concurrent ``up``/``down`` calls (e.g. several test sessions).  Processes are detached: they keep
running after the calling Python process exits, until ``down``.
"""

from __future__ import annotations

import fcntl
import logging
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from connectors.settings import Settings
from infra.stack.component import Component, ComponentStatus
from infra.stack.errors import StackError
from infra.stack.kafka import Kafka
from infra.stack.local_secrets import ensure_secrets
from infra.stack.paths import RUN_DIR, ensure_dir
from infra.stack.postgres import Postgres
from infra.stack.registry import Registry
from infra.stack.simulators import SIMULATORS, Simulator

log = logging.getLogger(__name__)


def all_components(settings: Settings) -> list[Component]:
    """Every component in start order (dependencies first)."""
    return [
        Postgres(settings),
        Kafka(settings),
        Registry(settings),
        *(Simulator(settings, spec) for spec in SIMULATORS),
    ]


def _select(all_: list[Component], names: Iterable[str] | None) -> list[Component]:
    """The named components and all they require, in start order; ``simulators`` means every simulator."""
    if names is None:
        return all_
    by_name = {c.name: c for c in all_}
    wanted: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name == "simulators":
            todo.extend(c.name for c in all_ if isinstance(c, Simulator))
            continue
        if name not in by_name:
            raise StackError(f"unknown component {name!r}; known: {', '.join(by_name)}, simulators")
        if name not in wanted:
            wanted.add(name)
            todo.extend(by_name[name].requires)
    return [c for c in all_ if c.name in wanted]


@contextmanager
def _stack_lock() -> Iterator[None]:
    ensure_dir(RUN_DIR)
    with (RUN_DIR / "stack.lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def up(settings: Settings, components: Iterable[str] | None = None) -> list[ComponentStatus]:
    """Start the named components (default: all) and what they require; wait until each is ready."""
    results = []
    with _stack_lock():
        created = ensure_secrets()
        if created:
            log.info("generated secrets in .cache/secrets: %s", ", ".join(created))
        for comp in _select(all_components(settings), components):
            t0 = time.monotonic()
            detail = comp.up()
            took = time.monotonic() - t0
            log.info("%-10s %s [%.1fs]", comp.name, detail, took)
            results.append(ComponentStatus(comp.name, True, f"{detail} [{took:.1f}s]"))
    return results


def down(settings: Settings) -> list[ComponentStatus]:
    """Stop every component, in reverse start order, each gracefully (SIGTERM, wait, SIGKILL)."""
    results, errors = [], []
    with _stack_lock():
        for comp in reversed(all_components(settings)):
            t0 = time.monotonic()
            try:
                stopped = comp.down()
            except StackError as exc:
                errors.append(str(exc))
                continue
            detail = f"stopped in {time.monotonic() - t0:.1f}s" if stopped else "was not running"
            log.info("%-10s %s", comp.name, detail)
            results.append(ComponentStatus(comp.name, False, detail))
    if errors:
        raise StackError("down: " + "\n".join(errors))
    return results


def status(settings: Settings) -> list[ComponentStatus]:
    """One (name, running, detail) row per component; ``running`` means running and answering its probe."""
    return [comp.status() for comp in all_components(settings)]
