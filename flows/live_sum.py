"""A versioned sum over live documents: the one rule behind stock per material and amounts per order.

Per key (a material, an order, a campaign) the state holds each live document's newest amount and version, and a
tombstone (version, when) for each document removed lately.  A document's change older than what the state holds
for it — a capture re-send after a crash, or documents of one key arriving from different partitions — is
ignored; a removed document's tombstone keeps a late older image from bringing it back until ``retire_after``.
The sum is versioned by the highest version it includes: "newer" for a sum means that.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal


@dataclass
class LiveSum:
    #: document → (its newest amount, that version)
    amounts: dict[str, tuple[Decimal, int]] = field(default_factory=dict)
    #: document removed lately → (its version then, when: epoch s)
    gone: dict[str, tuple[int, float]] = field(default_factory=dict)
    version: int = 0

    def total(self) -> Decimal:
        return sum((a for a, _ in self.amounts.values()), Decimal(0))

    def stale(self, doc: str, version: int) -> bool:
        """This version of the document is older than what the sum holds (or held before it was removed)."""
        live, tomb = self.amounts.get(doc), self.gone.get(doc)
        return (live is not None and version < live[1]) or (tomb is not None and version <= tomb[0])

    def apply(self, doc: str, amount: Decimal | None, version: int, now: float) -> bool | None:
        """The document now gives ``amount`` (None: it is gone).  None when the change is stale; otherwise whether
        the sum is to be written — it changed, or it is the first change the key sees."""
        if self.stale(doc, version):
            return None
        before = self.total()
        if amount is None:
            self.amounts.pop(doc, None)
            self.gone[doc] = (version, now)
        else:
            self.amounts[doc] = (amount, version)
            self.gone.pop(doc, None)
        first = self.version == 0
        self.version = max(self.version, version)
        return self.total() != before or first

    def prune(self, now: float, retire_after: float) -> None:
        for doc in [d for d, (_, at) in self.gone.items() if now - at >= retire_after]:
            del self.gone[doc]

    def next_expiry(self, retire_after: float) -> float | None:
        """When the oldest tombstone may be forgotten (epoch s), or None."""
        return min(at for _, at in self.gone.values()) + retire_after if self.gone else None

    def empty(self) -> bool:
        return not self.amounts and not self.gone

    def copy(self) -> LiveSum:
        return LiveSum(dict(self.amounts), dict(self.gone), self.version)
