"""Crash points, for the tests that prove crash safety at the exact moments that matter.

A process whose environment names a point in ``CDCHUB_FAILPOINTS`` dies there the way ``kill -9`` would
(``os._exit``: no clean-up, no flush, buffers lost) — e.g. the capture between Kafka's acknowledgement of a batch
and the commit of its position.  ``name@N`` dies on the N-th pass; several points are separated by commas.
Nothing is read or done unless the variable is set.
"""

from __future__ import annotations

import os
import sys

ENV = "CDCHUB_FAILPOINTS"
_passes: dict[str, int] = {}


def reach(name: str) -> None:
    spec = os.environ.get(ENV)
    if not spec:
        return
    for item in spec.split(","):
        point, _, nth = item.strip().partition("@")
        if point != name:
            continue
        _passes[name] = _passes.get(name, 0) + 1
        if _passes[name] >= int(nth or 1):
            sys.stderr.write(f"failpoint {name} reached (pass {_passes[name]}): dying like kill -9\n")
            sys.stderr.flush()
            os._exit(137)
