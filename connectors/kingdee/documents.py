"""Kingdee business documents declared as data: which tables make up a document and how.

A Kingdee document is a header table plus entry tables plus ``_L`` (texts), ``_F`` (prices/amounts) and ``_R``
(progress/source links) splits.  Every split and child table carries its document's id (``FID`` for bills, the
basedata id for ``_L`` texts), so every row change names its document.  Split tables of entries (``_F``, ``_R``)
are merged into the entry rows by ``FENTRYID``; ``_L`` texts and entries become lists.

References to basedata (a material's group and unit, an order's customer) are resolved at assembly time from the
captured basedata documents and carried as ``<name>_number`` / ``<name>_name`` (the zh-CN name).  When a referenced
document's number or name changes (a group renamed, a customer type created after the customers that name it,
deleted), every document that shows it is sent again with the new values — unless the reference is declared
``resend=False`` (it only names the reference in errors; the target links by id).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Part:
    """One table of a document."""

    table: str
    pk: tuple[str, ...]
    #: Column holding the document's id.
    doc_key: str
    #: List field in the document (``entries``, ``texts``); ``None`` for the header.
    list_field: str | None = None
    #: For a split of a child table: merged into that list's rows, matched on this column.  ``HEADER`` merges a
    #: 1:1 split of the header (``T_BD_MATERIALBASE``) into the document itself.
    merge_into: str | None = None
    merge_on: str | None = None
    #: Rows of a list are ordered by this column (``FSEQ``), else by primary key.
    order_by: str | None = None


@dataclass(frozen=True)
class Reference:
    """A basedata reference resolved from another captured document."""

    name: str
    document: str
    via: str
    #: The referenced document's name column in its ``_L`` texts (assistant data calls it ``FDATAVALUE``).
    name_column: str = "FNAME"
    #: Resolved on each row of this list (``entries``: an order line's material) instead of on the header.
    list_field: str | None = None
    #: Send the referencing documents again when what they show of the referenced document (``shows``: its
    #: ``number``, its ``name``) changes.
    resend: bool = True
    shows: tuple[str, ...] = ("number", "name")


@dataclass(frozen=True)
class SourceOrder:
    """Each row of a list gets ``field``: the sales order it comes from.  A row whose source (``type_column``) is
    a sales order names it directly (``number_column``); a row made from an outbound names the outbound bill and
    line (``row_column``), and the order is the one that outbound line delivers (its ``FSOORDERNO``) — resolved
    from the captured outbound, so an invoice pushed down from an outbound still reaches its order."""

    list_field: str = "entries"
    field: str = "source_order_no"
    type_column: str = "FSRCBILLTYPEID"
    number_column: str = "FSRCBILLNO"
    row_column: str = "FSRCROWID"


@dataclass(frozen=True)
class DocumentSpec:
    name: str
    form_id: str
    header: Part
    parts: tuple[Part, ...] = ()
    references: tuple[Reference, ...] = ()
    #: Code column (``FNUMBER``/``FBILLNO``) used in logs and traces.
    number_column: str = "FNUMBER"
    source_order: SourceOrder | None = None
    #: Header column a Kingdee save moves (the polled capture modes find changed documents by it).
    modified_column: str = "FMODIFYDATE"

    @property
    def topic(self) -> str:
        return f"kingdee.{self.name}"

    @property
    def tables(self) -> tuple[str, ...]:
        return (self.header.table, *(p.table for p in self.parts))

    @property
    def key_column(self) -> str:
        return self.header.doc_key


HEADER = "@header"


def _header(table: str, key: str) -> Part:
    return Part(table=table, pk=(key,), doc_key=key)


def _texts(table: str, key: str) -> Part:
    return Part(table=table, pk=("FPKID",), doc_key=key, list_field="texts", order_by="FLOCALEID")


def _entries(table: str, list_field: str = "entries") -> Part:
    return Part(table=table, pk=("FENTRYID",), doc_key="FID", list_field=list_field, order_by="FSEQ")


def _split(table: str, into: str = "entries") -> Part:
    return Part(table=table, pk=("FENTRYID",), doc_key="FID", merge_into=into, merge_on="FENTRYID")


def _header_split(table: str, key: str) -> Part:
    return Part(table=table, pk=("FENTRYID",), doc_key=key, merge_into=HEADER)


DOCUMENTS: tuple[DocumentSpec, ...] = (
    DocumentSpec("user", "SEC_User", _header("T_SEC_USER", "FUSERID")),
    DocumentSpec("material_group", "BD_MATERIALGROUP", _header("T_BD_MATERIALGROUP", "FID"),
                 (_texts("T_BD_MATERIALGROUP_L", "FID"),)),
    DocumentSpec("unit", "BD_UNIT", _header("T_BD_UNIT", "FUNITID"), (_texts("T_BD_UNIT_L", "FUNITID"),)),
    DocumentSpec("stock", "BD_STOCK", _header("T_BD_STOCK", "FSTOCKID"), (_texts("T_BD_STOCK_L", "FSTOCKID"),)),
    DocumentSpec(
        "material", "BD_MATERIAL", _header("T_BD_MATERIAL", "FMATERIALID"),
        (_texts("T_BD_MATERIAL_L", "FMATERIALID"), _header_split("T_BD_MATERIALBASE", "FMATERIALID")),
        (Reference("group", "material_group", "FMATERIALGROUP"), Reference("base_unit", "unit", "FBASEUNITID")),
    ),
    DocumentSpec("customer_type", "BOS_ASSISTANTDATA_DETAIL", _header("T_BAS_ASSISTANTDATAENTRY", "FENTRYID"),
                 (_texts("T_BAS_ASSISTANTDATAENTRY_L", "FENTRYID"),)),
    DocumentSpec("customer", "BD_Customer", _header("T_BD_CUSTOMER", "FCUSTID"),
                 (_texts("T_BD_CUSTOMER_L", "FCUSTID"),),
                 (Reference("type", "customer_type", "FCUSTTYPEID", name_column="FDATAVALUE"),)),
    DocumentSpec(
        "sales_order", "SAL_SaleOrder", _header("T_SAL_ORDER", "FID"),
        (_header_split("T_SAL_ORDERFIN", "FID"), _entries("T_SAL_ORDERENTRY"), _split("T_SAL_ORDERENTRY_F"),
         _split("T_SAL_ORDERENTRY_R")),
        (Reference("customer", "customer", "FCUSTID", shows=("number",)),
         Reference("material", "material", "FMATERIALID", list_field="entries", resend=False),
         Reference("approver", "user", "FAPPROVERID", shows=("name",))),
        number_column="FBILLNO",
    ),
    DocumentSpec(
        "outbound", "SAL_OUTSTOCK", _header("T_SAL_OUTSTOCK", "FID"),
        (_header_split("T_SAL_OUTSTOCKFIN", "FID"), _entries("T_SAL_OUTSTOCKENTRY"),
         _split("T_SAL_OUTSTOCKENTRY_F"), _split("T_SAL_OUTSTOCKENTRY_R")),
        (Reference("customer", "customer", "FCUSTOMERID", resend=False),),
        number_column="FBILLNO",
    ),
    DocumentSpec(
        "receipt", "AR_RECEIVEBILL", _header("T_AR_RECEIVEBILL", "FID"),
        (_entries("T_AR_RECEIVEBILLENTRY"), _entries("T_AR_RECEIVEBILLSRCENTRY", "sources")),
        (Reference("payer", "customer", "FCONTACTUNIT", resend=False),
         Reference("approver", "user", "FAPPROVERID", shows=("name",))),
        number_column="FBILLNO",
    ),
    DocumentSpec(
        "invoice_special", "IV_SALESIC", _header("T_IV_SALESIC", "FID"), (_entries("T_IV_SALESICENTRY"),),
        (Reference("customer", "customer", "FCUSTOMERID", resend=False),),
        number_column="FBILLNO", source_order=SourceOrder(),
    ),
    DocumentSpec(
        "invoice_ordinary", "IV_SALESOC", _header("T_IV_SALESOC", "FID"), (_entries("T_IV_SALESOCENTRY"),),
        (Reference("customer", "customer", "FCUSTOMERID", resend=False),),
        number_column="FBILLNO", source_order=SourceOrder(),
    ),
    DocumentSpec(
        "inventory", "STK_Inventory", _header("T_STK_INVENTORY", "FID"), (),
        (Reference("material", "material", "FMATERIALID", resend=False),
         Reference("stock", "stock", "FSTOCKID", resend=False)),
        number_column="FID", modified_column="FUPDATETIME",
    ),
    DocumentSpec(
        "expense_reimbursement", "ER_ExpReimbursement", _header("T_ER_EXPREIMBURSE", "FID"),
        (_entries("T_ER_EXPREIMBURSEENTRY"),),
        number_column="FBILLNO",
    ),
)


@dataclass
class DocumentCatalog:
    """Lookups over the declared documents (by name, by table)."""

    specs: tuple[DocumentSpec, ...] = DOCUMENTS
    by_name: dict[str, DocumentSpec] = field(init=False)
    by_table: dict[str, tuple[DocumentSpec, Part]] = field(init=False)

    def __post_init__(self) -> None:
        self.by_name = {s.name: s for s in self.specs}
        self.by_table = {}
        for spec in self.specs:
            for part in (spec.header, *spec.parts):
                self.by_table[part.table] = (spec, part)

    @property
    def tables(self) -> list[str]:
        return list(self.by_table)

    def dependents(self, document: str) -> list[tuple[DocumentSpec, Reference]]:
        """The documents (and their reference) that show ``document``'s number or name and are re-sent when it
        changes."""
        return [(spec, ref) for spec in self.specs for ref in spec.references
                if ref.document == document and ref.resend]

    def only(self, names: list[str]) -> DocumentCatalog:
        """The catalog restricted to ``names`` plus the documents they reference."""
        wanted: set[str] = set()
        todo = list(names)
        while todo:
            name = todo.pop()
            if name in wanted:
                continue
            wanted.add(name)
            todo.extend(r.document for r in self.by_name[name].references)
        return DocumentCatalog(tuple(s for s in self.specs if s.name in wanted))
