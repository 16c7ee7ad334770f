"""WebApiReader: the polled capture's reads through Kingdee's WebAPI, for installations without database access
(Kingdee Cloud).

Field keys → columns.  ``ExecuteBillQuery`` speaks form field keys (``FNumber``, ``FMaterialId``,
``FSaleOrderEntry_FEntryID``); the capture stores database rows (``document_reader.py``).  Each form's keys are
mapped to the ``TABLE.COLUMN`` they hold: declared in ``webapi_fields.toml`` (the fields every Kingdee has), and
completed at run time from the form's metadata (``QueryBusinessInfo``, once per form): a field whose metadata names a
table of the document (``TableName``) and a column (``FieldName``) that no declared key covers is read too, so an
installation's own fields come along without configuration.  A discovered key the query refuses (MsgCode 9 naming
it) is dropped and the query asked again; a refused declared key is a configuration error and raised.

Rows.  One query per batch of documents (``ID_BATCH`` ids in the filter, 2,000 result rows a page) reads the
header, its 1:1 parts (the session locale's ``_L`` texts, ``T_BD_MATERIALBASE``, ``…FIN``) and the entry with its
``_F``/``_R`` splits: one result row per entry line, the header repeated.  Each result row is cut back into table
rows; columns no key answers but the row implies are filled in: the document id in every child table, the entry's
``FENTRYID`` in its splits, ``FLOCALEID`` (the session's locale) in ``_L`` texts.  Values are typed by the column
(``models.py``) and passed through ``wire_row``, as the log capture stores them.

Paging is by key, not ``StartRow``: each next page asks for the rows after the last one in the query's order
(``after``), so a document saved or deleted while the pages are read shifts no other out of them.

Costs, per document kind: ``read`` of N documents: ceil(N / ID_BATCH) calls when each batch's entry lines fit in one
page (one more call per further 2,000 lines, and per further entry a form's documents declare); ``changed_since`` and
``keys``: one call per 2,000 documents, plus one when the count is a multiple of 2,000 (paging stops at a short
page); ``QueryBusinessInfo`` once per form and reader.  ``key_buckets`` answers ``None``: the WebAPI has no
aggregates, so deletions are seen by reading the keys.

Limits — what the WebAPI cannot give (absent from the rows, so null in the documents):

- ``FPKID`` of ``_L`` texts and ``FENTRYID`` of the 1:1 header splits (``T_BD_MATERIALBASE``, ``T_SAL_ORDERFIN``,
  ``T_SAL_OUTSTOCKFIN``): no field key names them (only ``View`` shows them, one call per document).  Each is 1:1
  with its document here (one locale), so ``stand_in_keys`` puts the document id in their place — stable and unique
  per table, as the capture needs to key rows (``assembly.row_pk``); the ``webapi`` capture mode does so.
- ``_L`` texts of other locales than the session's: a query answers in one language.
- Columns no field key of the form shows: ``unreadable_columns`` lists them per document kind: an outbound line's lot
  id ``FLOT`` (``FLot`` reads the lot text), and the receipt's second entry ``T_AR_RECEIVEBILLSRCENTRY`` entirely (no
  keys declared: the simulated WebAPI serves one entry per form; declared, it is read by a query of its own).
- Times to the millisecond (the API shows ``2024-05-08T10:25:21.837``), and amounts as JSON numbers (doubles): exact
  to 15 significant digits.
- ``changed_since`` leaves out documents without a modified time (Kingdee sets it on every save; ``keys`` has them).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, RootModel
from sqlalchemy import DateTime, Integer, Numeric, String

from connectors.kingdee.assembly import wire_row
from connectors.kingdee.client import MAX_QUERY_LIMIT, KingdeeApiError, KingdeeWebApiClient
from connectors.kingdee.document_reader import TableRows
from connectors.kingdee.documents import HEADER, DocumentSpec, Part
from connectors.kingdee.models import metadata
from core.errors import TransientError
from core.toml_specs import load_toml_spec

log = logging.getLogger(__name__)

FIELDS_FILE = Path(__file__).with_name("webapi_fields.toml")
#: Document ids per ``IN (…)`` filter: keeps the FilterString short (a real server parses it per call).
ID_BATCH = 200
PAGE = MAX_QUERY_LIMIT

Target = tuple[str, str]  # (table, column)


def _table_column(value: str) -> str:
    table, dot, column = value.partition(".")
    if not dot or not table or not column:
        raise ValueError(f'{value!r} is not "TABLE.COLUMN"')
    return value


class WebApiFieldsSpec(RootModel[dict[str, dict[str, Annotated[str, AfterValidator(_table_column)]]]]):
    """``webapi_fields.toml``: ``[<form id>]`` tables of field key = ``"TABLE.COLUMN"``."""


def load_fields(path: Path = FIELDS_FILE) -> dict[str, dict[str, Target]]:
    """Form id → {field key: (table, column)}; a malformed file fails at once, naming it and the field
    (:class:`~core.toml_specs.SpecError`)."""
    spec = load_toml_spec(path, WebApiFieldsSpec)
    out: dict[str, dict[str, Target]] = {}
    for form, keys in spec.root.items():
        out[form.lower()] = {}
        for key, target in keys.items():
            table, _, column = target.partition(".")
            out[form.lower()][key] = (table, column)
    return out


def discovered_fields(info: Mapping[str, Any], tables: Collection[str]) -> dict[str, Target]:
    """The field keys a form's metadata (``QueryBusinessInfo``) places in ``tables``: a field's own ``TableName``,
    else its entity's, and its ``FieldName`` (the column).  Metadata without table names gives nothing."""
    found: dict[str, Target] = {}
    for entity in info.get("Entrys") or []:
        for f in entity.get("Fields") or []:
            table = f.get("TableName") or entity.get("TableName")
            if f.get("Key") and f.get("FieldName") and table in tables:
                found[str(f["Key"])] = (str(table), str(f["FieldName"]))
    return found


# --- a document kind's fields -----------------------------------------------------------------------------------


def role(spec: DocumentSpec, part: Part) -> str:
    """How a table's rows come out of a query row: ``header``, ``texts`` (1:1, the session's locale),
    ``header_split`` (1:1), ``entry`` (one per entry line) or ``entry_split`` (1:1 with its entry line)."""
    if part is spec.header:
        return "header"
    if part.merge_into == HEADER:
        return "header_split"
    if part.merge_into is not None:
        return "entry_split"
    return "texts" if part.pk == ("FPKID",) else "entry"


def implied_columns(spec: DocumentSpec, part: Part) -> set[str]:
    """Columns the reader fills in without a field key: the document id, an entry split's ``FENTRYID``, a text's
    ``FLOCALEID``."""
    kind = role(spec, part)
    return {part.doc_key} | ({"FENTRYID"} if kind == "entry_split" else set()) | (
        {"FLOCALEID"} if kind == "texts" else set())


@dataclass
class FormFields:
    """One document kind's field keys → (table, column); ``discovered`` keys came from the form's metadata."""

    spec: DocumentSpec
    keys: dict[str, Target]
    discovered: set[str] = field(default_factory=set)

    def key_for(self, table: str, column: str) -> str | None:
        return next((k for k, t in self.keys.items() if t == (table, column)), None)

    def required_key(self, table: str, column: str) -> str:
        key = self.key_for(table, column)
        if key is None:
            raise ValueError(f"{self.spec.form_id}: no WebAPI field key declared for {table}.{column} "
                             f"(connectors/kingdee/webapi_fields.toml)")
        return key

    @property
    def id_key(self) -> str:
        return self.required_key(self.spec.header.table, self.spec.key_column)

    @property
    def modified_key(self) -> str:
        return self.required_key(self.spec.header.table, self.spec.modified_column)

    def entries(self) -> list[Part]:
        return [p for p in self.spec.parts if role(self.spec, p) == "entry"]

    def query_groups(self) -> list[tuple[list[Part], list[str]]]:
        """The queries a read takes: (the tables it answers, its field keys).  The first carries the header, its 1:1
        parts and the first entry; each further entry (Kingdee queries one entry at a time) a query of its own.  An
        entry without a key for its ``FENTRYID`` is left out (its table stays empty)."""
        spec = self.spec
        read_tables = {t for t, _ in self.keys.values()}
        groups = [[spec.header, *(p for p in spec.parts if role(spec, p) in ("texts", "header_split"))]]
        entries = [p for p in self.entries() if p.table in read_tables and self.key_for(p.table, "FENTRYID")]
        for n, entry in enumerate(entries):
            parts = [entry, *(p for p in spec.parts if p.merge_into == entry.list_field)]
            if n == 0:
                groups[0] += parts
            else:
                groups.append(parts)
        out: list[tuple[list[Part], list[str]]] = []
        for parts in groups:
            tables = {p.table for p in parts}
            keys = [self.id_key] + [k for k, (t, _) in self.keys.items() if t in tables and k != self.id_key]
            out.append((parts, keys))
        return out

    def unreadable(self) -> dict[str, list[str]]:
        """Columns of each table (``models.py``) no key reads and the reader cannot imply."""
        out: dict[str, list[str]] = {}
        queried = {p.table for parts, _ in self.query_groups() for p in parts}
        for part in (self.spec.header, *self.spec.parts):
            table = metadata.tables.get(part.table)
            if table is None:
                continue
            read: set[str] = set()
            if part.table in queried:
                read = {c for t, c in self.keys.values() if t == part.table} | implied_columns(self.spec, part)
            missing = [c.name for c in table.columns if c.name not in read]
            if missing:
                out[part.table] = missing
        return out


def form_fields(spec: DocumentSpec, declared: Mapping[str, Mapping[str, Target]],
                discovered: Mapping[str, Target] | None = None) -> FormFields:
    """The declared keys of ``spec``'s form, completed by the discovered ones that read a column no declared key
    reads."""
    keys = dict(declared.get(spec.form_id.lower(), {}))
    known = {k.lower() for k in keys}
    covered = set(keys.values())
    added: set[str] = set()
    for key, target in (discovered or {}).items():
        if key.lower() not in known and target not in covered and target[0] in spec.tables:
            keys[key] = target
            covered.add(target)
            added.add(key)
    return FormFields(spec, keys, added)


def unreadable_columns(spec: DocumentSpec, declared: Mapping[str, Mapping[str, Target]] | None = None
                       ) -> dict[str, list[str]]:
    """Columns of ``spec``'s tables the declared field keys cannot read (a documented limit of the WebAPI mode)."""
    return form_fields(spec, load_fields() if declared is None else declared).unreadable()


# --- values and rows --------------------------------------------------------------------------------------------


def column_value(table: str, column: str, value: Any) -> Any:
    """A WebAPI value as the database column holds it (then ``wire_row`` makes it the stored form): amounts as
    decimals of the column's scale, times parsed, ids as integers.  Unknown columns keep the API's value."""
    if value is None:
        return None
    t = metadata.tables.get(table)
    col = t.c.get(column) if t is not None else None
    if col is None:
        return value
    kind = col.type
    if isinstance(kind, DateTime):
        return datetime.fromisoformat(str(value).replace("T", " ")) if isinstance(value, str) else value
    if isinstance(kind, Numeric) and not isinstance(kind, Integer):
        number = Decimal(str(value))
        return number.quantize(Decimal(1).scaleb(-kind.scale)) if kind.scale is not None else number
    if isinstance(kind, Integer):
        return int(value)
    if isinstance(kind, String) and not isinstance(value, str):
        return str(value)
    return value


def shape(ff: FormFields, parts: Sequence[Part], keys: Sequence[str], results: Sequence[Sequence[Any]],
          out: TableRows, seen: set[tuple[str, str]], locale: int, *, stand_in_keys: bool = False) -> None:
    """Cut query result rows (one value per key) into rows of ``parts``' tables, appended to ``out`` once each.
    ``stand_in_keys``: a 1:1 row's primary key the query cannot give (``FPKID``, a header split's ``FENTRYID``) is
    the document id."""
    spec = ff.spec
    entry_of = {p.list_field: p for p in parts if role(spec, p) == "entry"}
    for result in results:
        by_table: dict[str, dict[str, Any]] = {}
        for key, value in zip(keys, result, strict=True):
            table, column = ff.keys[key]
            by_table.setdefault(table, {})[column] = column_value(table, column, value)
        doc_id = by_table[spec.header.table][spec.key_column]
        for part in parts:
            row = dict(by_table.get(part.table, {}))
            kind = role(spec, part)
            if kind != "header" and all(v is None for v in row.values()):
                continue  # an outer join's empty side: no such row
            identity = str(doc_id)
            if kind == "entry_split":
                entry = entry_of.get(part.merge_into)
                row["FENTRYID"] = by_table.get(entry.table, {}).get("FENTRYID") if entry else None
            if kind in ("entry", "entry_split"):
                if row.get("FENTRYID") is None:
                    continue
                identity += f"|{row['FENTRYID']}"
            if kind == "texts":
                row["FLOCALEID"] = locale
            row[part.doc_key] = column_value(part.table, part.doc_key, doc_id)
            if stand_in_keys and kind in ("texts", "header_split"):
                for column in part.pk:
                    row.setdefault(column, column_value(part.table, column, doc_id))
            if (part.table, identity) in seen:
                continue
            seen.add((part.table, identity))
            out[part.table].append(wire_row(row))


def _literal(value: Any) -> str:
    """A value as a FilterString literal: numbers bare, times to the millisecond, text quoted."""
    if isinstance(value, datetime):
        return _time_literal(value)
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def _time_literal(when: datetime) -> str:
    """A time as Kingdee's filters take it, to the millisecond (SQL Server ``datetime``), rounded down."""
    return f"'{when:%Y-%m-%d %H:%M:%S}.{when.microsecond // 1000:03d}'"


def after(order: Sequence[str], last: Sequence[Any]) -> str:
    """The rows after ``last`` in the ascending order of the keys ``order``: ``(a > x) OR (a = x AND b > y)``."""
    terms = []
    for n, key in enumerate(order):
        same = [f"{order[i]} = {_literal(last[i])}" for i in range(n)]
        terms.append("(" + " AND ".join([*same, f"{key} > {_literal(last[n])}"]) + ")")
    return "(" + " OR ".join(terms) + ")"


def _both(first: str, second: str) -> str:
    return f"({first}) AND {second}" if first else second


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- the reader -------------------------------------------------------------------------------------------------


class WebApiReader:
    """A ``DocumentReader`` over ``ExecuteBillQuery`` (``document_reader.py``)."""

    def __init__(self, client: KingdeeWebApiClient, *, fields_file: Path = FIELDS_FILE, discover: bool = True,
                 id_batch: int = ID_BATCH, page_size: int = PAGE, stand_in_keys: bool = False) -> None:
        self.client = client
        #: Give 1:1 rows the document id as the primary key the WebAPI cannot read (see the module docstring).
        self.stand_in_keys = stand_in_keys
        #: Rows asked per call; a page shorter than this is the last.  Kingdee answers up to 2,000 (10,000 on newer
        #: builds), never fewer than asked while rows remain — a server capping lower needs a lower page size.
        self.page_size = page_size
        self.declared = load_fields(fields_file)
        self.discover = discover
        self.id_batch = id_batch
        self.calls = 0
        self.rows_read = 0
        self._fields: dict[str, FormFields] = {}

    # --- fields ---------------------------------------------------------------------------------------------
    def fields(self, spec: DocumentSpec) -> FormFields:
        """The form's keys: declared, completed once from its metadata when the server describes it."""
        if spec.name not in self._fields:
            found: dict[str, Target] = {}
            if self.discover:
                try:
                    self.calls += 1
                    found = discovered_fields(self.client.business_info(spec.form_id), spec.tables)
                except TransientError:
                    raise
                except Exception as exc:  # an older Kingdee: no metadata service; the declared keys still apply
                    log.warning("Kingdee cannot describe %s (%s): reading its declared field keys only",
                                spec.form_id, exc)
            self._fields[spec.name] = form_fields(spec, self.declared, found)
        return self._fields[spec.name]

    # --- queries --------------------------------------------------------------------------------------------
    def _page(self, form_id: str, keys: Sequence[str], filter_string: str, order_string: str) -> list[list[Any]]:
        self.calls += 1
        rows = self.client.execute_bill_query(form_id, keys, filter_string=filter_string,
                                              order_string=order_string, limit=self.page_size)
        self.rows_read += len(rows)
        return rows

    def _all(self, spec: DocumentSpec, keys: Sequence[str], where: str, order: Sequence[str]) -> list[list[Any]]:
        """Every result row, page by page until a short page.  Each next page starts after the last row in the
        order of ``order`` (unique together, and among ``keys``), not at a ``StartRow``: a document saved or
        deleted meanwhile cannot shift another out of the pages — which ``keys`` would report as deleted."""
        at = [keys.index(k) for k in order]
        out: list[list[Any]] = []
        condition = where
        while True:
            rows = self._page(spec.form_id, keys, condition, ", ".join(f"{k} ASC" for k in order))
            out += rows
            if len(rows) < self.page_size:
                return out
            last = [self._typed(spec, keys[i], rows[-1][i]) for i in at]
            condition = _both(where, after(order, last))

    def _typed(self, spec: DocumentSpec, key: str, value: Any) -> Any:
        """A value of a key as a filter compares it (an API time → a time)."""
        table, column = self.fields(spec).keys[key]
        return column_value(table, column, value)

    def _query(self, ff: FormFields, keys: list[str], where: str, order: Sequence[str]) -> tuple[
            list[str], list[list[Any]]]:
        """The rows of ``keys``; a discovered key the server refuses is dropped (for good) and the query asked
        again without it."""
        while True:
            try:
                return keys, self._all(ff.spec, keys, where, order)
            except KingdeeApiError as exc:
                refused = {n.lower() for n in exc.field_names}
                dropped = [k for k in keys if k in ff.discovered and k.lower() in refused]
                if not dropped:
                    raise
                log.warning("Kingdee %s refuses to query %s: read without them", ff.spec.form_id,
                            ", ".join(dropped))
                for key in dropped:
                    ff.keys.pop(key, None)
                    ff.discovered.discard(key)
                keys = [k for k in keys if k not in dropped]

    def _numeric_key(self, spec: DocumentSpec) -> bool:
        table = metadata.tables.get(spec.header.table)
        col = table.c.get(spec.key_column) if table is not None else None
        return col is not None and isinstance(col.type, Integer)

    # --- DocumentReader ---------------------------------------------------------------------------------------
    def changed_since(self, spec: DocumentSpec, since: datetime | None) -> list[tuple[str, datetime]]:
        """Documents without a modified time are left out (Kingdee sets it on every save); ``keys`` has them."""
        ff = self.fields(spec)
        modified, key = ff.modified_key, ff.id_key
        where = f"{modified} >= {_time_literal(since)}" if since is not None else f"{modified} IS NOT NULL"
        latest: dict[str, datetime] = {}
        for doc_id, when in self._all(spec, [key, modified], where, [modified, key]):
            typed = column_value(spec.header.table, spec.modified_column, when)
            if isinstance(typed, datetime):
                latest[str(doc_id)] = max(typed, latest.get(str(doc_id), typed))  # saved while paging: twice
        return sorted(latest.items(), key=lambda item: (item[1], item[0]))

    def read(self, spec: DocumentSpec, doc_ids: Sequence[str]) -> TableRows:
        ff = self.fields(spec)
        out: TableRows = {t: [] for t in spec.tables}
        seen: set[tuple[str, str]] = set()
        numeric = self._numeric_key(spec)
        ids = sorted({str(d) for d in doc_ids}, key=lambda d: (len(d), d) if numeric else (0, d))
        for batch in _chunks(ids, self.id_batch):
            where = f"{ff.id_key} IN ({', '.join(_literal(int(d) if numeric else d) for d in batch)})"
            for parts, keys in ff.query_groups():
                entry = next((p for p in parts if role(spec, p) == "entry"), None)
                order = [ff.id_key] + ([ff.required_key(entry.table, "FENTRYID")] if entry is not None else [])
                keys, results = self._query(ff, keys, where, order)
                shape(ff, parts, keys, results, out, seen, self.client.credentials.lcid,
                      stand_in_keys=self.stand_in_keys)
        return _without_orphans(spec, out)

    def key_buckets(self, spec: DocumentSpec, bucket_size: int) -> dict[int, tuple[int, int]] | None:
        return None  # the WebAPI has no aggregates: the keys are read whole

    def keys(self, spec: DocumentSpec, bucket_size: int, buckets: Collection[int] | None = None) -> set[str]:
        ff = self.fields(spec)
        found = {str(row[0]) for row in self._all(spec, [ff.id_key], "", [ff.id_key])}
        if buckets is None or not self._numeric_key(spec):
            return found
        wanted = set(buckets)
        return {k for k in found if int(k) // bucket_size in wanted}

    def close(self) -> None:
        self.client.close()


def _without_orphans(spec: DocumentSpec, rows: TableRows) -> TableRows:
    """Child rows of documents without a header row (deleted between two queries of one read) are dropped: a
    document that no longer exists has no rows."""
    headers = {str(r[spec.key_column]) for r in rows[spec.header.table]}
    for part in spec.parts:
        rows[part.table] = [r for r in rows[part.table] if str(r.get(part.doc_key)) in headers]
    return rows


def webapi_reader(settings: Any) -> WebApiReader:
    """The reader of the ``webapi`` capture mode, on the installation's WebAPI settings (``kingdee_api``).  The
    capture keys stored rows by their primary key (``assembly.row_pk``), so 1:1 rows get stand-in keys."""
    from connectors.kingdee.sink import kingdee_client

    return WebApiReader(kingdee_client(settings), stand_in_keys=True)
