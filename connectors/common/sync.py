"""What a flow hands to a sink: one target write, with everything the ledger needs to make it idempotent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.ledger import Position


@dataclass(frozen=True)
class SyncCommand:
    flow: str
    #: Source key (the document id) — the ledger's key.
    key: str
    #: Business number (material code, bill number) for logs and traces.
    number: str | None
    #: Source version (commit LSN): a version at or below the applied one is never written again.
    version: int
    record: dict[str, Any]
    fingerprint: str
    captured_at_ms: int
    position: Position
    deleted: bool = False
    #: The master-data entity both directions of a two-way flow agree on (``materials:<Kingdee id>``); the field
    #: clock is kept per entity.  None for one-way flows.
    entity: str | None = None
    #: When the change was made at the source (epoch ms), for last-writer-wins; ``captured_at_ms`` if not given.
    source_time_ms: int | None = None

    @property
    def changed_at_ms(self) -> int:
        return self.source_time_ms if self.source_time_ms is not None else self.captured_at_ms
