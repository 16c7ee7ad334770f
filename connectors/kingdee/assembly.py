"""Document assembly: row changes of one committed transaction → one change event per touched document.

Guarantees: one event per business document per committing transaction, carrying the whole document (header, all
entry rows with their ``_F``/``_R`` splits merged in, ``_L`` texts) as it was before and after that transaction; an
entry-only change yields the whole document; a deleted document yields a ``d`` event (then the capture writes a
tombstone for its key).  A change of what documents show of a referenced document (a material group's name) yields
a ``u`` event for each of them (``documents.py``, ``Reference.resend``).  Rows of tables that belong to no declared
document are ignored.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, cast

from connectors.kingdee.document_store import DocumentStore
from connectors.kingdee.documents import HEADER, DocumentCatalog, DocumentSpec, Part, Reference, SourceOrder
from connectors.kingdee.row_types import BadValue, RowTypes

log = logging.getLogger(__name__)
ZH_CN = 2052
#: Documents of a large transaction applied, built and emitted together (bounds the capture's memory).
CHUNK_DOCUMENTS = 2000
#: Referenced documents kept built between transactions.
REFERENCED_CACHE = 10_000


class _Unchanged:
    """A column value the log did not carry (an unchanged TOASTed value without an old row): keep the stored one."""

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED: Any = _Unchanged()


@dataclass(frozen=True)
class RowChange:
    table: str
    op: str  # "I", "U", "D"
    before: dict[str, Any] | None
    after: dict[str, Any] | None


@dataclass
class Transaction:
    xid: int | None
    commit_lsn: int
    commit_time_ms: int
    changes: list[RowChange] = field(default_factory=list)


@dataclass(frozen=True)
class DocumentChange:
    spec: DocumentSpec
    doc_id: str
    op: str  # "c", "u", "d", "r"
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    tables: tuple[str, ...]

    @property
    def number(self) -> str | None:
        doc = self.after or self.before or {}
        value = doc.get(self.spec.number_column)
        return None if value is None else str(value)


@dataclass(frozen=True)
class FailedDocument:
    """A touched document that could not be built (a value its column type cannot hold)."""

    spec: DocumentSpec
    doc_id: str
    error: BadValue


def wire_value(value: Any) -> Any:
    """A decoded column value as kept in the store (JSON-safe, exact)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if value.__class__ is float and not math.isfinite(value):
        return repr(value)  # JSON has no NaN or Infinity: text, which typing makes a float again
    return value


def wire_row(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with its values as kept in the store; the same dict when they already are (most rows)."""
    for v in row.values():
        if v.__class__ in _NOT_WIRE:
            return {k: wire_value(v) for k, v in row.items()}
    return row


_NOT_WIRE = {Decimal, datetime, date, float}


def row_pk(part: Part, row: dict[str, Any]) -> str:
    if len(part.pk) == 1:
        return str(row[part.pk[0]])
    return "|".join([str(row[c]) for c in part.pk])


class DocumentAssembler:
    def __init__(self, catalog: DocumentCatalog, store: DocumentStore, types: RowTypes) -> None:
        self.catalog = catalog
        self.store = store
        self.types = types
        #: Documents of the last :meth:`apply` that could not be built; the caller dead-letters them.
        self.failures: list[FailedDocument] = []
        #: Referenced documents as built (unresolved), valid at the store's generation ``_ref_generation``.
        self._ref_cache: dict[tuple[str, str], dict[str, Any] | None] = {}
        self._ref_generation = -1
        store.index_references({(self._holder_table(spec, ref), ref.via) for spec in catalog.specs
                                for ref in spec.references if ref.resend})
        outbound = catalog.by_name.get("outbound")
        if outbound is not None and any(spec.source_order is not None for spec in catalog.specs):
            store.index_references([(outbound.header.table, "FBILLNO")])  # source orders found by bill number

    @staticmethod
    def _holder_table(spec: DocumentSpec, ref: Reference) -> str:
        """The table whose rows carry the reference's id: the header's, or that of the list it is resolved on."""
        if ref.list_field is None:
            return spec.header.table
        return next((p.table for p in spec.parts if p.list_field == ref.list_field), spec.header.table)

    # --- building documents from the store ----------------------------------------------------------------------
    def build(self, spec: DocumentSpec, doc_id: str, *, resolve: bool = True) -> dict[str, Any] | None:
        headers = self.store.rows(spec.header.table, doc_id)
        if not headers:
            return None
        doc = dict(self.store.typed_rows(spec.header.table, doc_id, self.types.typed)[0])
        lists: dict[str, list[dict[str, Any]]] = {}
        for part in spec.parts:
            if part.list_field is None:
                continue
            rows = [dict(r) for r in self.store.typed_rows(part.table, doc_id, self.types.typed)]
            if part.order_by and len(rows) > 1:
                order_by = part.order_by
                rows.sort(key=lambda r: (r.get(order_by) is None, r.get(order_by), row_pk(part, r)))
            lists[part.list_field] = rows
        for part in spec.parts:
            if part.merge_into == HEADER:
                for split in self.store.typed_rows(part.table, doc_id, self.types.typed)[:1]:
                    for k, v in split.items():
                        doc.setdefault(k, v)
            if part.merge_into is None or part.merge_on is None:
                continue
            target = {str(r.get(part.merge_on)): r for r in lists.get(part.merge_into, [])}
            for split in self.store.typed_rows(part.table, doc_id, self.types.typed):
                row = target.get(str(split.get(part.merge_on)))
                if row is None:
                    continue
                for k, v in split.items():
                    row.setdefault(k, v)
        doc.update(lists)
        if spec.source_order is not None:
            self._source_orders(spec.source_order, lists.get(spec.source_order.list_field, []))
        if resolve:
            for ref in spec.references:
                for holder in (doc.get(ref.list_field) or []) if ref.list_field else [doc]:
                    ref_id = holder.get(ref.via)
                    ref_doc = None
                    if ref_id is not None:
                        ref_doc = self._referenced(ref.document, str(ref_id))
                    holder[f"{ref.name}_number"] = (ref_doc or {}).get("FNUMBER")
                    holder[f"{ref.name}_name"] = zh_cn_name(ref_doc, ref.name_column)
        return doc

    def _source_orders(self, rule: SourceOrder, rows: list[dict[str, Any]]) -> None:
        outbound = self.catalog.by_name.get("outbound")
        for row in rows:
            kind = str(row.get(rule.type_column) or "").strip()
            number = str(row.get(rule.number_column) or "").strip()
            order = None
            if kind == "SAL_SaleOrder":
                order = number or None
            elif kind == "SAL_OUTSTOCK" and number and outbound is not None:
                doc_id = self.store.doc_by_bill_no(outbound.header.table, number)
                source = self._referenced("outbound", doc_id) if doc_id else None
                for entry in (source or {}).get("entries") or []:
                    if str(entry.get("FENTRYID")) == str(row.get(rule.row_column)):
                        order = str(entry.get("FSOORDERNO") or "").strip() or None
            row[rule.field] = order

    def _referenced(self, document: str, doc_id: str) -> dict[str, Any] | None:
        """A referenced basedata document, cached (thousands of materials share a handful of groups and units) until
        it changes: a transaction forgets the documents it touched (``_apply``); any other change of the store
        (a re-snapshot, a rollback, a learnt column) forgets them all."""
        if self._ref_generation != self.store.generation or len(self._ref_cache) >= REFERENCED_CACHE:
            self._ref_cache.clear()
            self._ref_generation = self.store.generation
        key = (document, doc_id)
        if key not in self._ref_cache:
            self._ref_cache[key] = self.build(self.catalog.by_name[document], doc_id, resolve=False)
        return self._ref_cache[key]

    # --- applying a transaction -----------------------------------------------------------------------------------
    def _touched(self, tx: Transaction) -> dict[tuple[str, str], set[str]]:
        touched: dict[tuple[str, str], set[str]] = {}
        for ch in tx.changes:
            found = self.catalog.by_table.get(ch.table)
            if found is None:
                continue
            spec, part = found
            for row in (ch.before, ch.after):
                if row is not None and row.get(part.doc_key) is not None:
                    touched.setdefault((spec.name, str(row[part.doc_key])), set()).add(ch.table)
        return touched

    def _apply_row(self, ch: RowChange) -> None:
        found = self.catalog.by_table.get(ch.table)
        if found is None:
            return
        _, part = found
        moved = ch.after is not None and ch.before is not None and (
            row_pk(part, ch.before) != row_pk(part, ch.after) or ch.before[part.doc_key] != ch.after[part.doc_key]
        )
        if ch.before is not None and (ch.op == "D" or moved):
            self.store.delete(ch.table, str(ch.before[part.doc_key]), row_pk(part, ch.before))
        if ch.after is not None and ch.op != "D":
            after = ch.after
            if any(v is UNCHANGED for v in after.values()):
                after = self._with_stored_values(ch.table, part, after)
            self.store.put(ch.table, row_pk(part, after), str(after[part.doc_key]), wire_row(after))

    def _with_stored_values(self, table: str, part: Part, row: dict[str, Any]) -> dict[str, Any]:
        """``row`` with its unchanged (not logged) values taken from the stored image of the same row."""
        pk = row_pk(part, row)
        stored = next((r for r in self.store.rows(table, str(row[part.doc_key])) if row_pk(part, r) == pk), {})
        return {k: (stored.get(k) if v is UNCHANGED else v) for k, v in row.items()}

    def apply(self, tx: Transaction) -> list[DocumentChange]:
        """Apply the transaction to the store (uncommitted) and return the document changes it makes."""
        return list(self.changes_of(tx))

    def changes_of(self, tx: Transaction) -> Iterator[DocumentChange]:
        """:meth:`apply`, giving the changes as they are made: a large transaction whose documents do not show
        one another is applied :data:`CHUNK_DOCUMENTS` documents at a time, so its images are not all in memory at
        once.  :attr:`failures` is complete once the iterator is."""
        touched = self._touched(tx)
        self.failures = []
        if len(touched) <= CHUNK_DOCUMENTS or not self._independent(tx, touched):
            yield from self._apply(tx, touched)
            return
        failures: list[FailedDocument] = []
        rows_of: dict[tuple[str, str], list[RowChange]] = {}
        for ch in tx.changes:
            found = self.catalog.by_table.get(ch.table)
            if found is not None:
                spec, part = found
                row = ch.after if ch.after is not None else ch.before
                assert row is not None  # _independent: every row names its document
                rows_of.setdefault((spec.name, str(row[part.doc_key])), []).append(ch)
        keys = list(touched)
        for start in range(0, len(keys), CHUNK_DOCUMENTS):
            chunk = keys[start:start + CHUNK_DOCUMENTS]
            part_tx = Transaction(tx.xid, tx.commit_lsn, tx.commit_time_ms,
                                  [ch for key in chunk for ch in rows_of.get(key, [])])
            yield from self._apply(part_tx, {key: touched[key] for key in chunk})
            failures += self.failures
        self.failures = failures

    def _independent(self, tx: Transaction, touched: dict[tuple[str, str], set[str]]) -> bool:
        """No touched document shows another kind of touched document (a reference, a source order), every row
        names its document, and no row moved to another document or key: the documents can be applied apart."""
        kinds = {name for name, _ in touched}
        for name in kinds:
            spec = self.catalog.by_name[name]
            shown = {ref.document for ref in spec.references} | ({"outbound"} if spec.source_order else set())
            if shown & kinds:
                return False
        for ch in tx.changes:
            found = self.catalog.by_table.get(ch.table)
            if found is None:
                continue
            row = ch.after if ch.after is not None else ch.before
            if row is None or row.get(found[1].doc_key) is None:
                return False  # a row of no document: applied as the whole transaction applies it
            if ch.before is not None and ch.after is not None and (
                    row_pk(found[1], ch.before) != row_pk(found[1], ch.after)
                    or ch.before.get(found[1].doc_key) != ch.after.get(found[1].doc_key)):
                return False
        return True

    def _apply(self, tx: Transaction, touched: dict[tuple[str, str], set[str]]) -> list[DocumentChange]:
        self.failures = []
        self._load(touched)
        before: dict[tuple[str, str], dict[str, Any] | None] = {}
        for key in touched:
            try:
                before[key] = self.build(self.catalog.by_name[key[0]], key[1])
            except BadValue:
                before[key] = None  # the stored image was already unreadable: emitted as a new document
        valid = self._ref_generation == self.store.generation
        for ch in tx.changes:
            self._apply_row(ch)
        if valid:  # what the cache holds of other documents still stands
            for key in touched:
                self._ref_cache.pop(key, None)
            self._ref_generation = self.store.generation
        changes: list[DocumentChange] = []
        for (name, doc_id), tables in touched.items():
            spec = self.catalog.by_name[name]
            try:
                after = self.build(spec, doc_id)
            except BadValue as exc:
                self.failures.append(FailedDocument(spec, doc_id, exc))
                continue
            old = before[(name, doc_id)]
            if old is None and after is None:
                log.debug("rows of %s %s changed without a header; no document to emit", name, doc_id)
                continue
            op = "c" if old is None else ("d" if after is None else "u")
            if op == "u" and old == after:
                continue
            changes.append(DocumentChange(spec, doc_id, op, old, after, tuple(sorted(tables))))
        return changes + self._dependents_of(changes, set(touched))

    def _load(self, touched: dict[tuple[str, str], set[str]]) -> None:
        """The stored rows of every touched document, in a few queries rather than a few per document."""
        docs: dict[str, list[str]] = {}
        for name, doc_id in touched:
            docs.setdefault(name, []).append(doc_id)
        for name, ids in docs.items():
            self.store.load(self.catalog.by_name[name].tables, ids)

    def _dependents_of(self, changes: list[DocumentChange], touched: set[tuple[str, str]]) -> list[DocumentChange]:
        """Documents this transaction did not touch that show a referenced document whose number or name it
        changed: each again, as a ``u`` whose before-image shows the old values."""
        out: list[DocumentChange] = []
        for change in changes:
            for spec, ref in self.catalog.dependents(change.spec.name):
                old, new = _shown(change.before, ref), _shown(change.after, ref)
                if old == new:
                    continue
                for doc_id in self.store.docs_referencing(self._holder_table(spec, ref), ref.via, change.doc_id):
                    if (spec.name, doc_id) in touched:
                        continue  # built in this transaction, with the new values already
                    touched.add((spec.name, doc_id))
                    try:
                        after = self.build(spec, doc_id)
                    except BadValue as exc:
                        self.failures.append(FailedDocument(spec, doc_id, exc))
                        continue
                    if after is None:
                        continue
                    out.append(DocumentChange(spec, doc_id, "u", _showing(after, ref, change.doc_id, old), after,
                                              (change.spec.header.table,)))
        return out


def _shown(doc: dict[str, Any] | None, ref: Reference) -> dict[str, Any]:
    """What a referencing document shows of ``doc`` (its number and/or name)."""
    values = {"number": (doc or {}).get("FNUMBER"), "name": zh_cn_name(doc, ref.name_column) if doc else None}
    return {k: values[k] for k in ref.shows}


def _showing(doc: dict[str, Any], ref: Reference, ref_id: str, shown: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``doc`` in which the reference to ``ref_id`` shows ``shown`` (the referenced document's old
    values): the before-image of a document re-sent because its reference changed."""
    copy = {k: ([dict(r) for r in v] if isinstance(v, list) else v) for k, v in doc.items()}
    holders = copy.get(ref.list_field) or [] if ref.list_field else [copy]
    for holder in holders:
        if str(holder.get(ref.via)) == ref_id:
            for what, value in shown.items():
                holder[f"{ref.name}_{what}"] = value
    return copy


def zh_cn_name(doc: dict[str, Any] | None, column: str = "FNAME") -> str | None:
    """The zh-CN (2052) name of a basedata document, else its first text's name; a document without texts (a
    user) carries its name itself."""
    texts = (doc or {}).get("texts") or []
    if not texts:
        return (doc or {}).get(column)
    for text in texts:
        if text.get("FLOCALEID") == ZH_CN:
            return cast("str | None", text.get(column))
    return cast("str | None", texts[0].get(column)) if texts else None
