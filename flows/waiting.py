"""Waiting for a referenced record, in a step's state: the one rule every flow uses before it dead-letters.

An order waits for its customer and materials, a delivery for its CRM order, a bill's total for its order, a stock
figure for its product.  What waits stays in keyed Bytewax state (so a crash loses nothing, and nothing sleeps);
:meth:`ReferenceWait.miss` records one more look that found nothing and says when to look again — 0.5 s, 1 s, then
every 2 s by default — or that the wait is over, when the caller dead-letters naming what is missing (or, where a
declared rule says so, keeps it parked).  A wait nobody is to blame for (no access token yet, the target not
answering) moves the deadline with it (:meth:`ReferenceWait.pause`).
"""

from __future__ import annotations

from dataclasses import dataclass

FIRST_LOOK_S = 0.5
#: A look in the id map or a ledger is one indexed SQLite read, so looking often is cheap, and the cap bounds how
#: long a waiting record stays behind once its reference arrives (a 30 s cap once kept an order waiting 30 s after its
#: customer and materials were in the CRM).  Waits that read the CRM itself pass a larger cap.
MAX_LOOK_S = 2.0


@dataclass
class ReferenceWait:
    #: When the wait began (epoch s), None while nothing waits.
    since: float | None = None
    #: Looks that found nothing.
    attempts: int = 0

    def miss(self, now: float, deadline_s: float, first_s: float = FIRST_LOOK_S,
             max_s: float = MAX_LOOK_S) -> float | None:
        """One more look found nothing: when to look again (never past the deadline), or None if the wait is
        over."""
        if self.since is None:
            self.since = now
        self.attempts += 1
        if now - self.since >= deadline_s:
            return None
        backoff_s: float = min(max_s, first_s * 2 ** (self.attempts - 1))
        return min(now + backoff_s, self.since + deadline_s)

    def pause(self, seconds: float) -> None:
        """A wait that does not count (no token yet, a transient error): the deadline moves by ``seconds``."""
        if self.since is not None:
            self.since += seconds

    def waited(self, now: float) -> float:
        return 0.0 if self.since is None else now - self.since

    def clear(self) -> None:
        self.since, self.attempts = None, 0
