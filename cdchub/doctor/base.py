"""What a check of ``cdchub doctor`` returns, and what the checks share while one doctor runs.

A check is a small function ``(Context) -> Finding``: one line, ✓ / ⚠ / ✗, what it found and — unless it passed —
the fix.  A check that cannot run because another one failed (no database connection, no Kafka metadata) raises
:class:`Skipped` naming that check; it is shown, but it is not a second failure.  Every call a check makes has a
timeout, so an unreachable host is a ✗ line, never a hang.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from connectors.settings import Settings

Status = Literal["ok", "warn", "fail", "skip"]
MARKS: dict[Status, str] = {"ok": "✓", "warn": "⚠", "fail": "✗", "skip": "–"}

#: Connecting to and asking any one system (Kafka metadata, a database, an HTTP API).
CONNECT_TIMEOUT_S = 5.0
#: A statement on the Kingdee database.
STATEMENT_TIMEOUT_MS = 5000


@dataclass(frozen=True)
class Finding:
    name: str
    status: Status
    what: str
    fix: str = ""
    #: More lines for ``--verbose`` (every missing topic, each scope probe …).
    details: tuple[str, ...] = ()

    def line(self) -> str:
        text = f"{MARKS[self.status]} {self.name:<15} {_one_line(self.what)}"
        return text + (f" — fix: {_one_line(self.fix)}" if self.fix and self.status != "ok" else "")


def ok(name: str, what: str, details: tuple[str, ...] = ()) -> Finding:
    return Finding(name, "ok", what, details=details)


def warn(name: str, what: str, fix: str = "", details: tuple[str, ...] = ()) -> Finding:
    return Finding(name, "warn", what, fix, details)


def fail(name: str, what: str, fix: str, details: tuple[str, ...] = ()) -> Finding:
    return Finding(name, "fail", what, fix, details)


class Skipped(Exception):
    """The check needs what another check could not get (named in the message)."""


def _one_line(text: str) -> str:
    return " ".join(text.split())


def describe(exc: BaseException) -> str:
    """An exception as one short line: its class and first line (never a traceback, never a secret: the clients'
    messages name hosts, users and codes, not passwords)."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


@dataclass
class Context:
    """The settings under test, and what one check found that later ones reuse."""

    settings: Settings
    #: Findings so far, by check name.
    found: dict[str, Finding] = field(default_factory=dict)
    #: Kafka metadata (``ClusterMetadata``) once the broker answered.
    kafka_metadata: Any = None
    #: An autocommit psycopg2 connection to the Kingdee database (``log`` mode), once it connected.
    pg: Any = None
    #: A SQLAlchemy engine on the Kingdee database (``query`` mode), once it connected.
    engine: Any = None
    #: The ZOHO client whose token both ZOHO checks use.
    zoho: Any = None
    #: Where tokens live during this run: ``shared`` (the installation's store), ``own`` (this run's memory: no
    #: state dir yet), ``none`` (the state dir belongs to another user: token checks are skipped).
    token_store: str = "shared"
    #: Clients to close at the end.
    _closers: list[Any] = field(default_factory=list)

    def needs(self, check: str, what: Any) -> Any:
        """``what`` when the check ``check`` got it; otherwise this check is skipped."""
        if what is None:
            raise Skipped(f"not checked: {check} failed (above)")
        return what

    def closing(self, thing: Any) -> Any:
        self._closers.append(thing)
        return thing

    def close(self) -> None:
        for thing in reversed(self._closers):
            with contextlib.suppress(Exception):  # best effort: the findings are what matters
                (thing.dispose if hasattr(thing, "dispose") else thing.close)()
        self._closers.clear()


@contextlib.contextmanager
def cursor(ctx: Context) -> Iterator[Any]:
    pg = ctx.needs("kingdee-db", ctx.pg)
    with pg.cursor() as cur:
        yield cur
