"""The CRM order an outbound delivers: its id from the ``sales_orders`` ledger (by bill number) and its line ids from
the CRM order (by ``Kingdee_Entry_ID``), plus the CRM ids of the products and account a delivery links to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.engine import Engine

from connectors.settings import Settings
from connectors.zoho.client import ZohoClient
from core.id_map import IdMap
from core.ledger import open_engine
from flows.delivery_rules import LINE_KEY, LINES_FIELD, ORDERS_FLOW, ORDERS_MODULE


@dataclass(frozen=True)
class CrmOrder:
    """A sales order as the CRM has it: its id and its line ids by Kingdee entry id."""

    id: str
    lines: dict[str, str]


class Lookups(Protocol):
    def order(self, order_no: str) -> CrmOrder | None: ...

    def targets(self, flow: str, keys: list[str]) -> dict[str, str]: ...


class CrmLookups:
    """The CRM order from the ``sales_orders`` ledger (by bill number) and the CRM; opened lazily in the worker.
    One try per look: a transient failure propagates, and the order's step looks again later (it never sleeps)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._engine: Engine | None = None
        self._client: ZohoClient | None = None

    def _open(self) -> tuple[Engine, ZohoClient]:
        if self._engine is None or self._client is None:
            self._engine = open_engine(self.settings.ledger_database_url())
            self._client = ZohoClient(self.settings.zoho)
        return self._engine, self._client

    def order(self, order_no: str) -> CrmOrder | None:
        engine, client = self._open()
        target_id = IdMap(engine).targets_by_number(ORDERS_FLOW, [order_no]).get(order_no)
        if target_id is None:
            return None
        record = client.get(ORDERS_MODULE, str(target_id))
        if not record:
            return None
        rows = record.get(LINES_FIELD) or []
        return CrmOrder(str(target_id), {str(r[LINE_KEY]): str(r["id"]) for r in rows if r.get(LINE_KEY)})

    def targets(self, flow: str, keys: list[str]) -> dict[str, str]:
        engine, _ = self._open()
        return IdMap(engine).targets(flow, keys) if keys else {}
