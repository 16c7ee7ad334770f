"""The one error the local stack raises: a message a person can act on (what failed, why, what to do)."""

from __future__ import annotations


class StackError(RuntimeError):
    """A component could not be installed, started, made ready or stopped; the message says which and why."""
