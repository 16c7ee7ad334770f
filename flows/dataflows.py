"""The runtime's dataflows: the business flows grouped by the target system they write to (``docs/runtime.md``).

Run with Bytewax's own entry point, which brings its scaling options (``-w``, ``-i``/``-a``, the Helm chart's
environment) and recovery::

    python -m bytewax.run "flows.dataflows:dataflow('to_crm')" -r <state>/recovery/to_crm -s 2 -b 0 [-w N]
    python -m bytewax.run "flows.dataflows:single('materials')" …     # one flow alone (debugging, its tests)

``cdchub run`` and ``cdchub flow`` build these command lines (``cdchub/runtime.py``), with the delivery shards
their recovery store was made with (``dataflow('to_crm', shards=1)``: one for a dataflow of one worker).  Inside a
dataflow each flow's steps are scoped under its name (``to_crm.materials.read``), so flows never clash and the
recovery state of each step is its own.
"""

from __future__ import annotations

import gc
import importlib
from collections.abc import Callable

from bytewax.dataflow import Dataflow, operator

from connectors.common.delivery import SHARDS, use_shards
from connectors.settings import Settings

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


def dataflow(name: str, shards: int = SHARDS) -> Dataflow:
    """The dataflow ``name`` of :data:`DATAFLOWS` (the factory ``python -m bytewax.run`` calls), its deliveries in
    ``shards`` shards: ``cdchub run`` passes its recovery store's number (one for a dataflow of one worker); the
    default is the four every store had before the number was chosen per store (``cdchub/runtime.py``)."""
    from flows.process import prepare_process

    use_shards(shards)
    settings = prepare_process(name, DATAFLOWS[name])
    flow = Dataflow(name)
    for member in DATAFLOWS[name]:
        business_flow(member, flow, _builder(member, settings))
    return _settled(flow)


def _settled(flow: Dataflow) -> Dataflow:
    """The process's setup (modules, mappings, clients) frozen out of the garbage collector's sight, and young
    objects collected less often: a full collection walks only what the flow makes while it runs (the capture
    measured 60-120 ms pauses every few seconds without this, ``docs/capture.md``)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)
    return flow


def single(name: str, shards: int = SHARDS) -> Dataflow:
    """One flow as a dataflow of its own, with the flow's own step names (``materials.read``)."""
    from flows.process import prepare_process

    use_shards(shards)
    if name not in FLOWS:
        raise KeyError(f"no flow {name!r}; flows: {', '.join(FLOWS)}")
    settings = prepare_process(f"flow-{name}", (name,))
    flow = importlib.import_module(f"flows.{name}").build_flow(settings)
    assert isinstance(flow, Dataflow)
    return _settled(flow)
