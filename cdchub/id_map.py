"""The id map: which target record a source document became, read from the sync ledger.

Flows that link records (an order to its account and products, a stock figure to its product) look the target ids
up here instead of asking the target system: the ledger of the flow that synced the referenced document knows them.
A reference not synced yet is ``None``; the caller decides whether to wait, retry or dead-letter (naming it).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.engine import Engine

from cdchub.ledger import sync_ledger


class IdMap:
    def __init__(self, engine: Engine, target_system: str = "zoho") -> None:
        self.engine = engine
        self.target_system = target_system

    def targets(self, flow: str, source_keys: Iterable[str]) -> dict[str, str]:
        """Target ids of the given source keys that ``flow`` wrote at some point (missing keys are absent; a later
        failed update keeps the id)."""
        keys = list(dict.fromkeys(str(k) for k in source_keys))
        t = sync_ledger.c
        found: dict[str, str] = {}
        with self.engine.connect() as conn:
            for i in range(0, len(keys), 500):
                rows = conn.execute(
                    select(t.source_key, t.target_id).where(
                        t.flow == flow, t.target_system == self.target_system,
                        t.target_id.is_not(None), t.source_key.in_(keys[i : i + 500]),
                    )
                )
                found.update({r.source_key: r.target_id for r in rows})
        return found

    def target(self, flow: str, source_key: str) -> str | None:
        return self.targets(flow, [source_key]).get(str(source_key))

    def targets_by_number(self, flow: str, numbers: Iterable[str]) -> dict[str, str]:
        """Target ids of the documents ``flow`` wrote, by their business number (the ledger's ``source_number``,
        e.g. an order's bill number), for documents that name another by number only.  Numbers not synced (or
        only dead-lettered) are absent."""
        wanted = list(dict.fromkeys(str(n) for n in numbers if n))
        t = sync_ledger.c
        found: dict[str, str] = {}
        with self.engine.connect() as conn:
            for i in range(0, len(wanted), 500):
                rows = conn.execute(
                    select(t.source_number, t.target_id).where(
                        t.flow == flow, t.target_system == self.target_system,
                        t.target_id.is_not(None), t.source_number.in_(wanted[i : i + 500]),
                    )
                )
                found.update({r.source_number: r.target_id for r in rows})
        return found


class LedgerLookup:
    """One flow's target id by source key (or, with ``by_number``, by business number), for a Bytewax step: it
    pickles with the flow (only the URL) and opens the ledger on first use in its worker."""

    def __init__(self, ledger_url: str, flow: str, *, by_number: bool = False) -> None:
        self.ledger_url = ledger_url
        self.flow = flow
        self.by_number = by_number
        self._ids: IdMap | None = None

    def __call__(self, key: str) -> str | None:
        if self._ids is None:
            from cdchub.ledger import open_engine

            self._ids = IdMap(open_engine(self.ledger_url))
        if self.by_number:
            return self._ids.targets_by_number(self.flow, [key]).get(key)
        return self._ids.target(self.flow, key)
