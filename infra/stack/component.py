"""What every part of the local stack offers the manager: idempotent ``up``, graceful ``down``, ``status``."""

from __future__ import annotations

from typing import NamedTuple, Protocol


class ComponentStatus(NamedTuple):
    name: str
    running: bool
    detail: str


class Component(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def requires(self) -> tuple[str, ...]:
        """Names of the components that must be up first."""
        ...

    def up(self) -> str:
        """Install if needed, start unless running and healthy, wait until ready; return a one-line detail."""
        ...

    def down(self) -> bool:
        """Stop gracefully; True if something was running."""
        ...

    def status(self) -> ComponentStatus: ...
