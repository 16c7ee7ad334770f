"""The mapping language: field mappings declared as data, turned into typed rules and applied to documents.

A mapping turns a captured document into the fields of one target record (and, for fields the target owns or
shares, a target record back into the source's fields).  Errors are permanent and name the field and the value: a
required value missing, a text longer than the target allows, a code absent from a code table, a value not matching
the declared pattern, a control character in a single-line text, a reference naming a record that does not exist.
The flow dead-letters the record with that message.  The rules are read from TOML specs by
:mod:`core.mapping_spec`; the specs themselves stay with the flows (``flows/mappings/*.toml``).

References are declared: a field showing a referenced document's number or name (``group_name``) says which id
column it follows and whether the reference must resolve —
``reference = { via = "FMATERIALGROUP", required = true }``.  A required reference whose id names nothing
dead-letters the record naming the id; the capture sends the record again when that document is saved (and
whenever its number or name changes), so it then flows.  An optional one leaves the field empty.  The loader
refuses a mapping that shows a reference without declaring it.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from core.china_time import CHINA_TIME
from core.errors import PermanentError

#: Control characters, which are an error in text (a ``multiline`` field allows tabs and line breaks).
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MULTILINE_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
#: A path into a document: a column (``FNUMBER``), a resolved reference (``group_name``), or one row of a list picked
#: by a column (``texts[FLOCALEID=2052].FNAME``).
PATH_SYNTAX = re.compile(r"^(?P<list>\w+)\[(?P<col>\w+)=(?P<val>[^\]]+)\]\.(?P<field>\w+)$|^(?P<plain>\w+)$")


class MappingError(PermanentError):
    """A record the mapping cannot turn into a target record (permanent: it is dead-lettered with this message)."""


@dataclass(frozen=True)
class ReferenceRule:
    """The reference a field shows: the id column it follows (``via``), the referenced document, and whether an id
    naming no document is an error (``required``) or leaves the field empty."""

    via: str
    document: str
    required: bool


#: Ids Kingdee stores for "no reference".
_EMPTY_IDS = (None, 0, "0", "", " ")


@dataclass(frozen=True)
class FieldRule:
    target: str
    source: str | None
    constant: Any = None
    required: bool = False
    max_length: int | None = None
    pattern: re.Pattern[str] | None = None
    code_table: dict[str, Any] | None = None
    as_text: bool = False
    #: Which system owns the field: ``kingdee`` (default; its value always wins), ``crm``, or ``shared`` (last
    #: writer wins by source time).  Only ``crm`` and ``shared`` fields flow from the CRM back to Kingdee.
    owner: str = "kingdee"
    #: The field's key in a Kingdee WebAPI ``Save`` model (``FName``), for fields that flow back to Kingdee.
    kingdee_field: str | None = None
    #: A reference to a record another flow synced (``customers``, ``materials``): the source value is that
    #: flow's document id, sent as a lookup ``{"id": <target id>}`` once the id map knows it (see :class:`Ref`).
    lookup: str | None = None
    #: Path of the referenced document's number (``customer_number``), to name a reference that is missing.
    label: str | None = None
    #: Send a date-time as a date (``YYYY-MM-DD``).
    as_date: bool = False
    #: The reference this field shows (a resolved ``<name>_number``/``<name>_name``), declared in the mapping.
    reference: ReferenceRule | None = None
    #: A multi-line text (a CRM textarea): tabs and line breaks are kept; in other texts they are an error.
    multiline: bool = False
    #: Written only when the sink creates the target record; once it exists the field is its users' (an order's
    #: subject, which the sales rep may have chosen).
    on_create: bool = False


@dataclass(frozen=True)
class Ref:
    """A reference the mapping cannot resolve by itself: document ``key`` of the flow ``flow``, whose target id the
    id map knows once that flow synced it.  ``label`` (its number) and ``where`` (the field) name it in errors."""

    flow: str
    key: str
    label: str | None
    where: str

    def describe(self) -> str:
        return f"{self.where}: {self.flow} {self.label or '?'} (Kingdee id {self.key})"


@dataclass(frozen=True)
class LineRules:
    """``[lines]``: a list of the target record (``Ordered_Items``) built from a list of the document
    (``entries``), one row per entry, with field rules whose paths are relative to the entry."""

    target: str
    source: str
    fields: tuple[FieldRule, ...]


@dataclass(frozen=True)
class StatusRule:
    """``[status]``: one target value from several status columns: the first column (in ``order``) whose letter maps
    to a non-empty value decides.  Every letter must be listed; an unknown one is an error naming it."""

    target: str
    order: tuple[str, ...]
    codes: dict[str, dict[str, str]]

    def value(self, doc: dict[str, Any]) -> str | None:
        decided: str | None = None
        for column in self.order:
            letter = str(doc.get(column) or "").strip()
            table = self.codes[column]
            if letter not in table:
                raise MappingError(f"{self.target}: unknown code {letter!r} in {column} (known: {sorted(table)})",
                                   code="UNKNOWN_CODE")
            if decided is None and table[letter]:
                decided = table[letter]
        return decided


@lru_cache(maxsize=4096)
def _path(path: str) -> tuple[str | None, str, str, str, str]:
    """A source path's parts (plain field; or list, column, value, field), parsed once per path."""
    m = PATH_SYNTAX.match(path)
    assert m is not None
    return m["plain"], m["list"], m["col"], m["val"], m["field"]


def _read_path(doc: dict[str, Any], path: str) -> Any:
    plain, rows, col, val, field = _path(path)
    if plain:
        return doc.get(plain)
    for row in doc.get(rows) or []:
        if str(row.get(col)) == val:
            return row.get(field)
    return None


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):  # Kingdee keeps China wall-clock time without a zone: say which it is
        zoned = value if value.tzinfo is not None else value.replace(tzinfo=CHINA_TIME)
        return zoned.isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _check_text(rule: FieldRule, value: str, what: str, where: str = "") -> None:
    """Control characters are an error (both ways); tabs and line breaks are text in a ``multiline`` field."""
    if (_MULTILINE_CONTROL if rule.multiline else _CONTROL).search(value) is None:  # (the usual case, in C)
        return
    allowed = "\t\n\r" if rule.multiline else ""
    bad = [ch for ch in value if (ord(ch) < 32 or ord(ch) == 127) and ch not in allowed]
    if bad:
        raise MappingError(f"{what}: control character {bad[0]!r}{where} "
                           f"({'' if rule.multiline else 'a single-line text; '}at character "
                           f"{value.index(bad[0]) + 1})", code="BAD_TEXT")


def _apply_rules(rules: tuple[FieldRule, ...], doc: dict[str, Any], where: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for rule in rules:
        if rule.owner == "crm":
            continue  # the CRM's own value wins; Kingdee's is never sent
        if rule.source is None:
            out[rule.target] = rule.constant
            continue
        value = _read_path(doc, rule.source)
        if isinstance(value, str):
            value = value.strip()
        if rule.lookup is not None and value in (0, "0"):
            value = None  # Kingdee stores an empty reference as 0
        if rule.reference is not None and (value is None or value == "") and rule.reference.required:
            ref_id = doc.get(rule.reference.via)
            if isinstance(ref_id, str):
                ref_id = ref_id.strip()
            if ref_id not in _EMPTY_IDS:
                raise MappingError(
                    f"{where}{rule.target}: {rule.reference.via} = {ref_id} names no {rule.reference.document} in "
                    f"Kingdee (deleted, or not saved yet); the record is sent again once it exists",
                    code="MISSING_REFERENCE")
        if value is None or value == "":
            if rule.required:
                raise MappingError(f"{where}{rule.target}: required value {rule.source} is missing", code="MISSING")
            out[rule.target] = None
            continue
        if rule.lookup is not None:
            label = _read_path(doc, rule.label) if rule.label else None
            out[rule.target] = Ref(rule.lookup, str(value), str(label).strip() if label else None,
                                   f"{where}{rule.target}")
            continue
        if rule.as_date and isinstance(value, datetime):
            value = value.date()
        if rule.code_table is not None:
            if str(value) not in rule.code_table:
                raise MappingError(
                    f"{where}{rule.target}: unknown code {value!r} in {rule.source} (known: {sorted(rule.code_table)})",
                    code="UNKNOWN_CODE",
                )
            value = rule.code_table[str(value)]
        elif rule.as_text and not isinstance(value, str):
            value = str(value)
        if isinstance(value, str):
            if rule.max_length is not None and len(value) > rule.max_length:
                raise MappingError(
                    f"{where}{rule.target}: {len(value)} characters in {rule.source}, "
                    f"at most {rule.max_length} allowed",
                    code="TOO_LONG",
                )
            if rule.pattern is not None and not rule.pattern.match(value):
                raise MappingError(
                    f"{where}{rule.target}: {value!r} in {rule.source} does not match {rule.pattern.pattern}",
                    code="INVALID_CODE",
                )
            _check_text(rule, value, f"{where}{rule.target}", f" in {rule.source}")
        out[rule.target] = _json_value(value)
    return out


@dataclass(frozen=True)
class Mapping:
    name: str
    system: str
    module: str
    external_key: str
    only_when: dict[str, list[str]]
    fields: tuple[FieldRule, ...]
    on_delete: dict[str, Any]
    #: The document the mapping reads (``[source] document``) and its topic, if it is a Kingdee → CRM mapping.
    source_document: str | None = None
    source_topic: str | None = None
    #: ``[kingdee]``: the form and id field edits from the CRM are saved to (``BD_MATERIAL``, ``FMATERIALID``).
    kingdee_form: str | None = None
    kingdee_id_field: str | None = None
    #: Further unique CRM fields an upsert may match on when the external key is not there yet.
    match_also: tuple[str, ...] = ()
    #: ``[lines]``: line items built from a list of the document.
    lines: LineRules | None = None
    #: ``[status]``: one status value from several status columns.
    status: StatusRule | None = None

    @property
    def duplicate_check_fields(self) -> list[str]:
        return [self.external_key, *self.match_also]

    @property
    def two_way(self) -> bool:
        return any(r.owner != "kingdee" for r in self.fields)

    @property
    def create_only_fields(self) -> frozenset[str]:
        return frozenset(r.target for r in self.fields if r.on_create)

    @property
    def shared_fields(self) -> frozenset[str]:
        return frozenset(r.target for r in self.fields if r.owner == "shared")

    def applies_to(self, doc: dict[str, Any]) -> bool:
        return all(str(doc.get(col)) in allowed for col, allowed in self.only_when.items())

    def to_target(self, doc: dict[str, Any]) -> dict[str, Any]:
        """The target record; lookups (``lookup`` rules) are left as :class:`Ref` values for :func:`resolve_refs`."""
        out = _apply_rules(self.fields, doc)
        if self.status is not None:
            out[self.status.target] = self.status.value(doc)
        if self.lines is not None:
            out[self.lines.target] = [
                _apply_rules(self.lines.fields, row, where=f"{self.lines.target}[{i}].")
                for i, row in enumerate(doc.get(self.lines.source) or [], start=1)
            ]
        return out

    def deleted_target(self, key: str) -> dict[str, Any]:
        return {self.external_key: key, **self.on_delete}

    def crm_fields(self, record: dict[str, Any]) -> dict[str, Any]:
        """The fields of a CRM record that flow back to Kingdee (owned by the CRM or shared), by CRM field name,
        checked like the forward direction (length, code tables)."""
        out: dict[str, Any] = {}
        for rule in self.fields:
            if rule.owner == "kingdee" or rule.kingdee_field is None or rule.target not in record:
                continue
            value = record.get(rule.target)
            if isinstance(value, str):
                value = value.strip()
                if rule.max_length is not None and len(value) > rule.max_length:
                    raise MappingError(f"{rule.target}: {len(value)} characters, at most {rule.max_length} allowed",
                                       code="TOO_LONG")
                _check_text(rule, value, rule.target)
            if rule.code_table is not None and value is not None:
                codes = [code for code, shown in rule.code_table.items() if shown == value]
                if not codes:
                    raise MappingError(f"{rule.target}: value {value!r} has no Kingdee code "
                                       f"(known: {sorted(map(str, rule.code_table.values()))})", code="UNKNOWN_CODE")
            out[rule.target] = value
        return out

    def kingdee_owned(self, record: dict[str, Any]) -> dict[str, Any]:
        """The Kingdee-owned fields a CRM record carries (their CRM values), by CRM field name."""
        return {r.target: record[r.target] for r in self.fields
                if r.owner == "kingdee" and r.source is not None and r.target != self.external_key
                and r.target in record}

    def kingdee_model(self, fields: dict[str, Any]) -> dict[str, Any]:
        """CRM field values (from :meth:`crm_fields`) as Kingdee Save model fields."""
        by_target = {r.target: r for r in self.fields}
        model: dict[str, Any] = {}
        for name, value in fields.items():
            rule = by_target[name]
            assert rule.kingdee_field is not None
            if rule.code_table is not None and value is not None:
                value = next(code for code, shown in rule.code_table.items() if shown == value)
            model[rule.kingdee_field] = "" if value is None else value
        return model


def fingerprint(record: dict[str, Any]) -> str:
    """Content fingerprint of a target record (stable across key order)."""
    blob = json.dumps(record, sort_keys=True, ensure_ascii=False, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


def refs_in(record: dict[str, Any]) -> list[Ref]:
    """The unresolved references of a target record (top level and one level of lists, i.e. line items)."""
    found: list[Ref] = []
    for value in record.values():
        if isinstance(value, Ref):
            found.append(value)
        elif isinstance(value, list):
            found.extend(v for row in value if isinstance(row, dict) for v in row.values() if isinstance(v, Ref))
    return found


def resolve_refs(record: dict[str, Any], target_ids: dict[tuple[str, str], str]) -> tuple[dict[str, Any], list[Ref]]:
    """The record with every :class:`Ref` replaced by a lookup ``{"id": <target id>}`` from ``target_ids`` (keyed
    by (flow, key)), and the references not found there."""
    missing: list[Ref] = []

    def one(value: Any) -> Any:
        if not isinstance(value, Ref):
            return value
        target_id = target_ids.get((value.flow, value.key))
        if target_id is None:
            missing.append(value)
            return None
        return {"id": target_id}

    out: dict[str, Any] = {}
    for name, value in record.items():
        if isinstance(value, list):
            out[name] = [{k: one(v) for k, v in row.items()} if isinstance(row, dict) else row for row in value]
        else:
            out[name] = one(value)
    return out, missing
