"""The id map: which target record a source document became, read from the sync ledger.

Flows that link records (an order to its account and products, a stock figure to its product) look the target ids
up here instead of asking the target system: the ledger of the flow that synced the referenced document knows them.
A reference not synced yet is ``None``; the caller decides whether to wait, retry or dead-letter (naming it).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from core.ledger import FAILED, sync_ledger


class IdMap:
    def __init__(self, engine: Engine, target_system: str = "zoho") -> None:
        self.engine = engine
        self.target_system = target_system

    def _lookup(self, flow: str, column: Any, values: Iterable[str]) -> dict[str, str]:
        wanted = list(dict.fromkeys(str(v) for v in values if v))
        t = sync_ledger.c
        found: dict[str, str] = {}
        with self.engine.connect() as conn:
            for i in range(0, len(wanted), 500):
                rows = conn.execute(
                    select(column, t.target_id).where(
                        t.flow == flow, t.target_system == self.target_system,
                        t.target_id.is_not(None), column.in_(wanted[i : i + 500]),
                    ).order_by(t.source_version)  # should two rows share a value, the newest wins
                )
                found.update({str(r[0]): r.target_id for r in rows})
        return found

    def targets(self, flow: str, source_keys: Iterable[str]) -> dict[str, str]:
        """Target ids of the given source keys that ``flow`` wrote at some point (missing keys are absent; a later
        failed update keeps the id)."""
        return self._lookup(flow, sync_ledger.c.source_key, source_keys)

    def target(self, flow: str, source_key: str) -> str | None:
        return self.targets(flow, [source_key]).get(str(source_key))

    def failure(self, flow: str, source_key: str) -> str | None:
        """The error with which ``flow`` dead-lettered this source key, if it did and never wrote it."""
        t = sync_ledger.c
        with self.engine.connect() as conn:
            row = conn.execute(select(t.last_error).where(
                t.flow == flow, t.target_system == self.target_system, t.source_key == str(source_key),
                t.status == FAILED, t.target_id.is_(None))).first()
        return None if row is None else str(row.last_error or "dead-lettered")

    def sources(self, flow: str, target_ids: Iterable[str]) -> dict[str, str]:
        """The other way round: which source key ``flow`` wrote each of these target ids from (for a document that
        came from the target in the first place, e.g. a Kingdee order created from a CRM order)."""
        wanted = list(dict.fromkeys(str(v) for v in target_ids if v))
        t = sync_ledger.c
        found: dict[str, str] = {}
        with self.engine.connect() as conn:
            for i in range(0, len(wanted), 500):
                rows = conn.execute(select(t.target_id, t.source_key).where(
                    t.flow == flow, t.target_system == self.target_system,
                    t.target_id.in_(wanted[i : i + 500])).order_by(t.source_version))
                found.update({str(r.target_id): str(r.source_key) for r in rows})
        return found

    def targets_by_number(self, flow: str, numbers: Iterable[str]) -> dict[str, str]:
        """Target ids of the documents ``flow`` wrote, by their business number (the ledger's ``source_number``,
        e.g. an order's bill number), for documents that name another by number only.  Numbers not synced (or
        only dead-lettered) are absent."""
        return self._lookup(flow, sync_ledger.c.source_number, numbers)


class LedgerLookup:
    """One flow's target id by source key (or, with ``by_number``, by business number), for a Bytewax step: it
    pickles with the flow (only the URL) and opens the ledger on first use in its worker."""

    def __init__(self, ledger_url: str, flow: str, *, by_number: bool = False) -> None:
        self.ledger_url = ledger_url
        self.flow = flow
        self.by_number = by_number
        self._ids: IdMap | None = None

    def _map(self) -> IdMap:
        if self._ids is None:
            from core.ledger import open_engine

            self._ids = IdMap(open_engine(self.ledger_url))
        return self._ids

    def __call__(self, key: str) -> str | None:
        if self.by_number:
            return self._map().targets_by_number(self.flow, [key]).get(key)
        return self._map().target(self.flow, key)

    def failure(self, key: str) -> str | None:
        """Why the flow dead-lettered this source key (by source key), or None."""
        return self._map().failure(self.flow, key)
