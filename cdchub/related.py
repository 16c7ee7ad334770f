"""Related documents of a traced one: an order's outbounds, invoices and receipts; an expense report's Kingdee bill
and campaign; a campaign's approval requests and expense reports.

Relations are declared below as data: which topic the traced document lives on, where the related documents live,
and what in a related document names the traced one (its bill number or its key).  The related documents are
found on their topics (the newest version of each), which are scanned within the trace's budget (a note says so
when the scan stops early); ledger links (a campaign's cost write, keyed ``campaign:<id>``) come from the sync
ledger.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from cdchub.topic_reads import Reads, scan
from connectors.common.avro import AvroDecoder, registry_client
from connectors.settings import Settings

Envelope = dict[str, Any]
#: The budget of a scan for related documents when the caller gives none (a trace gives its own).
SCAN_DEADLINE_S = 30.0
SCAN_MAX_MESSAGES = 200_000


def _doc(env: Envelope) -> dict[str, Any]:
    return env.get("after") or env.get("before") or {}


def _rows(field_name: str, column: str) -> Callable[[Envelope], set[str]]:
    def names(env: Envelope) -> set[str]:
        return {str(r.get(column)).strip() for r in _doc(env).get(field_name) or [] if r.get(column)}
    return names


def _either(*namers: Callable[[Envelope], set[str]]) -> Callable[[Envelope], set[str]]:
    """Names from any of these places (a receipt pushed down names its order in source entries, one keyed by hand
    on its rows)."""
    def names(env: Envelope) -> set[str]:
        return set().union(*(n(env) for n in namers))
    return names


def _header(column: str) -> Callable[[Envelope], set[str]]:
    def names(env: Envelope) -> set[str]:
        value = _doc(env).get(column)
        return {str(value).strip()} if value not in (None, "") else set()
    return names


def _report(env: Envelope) -> dict[str, Any]:
    text = env.get("report")
    return json.loads(text) if isinstance(text, str) else {}


@functools.cache
def _expense_rules() -> Any:
    from flows.expense_rules import load_rules

    return load_rules()


@functools.cache
def _approval_rules() -> Any:
    from flows.approval_rules import load_rules

    return load_rules()


def _report_campaign(env: Envelope) -> set[str]:
    campaign = _expense_rules().campaign_of(_report(env))
    return {campaign} if campaign else set()


def _request_record(env: Envelope) -> set[str]:
    """The CRM record an OA request is about (the form field its workflow's rules name)."""
    kind = _approval_rules().kind_of(env.get("workflow_id") or 0)
    value = (env.get("form") or {}).get(kind.crm_id_field) if kind is not None else None
    return {str(value).strip()} if value not in (None, "") else set()


@dataclass(frozen=True)
class Relation:
    kind: str
    #: The traced document's topic (without the installation's prefix).
    source_topic: str
    #: Where the related documents are.
    topic: str
    #: What a related document names: bill numbers or keys of traced documents.
    names: Callable[[Envelope], set[str]]
    #: Which of the traced document's identities they name: "number" (bill number) or "key".
    by: str = "number"


RELATIONS: tuple[Relation, ...] = (
    Relation("outbound", "kingdee.sales_order", "kingdee.outbound", _rows("entries", "FSOORDERNO")),
    Relation("invoice (VAT special)", "kingdee.sales_order", "kingdee.invoice_special",
             _rows("entries", "source_order_no")),
    Relation("invoice (ordinary)", "kingdee.sales_order", "kingdee.invoice_ordinary",
             _rows("entries", "source_order_no")),
    Relation("receipt", "kingdee.sales_order", "kingdee.receipt",
             _either(_rows("sources", "FORDERBILLNO"), _rows("entries", "FSALEORDERNO"))),
    Relation("Kingdee expense bill", "huilianyi.expense_reports", "kingdee.expense_reimbursement",
             _header("FSOURCEBILLNO"), by="key"),
    Relation("expense report", "zoho.campaigns", "huilianyi.expense_reports", _report_campaign, by="key"),
    Relation("approval request", "zoho.campaigns", "weaver.requests", _request_record, by="key"),
)

#: Ledger keys a traced document's newest version points at: an expense report's campaign cost.
LEDGER_LINKS: dict[str, Callable[[Envelope], Iterable[str]]] = {
    "huilianyi.expense_reports": lambda env: [f"campaign:{c}" for c in _report_campaign(env)],
}


@dataclass
class RelatedDocument:
    kind: str
    topic: str
    key: str
    number: str | None
    op: str
    detail: dict[str, Any] = field(default_factory=dict)


def newest_versions(settings: Settings, topic: str, reads: Reads | None = None) -> dict[str, Envelope | None]:
    """Key → newest envelope on the topic.  A deleted document keeps its last envelope, as a deletion (``op`` d:
    a deleted outbound still belongs to the order's story); None only when the topic kept nothing but the
    tombstone.  Related documents are found by what they contain, so their topic is scanned — within ``reads``'
    budget, which notes it when the scan stops early."""
    reads = reads or Reads.within(SCAN_DEADLINE_S, SCAN_MAX_MESSAGES)
    decoder = AvroDecoder(registry_client(settings.registry))
    out: dict[str, Envelope | None] = {}
    for msg in scan(settings, [topic], reads, f"related documents on {topic}"):
        if msg.key is None:
            continue
        name = msg.key.decode("utf-8", "replace")
        if msg.value is not None:
            out[name] = decoder.decode(msg.value)
        else:
            last = out.get(name)
            out[name] = {**last, "op": "d"} if last is not None else None
    return out


def related_documents(settings: Settings, topic: str, key: str, number: str | None, traced: Envelope | None,
                      reads: Reads | None = None) -> tuple[list[RelatedDocument], list[str]]:
    """The documents related to one traced document (on ``topic`` without prefix), and ledger keys it links to."""
    found: list[RelatedDocument] = []
    for rel in (r for r in RELATIONS if r.source_topic == topic):
        wanted = number if rel.by == "number" else key
        if not wanted:
            continue
        for other_key, env in newest_versions(settings, settings.kafka.topic(rel.topic), reads).items():
            if env is None or wanted not in rel.names(env):
                continue
            source = env.get("source") or {}
            found.append(RelatedDocument(rel.kind, rel.topic, other_key, source.get("number"), str(env.get("op")),
                                         {"status": _doc(env).get("FDOCUMENTSTATUS"),
                                          "deleted": env.get("op") == "d"}))
    links = list(LEDGER_LINKS[topic](traced)) if traced is not None and topic in LEDGER_LINKS else []
    return found, links
