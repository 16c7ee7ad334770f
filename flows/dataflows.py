"""The runtime's dataflows: the business flows grouped by the target system they write to (``docs/runtime.md``).

Run with Bytewax's own entry point, which brings its scaling options (``-w``, ``-i``/``-a``, the Helm chart's
environment) and recovery::

    python -m bytewax.run "flows.dataflows:dataflow('to_crm')" -r <state>/recovery/to_crm -s 2 -b 0 [-w N]
    python -m bytewax.run "flows.dataflows:single('materials')" …     # one flow alone (debugging, its tests)

``cdchub run`` and ``cdchub flow`` build these command lines (``cdchub/runtime.py``).  A dataflow's delivery shards
are its recovery store's (``delivery-shards`` in it: one for a dataflow of one worker that ``cdchub run`` made; 4
for a store that does not say).  Inside a dataflow each flow's steps are scoped under its name
(``to_crm.materials.read``), so flows never clash and the recovery state of each step is its own.
"""

from __future__ import annotations

import gc
import importlib
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

from bytewax.dataflow import Dataflow, operator

from connectors.common.delivery import store_shards, use_shards
from connectors.settings import Settings

log = logging.getLogger(__name__)

#: Which flows each dataflow runs.  Grouped by target system: a bug (an unexpected exception) stops its whole
#: dataflow, so it stops one target's flows and no other; per-record failures are dead letters anywhere.
DATAFLOWS: dict[str, tuple[str, ...]] = {
    "to_crm": ("materials", "customers", "sales_orders", "deliveries", "invoices", "receipts", "inventory",
               "approval_status", "campaign_costs"),
    "to_kingdee": ("products_to_kingdee", "accounts_to_kingdee", "converted_leads", "crm_orders_to_kingdee",
                   "expenses_to_kingdee"),
    "to_oa": ("campaign_approvals",),
}
FLOWS: tuple[str, ...] = tuple(f for members in DATAFLOWS.values() for f in members)


def dataflow_of(flow: str) -> str:
    """The dataflow a flow runs in."""
    for name, members in DATAFLOWS.items():
        if flow in members:
            return name
    raise KeyError(flow)


@operator
def business_flow(step_id: str, flow: Dataflow, build: Callable[[Dataflow], object]) -> None:
    """One business flow's steps inside a dataflow, under the flow's name."""
    build(flow)


def _builder(name: str, settings: Settings) -> Callable[[Dataflow], object]:
    module = importlib.import_module(f"flows.{name}")
    return lambda into: module.build_flow(settings, into=into)


def dataflow(name: str, shards: int | None = None) -> Dataflow:
    """The dataflow ``name`` of :data:`DATAFLOWS` (the factory ``python -m bytewax.run`` calls), its deliveries in
    ``shards`` shards, by default its recovery store's (:func:`recovery_directory`; ``cdchub/runtime.py``)."""
    from flows.process import prepare_process

    settings = prepare_process(name, DATAFLOWS[name])
    _use_shards(shards)
    flow = Dataflow(name)
    for member in DATAFLOWS[name]:
        business_flow(member, flow, _builder(member, settings))
    return _settled(flow)


def _use_shards(shards: int | None) -> None:
    store = recovery_directory()
    count = shards if shards is not None else store_shards(store)
    use_shards(count)
    log.info("deliveries in %d shard(s)%s", count, f" (recovery store {store})" if shards is None and store else "")


def recovery_directory(argv: list[str] | None = None) -> Path | None:
    """The recovery store this process runs on, as ``python -m bytewax.run`` takes it: ``-r``/``--recovery-directory``
    or ``BYTEWAX_RECOVERY_DIRECTORY`` (the systemd units and the Helm chart); None without recovery."""
    args = sys.argv if argv is None else argv
    for i, arg in enumerate(args):
        if arg in ("-r", "--recovery-directory") and i + 1 < len(args):
            return Path(args[i + 1])
        if arg.startswith("--recovery-directory="):
            return Path(arg.split("=", 1)[1])
    found = os.environ.get("BYTEWAX_RECOVERY_DIRECTORY")
    return Path(found) if found else None


def _settled(flow: Dataflow) -> Dataflow:
    """The process's setup (modules, mappings, clients) frozen out of the garbage collector's sight, and young
    objects collected less often: a full collection walks only what the flow makes while it runs (the capture
    measured 60-120 ms pauses every few seconds without this, ``docs/capture.md``)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)
    return flow


def single(name: str, shards: int | None = None) -> Dataflow:
    """One flow as a dataflow of its own, with the flow's own step names (``materials.read``)."""
    from flows.process import prepare_process

    if name not in FLOWS:
        raise KeyError(f"no flow {name!r}; flows: {', '.join(FLOWS)}")
    settings = prepare_process(f"flow-{name}", (name,))
    _use_shards(shards)
    flow = importlib.import_module(f"flows.{name}").build_flow(settings)
    assert isinstance(flow, Dataflow)
    return _settled(flow)
