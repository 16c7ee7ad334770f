"""What the deliveries flow declares: which outbounds count as delivered and the CRM order's delivery status
(``flows/mappings/deliveries.toml``: code tables as data, checked when the module is loaded), and the CRM names it
writes.  Pure: unit-tested directly."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import Field

from core.toml_specs import Spec, load_toml_spec
from flows.specs import spec_path

FLOW = "deliveries"
#: The flow whose ledger knows the CRM id of a sales order by its bill number.
ORDERS_FLOW = "sales_orders"
DELIVERIES_MODULE = "Deliveries"
ORDERS_MODULE = "Sales_Orders"
#: The ``Deliveries`` record's external key: the outbound's id (``FID``, ``FID/order no`` for its further orders).
EXTERNAL_KEY = "Kingdee_Outbound_ID"
LINES_FIELD = "Ordered_Items"
#: The CRM order line's Kingdee entry id: how an outbound line (``FSOENTRYID``) finds the line it delivers.
LINE_KEY = "Kingdee_Entry_ID"
#: Ledger key prefix of an order's delivered totals (``order:<bill no>``).
ORDER_KEY_PREFIX = "order:"

Text = Annotated[str, Field(min_length=1)]


class DeliveryStatusSpec(Spec):
    """``[delivery_status]``: the CRM order's ``Delivery_Status`` picklist values."""

    none: Text
    part: Text
    all: Text


class DeliveriesSpec(Spec):
    """``deliveries.toml``."""

    #: Status column → {letter: counts as delivered}; an outbound is live when every column says so.
    live_when: dict[str, dict[str, bool]] = Field(min_length=1)
    delivery_status: DeliveryStatusSpec


RULES = load_toml_spec(spec_path(FLOW), DeliveriesSpec)
#: Which outbounds count as delivered, per status column and letter.  A letter not listed is dead-lettered naming it.
LIVE_WHEN: dict[str, dict[str, bool]] = {col: dict(letters) for col, letters in RULES.live_when.items()}
NOT_DELIVERED = RULES.delivery_status.none
PARTLY_DELIVERED = RULES.delivery_status.part
DELIVERED = RULES.delivery_status.all


class UnknownStatus(Exception):
    """An outbound's status letter the code tables do not list."""


class OrderNotInCrm(Exception):
    """The sales order an outbound delivers (or one of its lines) is not in the CRM."""


def is_live(doc: dict[str, Any]) -> bool:
    """Whether an outbound counts as delivered (audited, not voided); an unknown letter is :class:`UnknownStatus`."""
    live = True
    for column, table in LIVE_WHEN.items():
        letter = str(doc.get(column) if doc.get(column) is not None else "").strip()
        if letter not in table:
            raise UnknownStatus(f"outbound {doc.get('FBILLNO') or doc.get('FID')}: unknown {column} {letter!r} "
                                f"(known: {sorted(table)})")
        live = live and table[letter]
    return live


def delivery_status(rows: list[dict[str, Any]], delivered: dict[str, Decimal]) -> str:
    """The order's ``Delivery_Status`` from its CRM rows (``Quantity``) and what its lines delivered."""
    got = [(Decimal(str(r.get("Quantity") or 0)), delivered.get(str(r.get(LINE_KEY)), Decimal(0))) for r in rows]
    if not any(d > 0 for _, d in got):
        return NOT_DELIVERED
    return DELIVERED if all(d >= q for q, d in got) else PARTLY_DELIVERED
