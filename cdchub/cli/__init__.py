"""The ``cdchub`` command (typer + rich): the operator's commands in two groups — operate (``run``, ``status``,
``trace``, ``replay``, ``reconcile``, ``dlq``, ``snapshot``, ``console``, ``doctor``, ``metrics``) and the local
stack (``up``, ``down``) — and, hidden from the help, the runtime's own processes (``capture``, ``pollers``,
``flow`` …) that ``cdchub run`` starts.

One module per group (:mod:`.operate`, :mod:`.stack`, :mod:`.internal`), the application and its error handling in
:mod:`.app` (:mod:`.errors`: one line per expected failure), logging in :mod:`.logs`.  This module stays light:
the runtime's processes import :func:`configure_logging` from here without loading typer or the commands.
"""

from __future__ import annotations

from core.logs import configure_logging

__all__ = ["configure_logging", "main"]


def main(argv: list[str] | None = None) -> int:
    """The ``cdchub`` entry point: runs the command line ``argv`` (default ``sys.argv[1:]``), returns the exit
    code."""
    from cdchub.cli.app import run

    return run(argv)
