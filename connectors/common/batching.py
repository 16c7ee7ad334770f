"""How many pending commands a pipelined delivery sends now: batches at the target's pace and price.

ZOHO takes at most 100 records a call and charges one credit per 10 records written (at least one a call), so 95
records cost what 100 do.  Given the commands due and the calls that could start now:

- no free call: nothing (the commands stay pending — where newer versions of them still coalesce — until one
  comes back; nothing is queued behind the target's slots);
- otherwise as many full calls of 100 as are free, then what is left if a call is still free: all of it when
  under 10 records once the oldest of them has waited the sink's linger (``batch_linger_ms``, 30 ms for ZOHO: at a
  steady few hundred changes a second, calls of 2–3 records had cost 3–5× the credits and most of the flow's CPU;
  until then it waits for more to join; only a busy shard lingers, ``delivery.BUSY_S``: a lone change goes at
  once), else rounded down to a multiple of 10 (the rest, the newest, leads the next call);
- a rest under 10 behind full calls waits for the next free call (a backlog: it joins a full one).
"""

from __future__ import annotations

PER_CALL = 100
CREDIT_UNIT = 10


def batch_take(due: int, free_calls: int, per_call: int = PER_CALL, credit_unit: int = CREDIT_UNIT,
               lingered: bool = True) -> int:
    """How many of ``due`` commands (oldest first) to send now with ``free_calls`` calls free; ``lingered``: the
    oldest has waited the linger (a call of fewer than ``credit_unit`` goes only then)."""
    if due <= 0 or free_calls <= 0:
        return 0
    full = min(due // per_call, free_calls)
    if full == free_calls:
        return full * per_call
    rest = due - full * per_call
    if rest < credit_unit:
        return due if full == 0 and lingered else full * per_call
    return full * per_call + rest // credit_unit * credit_unit
