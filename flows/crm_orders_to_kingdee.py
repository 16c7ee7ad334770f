"""Sales orders, CRM → Kingdee: a CRM order placed and confirmed becomes a Kingdee 销售订单; later edits follow it.

    zoho.sales_orders ─► decode ─► drop our own writes, unconfirmed orders ─► CrmOrderSink:
        new (no Kingdee_Order_ID) ─► found by bill number CRM<id> (ExecuteBillQuery), or Save (status A)
        linked                    ─► View; lines differ → Save by FID, entries matched on Kingdee_Entry_ID
        then write back Kingdee_Order_ID, Kingdee_Bill_No and each line's Kingdee_Entry_ID to the CRM order
        Kingdee refuses (MsgCode 11/12: audited, closed) ─► note on the CRM order + cdchub.dlq.crm_orders_to_kingdee

Rules are data (``flows/mappings/crm_orders_to_kingdee.toml``): which CRM ``Status`` values mean "confirmed", the
bill number prefix, the refusal codes, where the customer's and materials' Kingdee numbers are in the CRM.

Crash safety: the bill number is deterministic and looked up before a create, so a crash between Kingdee's write
and its answer creates no second order; the ledger (keyed by CRM order id, versioned by ``Modified_Time``) skips
changes already applied or dead-lettered.  Every decision is taken from the order as it is now (a ``GET``), not
from the event, so a replayed old event cannot undo a newer state.  No echo: changes made by cdchub's CRM user
(our write-back, the Kingdee → CRM ``sales_orders`` flow) are dropped; an edit that leaves the Kingdee-relevant
content as Kingdee has it (compared with ``View``) makes no Save.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream
from bytewax.outputs import DynamicSink
from pydantic import Field

from connectors.common.dead_letters import dlq_topic
from connectors.common.delivery import deliver
from connectors.common.kafka import producer
from connectors.common.ledger_sink import LedgerSinkPartition
from connectors.common.retry import GaveUp, RetryPolicy
from connectors.common.sync import SyncCommand
from connectors.common.two_way import Planned
from connectors.kingdee.client import KingdeeApiError, KingdeeWebApiClient
from connectors.kingdee.form_requirements import FormRequirements
from connectors.kingdee.models import china_now
from connectors.kingdee.sink import kingdee_client
from connectors.settings import Settings, get_settings
from connectors.zoho.client import ZohoClient
from connectors.zoho.source import zoho_topic
from core.errors import PermanentError
from core.ledger import LedgerEntry, SyncLedger, open_engine
from core.mapping import fingerprint
from core.toml_specs import Spec, load_toml_spec
from flows.kingdee_documents import DocumentEvent, read_documents, write_dead_letters
from flows.specs import spec_path

log = logging.getLogger(__name__)
FLOW = "crm_orders_to_kingdee"
MODULE = "Sales_Orders"
LINES = "Ordered_Items"
RULES_PATH = spec_path(FLOW)
PRICE_TOLERANCE = Decimal("0.005")


@dataclass(frozen=True)
class OrderRules:
    confirmed_field: str
    confirmed_values: tuple[str, ...]
    form: str
    bill_prefix: str
    #: The order's field holding the CRM order id (a text field the installation adds to the form): how cdchub
    #: finds the orders it created, whatever number Kingdee's coding rule gave them.
    link_field: str
    default_tax_rate: Decimal
    refusal_msg_codes: frozenset[int]
    account_number_fields: tuple[str, ...]
    product_number_fields: tuple[str, ...]

    def confirmed(self, order: dict[str, Any]) -> bool:
        return order.get(self.confirmed_field) in self.confirmed_values

    def bill_no(self, order_id: str) -> str:
        return f"{self.bill_prefix}{order_id}"


class ConfirmedSpec(Spec):
    field: str = Field(min_length=1)
    values: tuple[str, ...] = Field(min_length=1)


class KingdeeOrderSpec(Spec):
    form: str = Field(min_length=1)
    bill_prefix: str = Field(min_length=1)
    link_field: str = Field(min_length=1)
    default_tax_rate: Decimal = Field(ge=0)
    refusal_msg_codes: frozenset[int]


class NumbersSpec(Spec):
    account: tuple[str, ...] = Field(min_length=1)
    product: tuple[str, ...] = Field(min_length=1)


class OrderRulesSpec(Spec):
    """``flows/mappings/crm_orders_to_kingdee.toml``."""

    confirmed: ConfirmedSpec
    kingdee: KingdeeOrderSpec
    numbers: NumbersSpec


def load_rules(path: Path = RULES_PATH) -> OrderRules:
    """Read and check the rules; a wrong file fails at start naming the file and the field."""
    spec = load_toml_spec(path, OrderRulesSpec)
    return OrderRules(
        confirmed_field=spec.confirmed.field,
        confirmed_values=spec.confirmed.values,
        form=spec.kingdee.form,
        bill_prefix=spec.kingdee.bill_prefix,
        link_field=spec.kingdee.link_field,
        default_tax_rate=spec.kingdee.default_tax_rate,
        refusal_msg_codes=spec.kingdee.refusal_msg_codes,
        account_number_fields=spec.numbers.account,
        product_number_fields=spec.numbers.product,
    )


def _lookup_id(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("id")
    return None if value in (None, "") else str(value)


def to_command(rules: OrderRules, event: DocumentEvent) -> SyncCommand | None:
    """The change to look at in Kingdee, or None: our own writes, deletions, orders neither confirmed nor linked."""
    env = event.envelope
    if env.get("by_integration"):
        return None  # our write-back, or the Kingdee → CRM flow: never a new change
    if env["op"] == "d" or not env.get("record"):
        return None  # deleting a CRM order is not propagated (docs/erp-documents.md)
    order = json.loads(env["record"])
    if not order.get("Kingdee_Order_ID") and not rules.confirmed(order):
        return None  # not placed and confirmed yet
    return SyncCommand(flow=FLOW, key=event.key, number=order.get("Subject"), version=event.version,
                       record={"order_id": event.key, "subject": order.get("Subject")},
                       fingerprint=fingerprint(order), captured_at_ms=event.version, position=event.position)


class KingdeeRefused(PermanentError):
    """Kingdee refused the change of an order (already audited, closed, …); its message is kept."""


def _dec(value: Any) -> Decimal:
    return Decimal(str(value if value not in (None, "") else 0))


@dataclass(frozen=True)
class Line:
    entry_id: str | None
    material: str
    qty: Decimal
    price: Decimal | None
    tax_rate: Decimal

    def to_kingdee(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"FMaterialId": {"FNumber": self.material}, "FQty": float(self.qty)}
        if self.entry_id:
            entry["FEntryID"] = int(self.entry_id)
        if self.price is not None:
            tax_price = (self.price * (1 + self.tax_rate / 100)).quantize(Decimal("0.000001"))
            entry.update(FPrice=float(self.price), FTaxPrice=float(tax_price), FEntryTaxRate=float(self.tax_rate))
        return entry


class CrmOrderPartition(LedgerSinkPartition):
    target_system = "kingdee"

    def __init__(self, crm: ZohoClient, kingdee: KingdeeWebApiClient, ledger: SyncLedger, dlq: object,
                 dlq_topic_name: str, rules: OrderRules, policy: RetryPolicy) -> None:
        super().__init__(ledger, dlq, FLOW, dlq_topic_name)  # type: ignore[arg-type]
        self.crm = crm
        self.kingdee = kingdee
        self.rules = rules
        self.policy = policy
        self.forms = FormRequirements(kingdee)

    # --- numbers of the CRM lookups ---------------------------------------------------------------------------
    def _number(self, module: str, record_id: str | None, fields: tuple[str, ...], what: str, order: str) -> str:
        record = self.crm.get(module, record_id) if record_id else None
        if record is None:
            raise PermanentError(f"order {order}: {what} {record_id} not found in the CRM", code="REFERENCE_MISSING")
        for name in fields:
            if record.get(name) not in (None, ""):
                return str(record[name]).strip()
        raise PermanentError(f"order {order}: {what} {record_id} has no Kingdee number ({', '.join(fields)})",
                             code="REFERENCE_MISSING")

    def _lines(self, order: dict[str, Any], known_entries: set[str]) -> list[Line]:
        label = str(order.get("Subject") or order["id"])
        products: dict[str, str] = {}
        lines = []
        for n, row in enumerate(order.get(LINES) or [], start=1):
            pid = _lookup_id(row.get("Product_Name"))
            if pid not in products:
                products[str(pid)] = self._number("Products", pid, self.rules.product_number_fields,
                                                  f"{LINES}[{n}] product", label)
            entry = str(row.get("Kingdee_Entry_ID") or "") or None
            price = row.get("List_Price")
            lines.append(Line(entry if entry in known_entries else None, products[str(pid)], _dec(row.get("Quantity")),
                              None if price in (None, "") else _dec(price),
                              _dec(row["Tax_Rate"]) if row.get("Tax_Rate") not in (None, "")
                              else self.rules.default_tax_rate))
        if not lines:
            raise PermanentError(f"order {label} has no lines", code="VALIDATION")
        return lines

    # --- one order --------------------------------------------------------------------------------------------
    def _apply(self, cmd: SyncCommand) -> tuple[str | None, str]:
        order = self.crm.get(MODULE, cmd.key)
        if order is None:
            return None, "gone"  # deleted in the CRM meanwhile: nothing to do
        if order.get("Kingdee_Order_ID"):
            return self._edit(order)
        if not self.rules.confirmed(order):
            return None, "not_confirmed"
        return self._create(order)

    def _find(self, order_id: str) -> tuple[str, str] | None:
        """The Kingdee order created for this CRM order (by the link field we wrote): its id and number."""
        link = order_id.replace("'", "''")
        rows = self.kingdee.execute_bill_query(self.rules.form, "FID,FBillNo",
                                               filter_string=f"{self.rules.link_field} = '{link}'")
        return (str(rows[0][0]), str(rows[0][1] or "").strip()) if rows else None

    def _create(self, order: dict[str, Any]) -> tuple[str, str]:
        order_id = str(order["id"])
        found = self._find(order_id)
        action = "found"
        if found is None:
            customer = self._number("Accounts", _lookup_id(order.get("Account_Name")),
                                    self.rules.account_number_fields, "account", str(order.get("Subject")))
            model: dict[str, Any] = {
                "FID": 0, "FBillNo": self.rules.bill_no(order_id), self.rules.link_field: order_id,
                "FDate": order.get("Order_Date") or china_now().date().isoformat(), "FCustId": {"FNumber": customer},
                "FSaleOrderEntry": [line.to_kingdee() for line in self._lines(order, set())]}
            if order.get("Description"):
                model["FNote"] = order["Description"]
            saved = self.kingdee.save(self.rules.form, self.forms.complete(self.rules.form, model))
            found = (str(saved.ids[0]), str(saved.numbers[0]) if saved.numbers else "")
            action = "insert"
        fid, bill_no = found
        self._write_back(order, fid, bill_no)
        return fid, action

    def _edit(self, order: dict[str, Any]) -> tuple[str, str]:
        fid = str(order["Kingdee_Order_ID"])
        doc = self.kingdee.view(self.rules.form, id=fid)
        entries = doc.get("SaleOrderEntry") or []
        lines = self._lines(order, {str(e["Id"]) for e in entries})
        customer = self._number("Accounts", _lookup_id(order.get("Account_Name")), self.rules.account_number_fields,
                                "account", str(order.get("Subject")))
        if _same(doc, customer, lines):
            self._write_back(order, fid, str(doc.get("BillNo") or ""), doc)
            return fid, "unchanged"
        model = {"FID": int(fid), "FCustId": {"FNumber": customer},
                 "FSaleOrderEntry": [line.to_kingdee() for line in lines]}
        try:
            self.kingdee.save(self.rules.form, model, IsDeleteEntry=True)
        except KingdeeApiError as exc:
            if exc.msg_code in self.rules.refusal_msg_codes:
                message = "; ".join(str(e.get("Message")) for e in exc.errors) or str(exc)
                raise KingdeeRefused(f"Kingdee refused the change of order {doc.get('BillNo')}: {message}",
                                     code=f"MsgCode {exc.msg_code}") from exc
            raise
        self._write_back(order, fid, str(doc.get("BillNo") or ""))
        return fid, "update"

    def _write_back(self, order: dict[str, Any], fid: str, bill_no: str, doc: dict[str, Any] | None = None) -> None:
        """Kingdee's id and number on the CRM order, and each CRM line's Kingdee entry id (matched by position:
        Kingdee keeps the lines in the order they were saved).  Nothing is written if the CRM already has it."""
        doc = doc or self.kingdee.view(self.rules.form, id=fid)
        bill_no = bill_no or str(doc.get("BillNo") or "")
        entries = sorted(doc.get("SaleOrderEntry") or [], key=lambda e: int(e.get("Seq") or 0))
        rows = order.get(LINES) or []
        update: dict[str, Any] = {}
        if str(order.get("Kingdee_Order_ID") or "") != fid:
            update["Kingdee_Order_ID"] = fid
        if order.get("Kingdee_Bill_No") != bill_no:
            update["Kingdee_Bill_No"] = bill_no
        if len(entries) == len(rows) and any(str(r.get("Kingdee_Entry_ID") or "") != str(e["Id"])
                                             for r, e in zip(rows, entries, strict=True)):
            update[LINES] = [{"id": r["id"], "Kingdee_Entry_ID": str(e["Id"])}
                             for r, e in zip(rows, entries, strict=True)]
        elif len(entries) != len(rows):
            log.warning("order %s: %d CRM lines, %d Kingdee entries; line ids not written back", order["id"],
                        len(rows), len(entries))
        if update:
            self.crm.update(MODULE, [{"id": order["id"], **update}])

    def _note(self, cmd: SyncCommand, exc: BaseException) -> None:
        body = {"data": [{"Note_Title": "Kingdee refused the change",
                          "Note_Content": f"{exc}\nThe CRM order now differs from Kingdee's; change it in Kingdee "
                                          f"(un-audit it there first) or undo the edit here."}]}
        try:
            self.try_call(lambda: self.crm.request("POST", f"{MODULE}/{cmd.key}/Notes", json=body),
                          f"note on {MODULE} {cmd.key}")
        except Exception as note_exc:  # the dead letter still says it
            log.warning("could not add a note to %s %s: %s", MODULE, cmd.key, note_exc)

    def write(self, planned: list[Planned], entries: dict[str, LedgerEntry]) -> None:
        done = []
        for p in planned:
            try:
                (fid, action), attempts = self.try_call(partial(self._apply, p.command),
                                                        f"Kingdee order for CRM order {p.command.key}")
            except KingdeeRefused as exc:
                self._note(p.command, exc)
                self.dead_letter(p.command, exc, 1, stage="save")
                continue
            except (GaveUp, PermanentError) as exc:
                self.dead_letter(p.command, exc, getattr(exc, "attempts", 1), stage="save")
                continue
            except Exception as exc:  # transient, in the runtime: the delivery step retries it later
                self.defer(p.command, exc)
                continue
            log.info("CRM order %s → Kingdee order %s (%s)", p.command.key, fid, action)
            done.append((p, fid, action, attempts))
        self.applied(done)

    def close(self) -> None:
        super().close()
        self.crm.close()
        self.kingdee.close()


def _same(doc: dict[str, Any], customer: str, lines: list[Line]) -> bool:
    """Kingdee already holds this customer and these lines (material, quantity, price), in this order."""
    if ((doc.get("CustId") or {}).get("Number") or "").strip() != customer:
        return False
    entries = sorted(doc.get("SaleOrderEntry") or [], key=lambda e: int(e.get("Seq") or 0))
    if len(entries) != len(lines):
        return False
    for entry, line in zip(entries, lines, strict=True):
        if line.entry_id != str(entry["Id"]):
            return False
        if ((entry.get("MaterialId") or {}).get("Number") or "").strip() != line.material:
            return False
        if _dec(entry.get("Qty")) != line.qty:
            return False
        if line.price is not None and abs(_dec(entry.get("Price")) - line.price) > PRICE_TOLERANCE:
            return False
    return True


class CrmOrderSink(DynamicSink[SyncCommand]):
    def __init__(self, settings: Settings, rules: OrderRules, policy: RetryPolicy | None = None) -> None:
        self.settings = settings
        self.rules = rules
        self.policy = policy or RetryPolicy()

    def build(self, step_id: str, worker_index: int, worker_count: int) -> CrmOrderPartition:
        engine = open_engine(self.settings.ledger_database_url())
        return CrmOrderPartition(
            ZohoClient(self.settings.zoho), kingdee_client(self.settings), SyncLedger(engine, FLOW, "kingdee"),
            producer(self.settings.kafka), self.settings.kafka.topic(dlq_topic(FLOW)),
            self.rules, self.policy,
        )


def build_flow(settings: Settings | None = None, rules: OrderRules | None = None,
               *, into: Dataflow | None = None) -> Dataflow:
    settings = settings or get_settings()
    rules = rules or load_rules()
    flow = into or Dataflow(FLOW)
    events, read_dead = read_documents(flow, FLOW, settings, zoho_topic(MODULE), "zoho.record")
    commands: Stream[SyncCommand] = op.filter_map("confirmed_or_linked", events, partial(to_command, rules))
    deliver("kingdee_sales_orders", commands, CrmOrderSink(settings, rules))
    write_dead_letters(FLOW, settings, read_dead)
    return flow
