"""What a bill flow (invoices, receipts) declares besides the shared mapping format: which order a bill's rows name
(``[order_link]``), which amount of live bills the order shows (``[amounts]``), the Kingdee documents it reads
(``[documents.<document>]``) and sums of entry columns (``[totals]``).  Read with the mapping from one file
(``flows/mappings/invoices.toml``, ``receipts.toml``) through the one spec loader, checked at start."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from connectors.kingdee.documents import DOCUMENTS
from core.mapping import Mapping
from core.mapping_spec import MappingSpec
from core.toml_specs import Spec, SpecError
from flows.specs import MAPPINGS_DIR, load_mapping_spec

Text = Annotated[str, Field(min_length=1)]


@dataclass(frozen=True)
class OrderLinkRule:
    """``[order_link]``: the rows (``from``) of a bill naming a sales order by number (``number``), optionally
    only those whose source type (``type``) is one of ``types``; the CRM lookup field is ``target``.  When none of
    those rows names an order, the rows of ``[order_link.otherwise]`` do (a bill keyed by hand, not pushed down)."""

    target: str
    rows: str
    number: str
    type_column: str | None = None
    types: tuple[str, ...] = ()
    otherwise: OrderLinkRule | None = None

    def numbers(self, doc: dict[str, Any]) -> list[str]:
        """The order numbers the bill's rows name, in row order, without repeats."""
        return list(dict.fromkeys(n for n, _ in self.rows_of(doc)))

    def rows_of(self, doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        out = []
        for row in doc.get(self.rows) or []:
            number = str(row.get(self.number) or "").strip()
            if not number:
                continue
            if self.type_column and self.types and str(row.get(self.type_column) or "").strip() not in self.types:
                continue
            out.append((number, row))
        if not out and self.otherwise is not None:
            return self.otherwise.rows_of(doc)
        return out


@dataclass(frozen=True)
class AmountRule:
    """``[amounts]``: the CRM order field (``target``) that shows the sum of ``amount`` over the rows of live bills
    (``live_when``: column → allowed codes)."""

    target: str
    amount: str
    live_when: dict[str, tuple[str, ...]]

    def live(self, doc: dict[str, Any] | None) -> bool:
        return doc is not None and all(str(doc.get(c) or "").strip() in ok for c, ok in self.live_when.items())


@dataclass(frozen=True)
class DocumentKind:
    """``[documents.<document>]``: one Kingdee document a mapping serves (invoices: special and ordinary)."""

    document: str
    prefix: str | None = None
    values: tuple[tuple[str, Any], ...] = ()


def bill_key(kind: DocumentKind, key: str) -> str:
    """The bill's key in the flow: the document id, with its kind's prefix (ids are allocated per table)."""
    return f"{kind.prefix}-{key}" if kind.prefix else key


@dataclass(frozen=True)
class BillSpec:
    mapping: Mapping
    link: OrderLinkRule
    amounts: AmountRule
    kinds: tuple[DocumentKind, ...]
    #: ``[totals]``: record field → entry column summed into it.
    totals: tuple[tuple[str, str], ...] = ()


# --- the file's sections -----------------------------------------------------------------------------------------


class RowsSpec(Spec):
    """The rows naming an order (``[order_link]``, ``[order_link.otherwise]``)."""

    rows: Text = Field(alias="from")
    number: Text
    type: Text | None = None
    types: tuple[str, ...] = ()
    otherwise: RowsSpec | None = None

    def rule(self, target: str) -> OrderLinkRule:
        return OrderLinkRule(target, self.rows, self.number, self.type, self.types,
                             self.otherwise.rule(target) if self.otherwise else None)


class OrderLinkSpec(RowsSpec):
    target: Text


class AmountsSpec(Spec):
    target: Text
    amount: Text
    live_when: dict[str, tuple[str, ...]] = {}


class DocumentKindSpec(Spec):
    prefix: Text
    #: CRM fields set per kind (the invoice type code table).
    values: dict[str, Any] = {}


class TotalSpec(Spec):
    #: The entry column summed.
    sum: Text


class BillMappingSpec(MappingSpec):
    """A bill flow's file: the mapping format plus the bill sections."""

    order_link: OrderLinkSpec
    amounts: AmountsSpec
    documents: dict[str, DocumentKindSpec] = {}
    totals: dict[str, TotalSpec] = {}


def load_spec(name: str, directory: Path = MAPPINGS_DIR) -> BillSpec:
    """The bill flow ``name``'s spec (``flows/mappings/<name>.toml``); a wrong file fails naming it and the field."""
    raw, mapping = load_mapping_spec(name, BillMappingSpec, directory)
    path = directory / f"{name}.toml"
    known = {d.name for d in DOCUMENTS}
    for document in raw.documents:
        if document not in known:
            raise SpecError.at(path, f"documents.{document}", f"is no known document (known: {sorted(known)})")
    kinds = [DocumentKind(document, kind.prefix, tuple(kind.values.items()))
             for document, kind in raw.documents.items()]
    if not kinds:
        if mapping.source_document is None:
            raise SpecError.at(path, "source", "needs [source] document or [documents.<document>] sections")
        kinds.append(DocumentKind(mapping.source_document))
    return BillSpec(
        mapping=mapping,
        link=raw.order_link.rule(raw.order_link.target),
        amounts=AmountRule(raw.amounts.target, raw.amounts.amount, dict(raw.amounts.live_when)),
        kinds=tuple(kinds),
        totals=tuple((target, total.sum) for target, total in raw.totals.items()),
    )
