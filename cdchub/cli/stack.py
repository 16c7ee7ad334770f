"""The local stack: ``up`` and ``down`` (Kafka, the registry, PostgreSQL and the four simulators, ``docs/stack.md``)."""

from __future__ import annotations

from typing import Annotated

import typer

from cdchub.cli.common import STACK, start_local_stack
from connectors.settings import get_settings


def up(components: Annotated[list[str] | None, typer.Argument(
        help="postgres, kafka, registry, zoho-sim … (default: all)", show_default=False)] = None) -> int:
    """Start the local stack (what runs is left alone)."""
    rows, _ = start_local_stack(components or None)
    for row in rows:
        print(f"{row.name:<12} {'up' if row.running else 'DOWN':<5} {row.detail}")
    return 0


def down() -> int:
    """Stop the local stack."""
    from infra.stack.manager import down as stop

    for row in stop(get_settings()):
        print(f"{row.name:<12} {'up' if row.running else 'down':<5} {row.detail}")
    return 0


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel=STACK)(up)
    app.command(rich_help_panel=STACK)(down)
