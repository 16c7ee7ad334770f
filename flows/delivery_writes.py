"""The sales order's side of the deliveries: its delivered totals written onto the CRM order's own rows
(``Ordered_Items[].Delivered_Qty``, ``Delivery_Status``, ``Last_Delivery_Date``), through the flow's ledger (key
``order:<bill no>``), so a replay or a duplicate writes nothing."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from bytewax.outputs import DynamicSink

from connectors.common.dead_letters import dlq_topic
from connectors.common.kafka import producer
from connectors.common.retry import RetryPolicy
from connectors.common.sync import SyncCommand
from connectors.common.two_way import Planned
from connectors.settings import Settings
from connectors.zoho.client import ZohoClient
from connectors.zoho.update_sink import ZohoUpdatePartition
from core.errors import PermanentError
from core.ledger import LedgerEntry, SyncLedger, open_engine
from flows.delivery_rules import FLOW, LINE_KEY, LINES_FIELD, ORDERS_MODULE, OrderNotInCrm, delivery_status


class OrderDeliveryPartition(ZohoUpdatePartition):
    """Writes an order's delivered totals: reads its rows (all must be sent, rows not sent are removed) and sets
    ``Delivered_Qty`` on each (0 for a line no live outbound delivers), ``Delivery_Status`` and
    ``Last_Delivery_Date``."""

    def prefetch(self, commands: list[SyncCommand]) -> None:
        self._listed = None  # the rows are a subform, which the list API does not return: each order is read

    def desired(self, cmd: SyncCommand, current: dict[str, Any] | None) -> dict[str, Any]:
        """The order's delivery fields as this command sets them, on the CRM order's own rows."""
        return self._order_write(cmd, current or {})

    def _order_write(self, cmd: SyncCommand, current: dict[str, Any]) -> dict[str, Any]:
        delivered = {k: Decimal(v) for k, v in cmd.record["delivered"].items()}
        rows = current.get(LINES_FIELD) or []
        return {
            "id": str(cmd.record["id"]),
            LINES_FIELD: [{"id": r["id"], "Delivered_Qty": float(delivered.get(str(r.get(LINE_KEY)), 0))}
                          for r in rows],
            "Delivery_Status": delivery_status(rows, delivered),
            "Last_Delivery_Date": cmd.record.get("last_date"),
        }

    def write(self, planned: list[Planned], entries: dict[str, LedgerEntry]) -> None:
        ready: list[Planned] = []
        for p in planned:
            crm_id = str(p.command.record["id"])
            try:
                current, _ = self.try_call(lambda crm_id=crm_id: self.client.get(ORDERS_MODULE, crm_id),  # type: ignore[misc]
                                           f"ZOHO get {ORDERS_MODULE} {crm_id}")
            except PermanentError as exc:
                self.dead_letter(p.command, exc, getattr(exc, "attempts", 1), stage="read")
                continue
            except Exception as exc:  # transient, in the runtime: the delivery step retries it later
                self.defer(p.command, exc)
                continue
            if not current:
                self.dead_letter(p.command, OrderNotInCrm(f"sales order {p.command.number}: CRM record {crm_id} "
                                                          f"is gone"), 1, stage="read")
                continue
            ready.append(Planned(p.command, self._order_write(p.command, current), p.dropped))
        if ready:
            super().write(ready, entries)


class OrderDeliverySink(DynamicSink[SyncCommand]):
    def __init__(self, settings: Settings, policy: RetryPolicy | None = None) -> None:
        self.settings = settings
        self.policy = policy or RetryPolicy()

    def build(self, step_id: str, worker_index: int, worker_count: int) -> OrderDeliveryPartition:
        engine = open_engine(self.settings.ledger_database_url())
        return OrderDeliveryPartition(
            ZohoClient(self.settings.zoho), SyncLedger(engine, FLOW, "zoho"),
            producer(self.settings.kafka), FLOW, ORDERS_MODULE, self.policy,
            self.settings.kafka.topic(dlq_topic(FLOW)),
        )
