"""Generic module machinery: a module is an API name plus field definitions declared as data (``catalog.py``).

This file turns those declarations into the real API's behaviour on write: type checks, length limits,
mandatory fields, unknown fields silently ignored, and the per-record error shapes (``MANDATORY_NOT_FOUND``,
``INVALID_DATA`` with ``details.api_name`` / ``json_path``). It also renders the field-metadata API. Nothing
here touches storage.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from infra.simulators.zoho.errors import error_body

DataType = Literal[
    "text",
    "textarea",
    "email",
    "phone",
    "website",
    "integer",
    "double",
    "currency",
    "boolean",
    "date",
    "datetime",
    "lookup",
    "picklist",
    "subform",
    "multi_module_lookup",
]
DEFAULT_LENGTH = {
    "text": 255, "textarea": 32000, "picklist": 255, "email": 100, "phone": 30, "website": 255,
    "integer": 9, "double": 16, "currency": 16,
}  # fmt: skip
TEXT_TYPES = frozenset({"text", "textarea", "picklist", "email", "phone", "website"})
MAX_SUBFORM_ROWS = 200
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
CURRENCY_MAX_INTEGER_DIGITS = 16
CURRENCY_MAX_DECIMALS = 9
INTEGER_MAX = 2_147_483_647
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class FieldDef:
    api_name: str
    data_type: DataType = "text"
    length: int | None = None
    mandatory: bool = False
    unique: bool = False  # user-defined "Do not allow duplicate values"
    custom: bool = False
    lookup_module: str | None = None
    picklist_values: tuple[str, ...] = ()
    restricted: bool = False  # picklist rejects values outside picklist_values
    label: str | None = None
    read_only: bool = False
    # data_type "subform": the row fields and the subform's own module name (``Ordered_Items``).
    rows: tuple[FieldDef, ...] = ()
    subform_module: str | None = None
    # Inventory line items: the v2/v2.1 name (``Product_Details``) and row shape (lower-case keys) differ.
    v2_api_name: str | None = None

    def row_field(self, api_name: str) -> FieldDef | None:
        return next((f for f in self.rows if f.api_name == api_name), None)

    @property
    def max_length(self) -> int:
        return self.length or DEFAULT_LENGTH.get(self.data_type, 255)

    @property
    def field_label(self) -> str:
        return self.label or self.api_name.replace("_", " ")


SYSTEM_FIELDS: tuple[FieldDef, ...] = (
    FieldDef("id", "text", read_only=True, label="Record Id"),
    FieldDef("Owner", "lookup", lookup_module="users", read_only=True, label="Owner"),
    FieldDef("Created_By", "lookup", lookup_module="users", read_only=True),
    FieldDef("Modified_By", "lookup", lookup_module="users", read_only=True),
    FieldDef("Created_Time", "datetime", read_only=True),
    FieldDef("Modified_Time", "datetime", read_only=True),
)


@dataclass(frozen=True)
class ModuleDef:
    api_name: str
    fields: tuple[FieldDef, ...]
    system_duplicate_field: str | None = None  # what upsert matches on after the unique fields
    display_field: str | None = None  # shown as display_name in the deleted-records list
    singular_label: str | None = None
    plural_label: str | None = None
    generated_type: str = "default"  # "custom" for modules an admin created (Deliveries, Payments)
    module_id: str | None = None  # the id the metadata API shows; set by the catalog
    convertable: bool = False

    def __post_init__(self) -> None:
        names = [f.api_name for f in self.fields]
        if len(names) != len(set(names)):
            raise ValueError(f"{self.api_name}: duplicate field api_name")
        for extra in (self.system_duplicate_field, self.display_field):
            if extra is not None and extra not in names:
                raise ValueError(f"{self.api_name}: {extra} is not a field of the module")

    def field(self, api_name: str) -> FieldDef | None:
        """A module field by API name; the v2 name of line items (``Product_Details``) works too."""
        for f in self.fields:
            if f.api_name == api_name or (f.v2_api_name is not None and f.v2_api_name == api_name):
                return f
        return None

    @property
    def subforms(self) -> tuple[FieldDef, ...]:
        return tuple(f for f in self.fields if f.data_type == "subform")

    def readable_field(self, api_name: str) -> FieldDef | None:
        """A module field or a system field (id, Owner, Created_Time, ...)."""
        return self.field(api_name) or next((f for f in SYSTEM_FIELDS if f.api_name == api_name), None)

    @property
    def unique_fields(self) -> tuple[str, ...]:
        return tuple(f.api_name for f in self.fields if f.unique)

    @property
    def key_fields(self) -> tuple[str, ...]:
        """Fields indexed for duplicate checks: user-defined unique fields and the system duplicate field."""
        keys = list(self.unique_fields)
        if self.system_duplicate_field and self.system_duplicate_field not in keys:
            keys.append(self.system_duplicate_field)
        return tuple(keys)


@dataclass(frozen=True)
class RecordProblem:
    """Why one record of a write was refused; becomes one ``status: error`` element of the answer."""

    code: str
    message: str
    details: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return error_body(self.code, self.message, self.details)


class InvalidValue(ValueError):
    def __init__(self, expected: str, **details: Any) -> None:
        super().__init__(expected)
        self.details = {"expected_data_type": expected, **details}


def key_value(value: Any) -> str | None:
    """The form a value is compared in for duplicate checks and search ``equals``: case-insensitive text."""
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        return str(value.get("id")) if value.get("id") is not None else None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).casefold()


def _number(value: Any, expected: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidValue(expected)
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise InvalidValue(expected) from exc
    if not number.is_finite():
        raise InvalidValue(expected)
    return number


def coerce(field: FieldDef, value: Any) -> Any:
    """The stored form of ``value`` for ``field``, or :class:`InvalidValue`."""
    if value is None:
        return None
    kind = field.data_type
    if kind in TEXT_TYPES:
        if not isinstance(value, str):
            raise InvalidValue(kind)
        if len(value) > field.max_length:
            raise InvalidValue(kind, maximum_length=field.max_length)
        if kind == "picklist" and field.restricted and value and value not in field.picklist_values:
            raise InvalidValue(kind)
        if kind == "email" and value and not _EMAIL.match(value):
            raise InvalidValue(kind)
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise InvalidValue(kind)
        return value
    if kind == "integer":
        number = _number(value, kind)
        if number != number.to_integral_value() or abs(number) > INTEGER_MAX:
            raise InvalidValue(kind)
        return int(number)
    if kind in ("double", "currency"):
        number = _number(value, kind)
        sign, digits, exponent = number.as_tuple()
        decimals = -exponent if isinstance(exponent, int) and exponent < 0 else 0
        integer_digits = max(len(digits) - decimals, 0)
        if kind == "currency" and (integer_digits > CURRENCY_MAX_INTEGER_DIGITS or decimals > CURRENCY_MAX_DECIMALS):
            raise InvalidValue(kind, maximum_length=CURRENCY_MAX_INTEGER_DIGITS, precision=CURRENCY_MAX_DECIMALS)
        as_float = float(number)
        if math.isinf(as_float):
            raise InvalidValue(kind)
        return int(number) if number == number.to_integral_value() and decimals == 0 else as_float
    if kind == "date":
        if not isinstance(value, str) or not _DATE.match(value):
            raise InvalidValue(kind)
        try:
            date.fromisoformat(value)
        except ValueError as exc:
            raise InvalidValue(kind) from exc
        return value
    if kind == "datetime":
        if not isinstance(value, str):
            raise InvalidValue(kind)
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise InvalidValue(kind) from exc
        if moment.tzinfo is None:
            raise InvalidValue(kind)
        return moment.isoformat(timespec="seconds")
    if kind == "lookup":
        ref = value.get("id") if isinstance(value, dict) else value
        if isinstance(ref, bool) or not isinstance(ref, str | int) or not str(ref).isdigit():
            raise InvalidValue(kind)
        return {"id": str(ref)}
    if kind == "multi_module_lookup":
        # Notes' Parent_Id: {"id": ..., "module": {"api_name": "Leads"}} (v3+) or an id (+ se_module, v2).
        ref = value.get("id") if isinstance(value, dict) else value
        if isinstance(ref, bool) or not isinstance(ref, str | int) or not str(ref).isdigit():
            raise InvalidValue("lookup")
        target = value.get("module") if isinstance(value, dict) else None
        target_name = target.get("api_name") if isinstance(target, dict) else target
        return {"id": str(ref), "module": str(target_name) if target_name else None}
    raise InvalidValue(kind)


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


# v2/v2.1 inventory line items (``Product_Details``) use lower-case keys; v3+ subform rows use field names.
V2_LINE_ITEM_KEYS = {
    "product": "Product_Name", "quantity": "Quantity", "list_price": "List_Price", "Discount": "Discount",
    "discount": "Discount", "Tax": "Tax", "tax": "Tax", "product_description": "Product_Description",
    "total": "Total", "total_after_discount": "Total_After_Discount", "net_total": "Net_Total",
}  # fmt: skip
LINE_ITEM_KEYS_V2 = {
    "Product_Name": "product", "Quantity": "quantity", "List_Price": "list_price", "Discount": "Discount",
    "Tax": "Tax", "Product_Description": "product_description", "Total": "total",
    "Total_After_Discount": "total_after_discount", "Net_Total": "net_total",
}  # fmt: skip
ROW_DELETE_KEY = "_delete"


def _problem(code: str, api_name: str, path: str, **details: Any) -> RecordProblem:
    message = "required field not found" if code == "MANDATORY_NOT_FOUND" else "invalid data"
    return RecordProblem(code, message, {**details, "api_name": api_name, "json_path": path})


def sent_key(raw: dict[str, Any], field: FieldDef) -> str | None:
    """Which key of ``raw`` carries ``field``: its name, else its v2 name (line items), else None."""
    if field.api_name in raw:
        return field.api_name
    if field.v2_api_name is not None and field.v2_api_name in raw:
        return field.v2_api_name
    return None


def clean_rows(field: FieldDef, value: Any, path: str) -> tuple[list[dict[str, Any]], RecordProblem | None]:
    """Validate the rows of a subform as sent: ``[{"id"?, "_delete"?, **values}]``.

    A row with an ``id`` edits that existing row (the writer checks it exists); a row without one is new and
    needs the row's mandatory fields. Line-item rows may come in the v2 shape (``product``, ``quantity``) in
    any API version.
    """
    if value is None:
        return [], None
    if not isinstance(value, list):
        return [], _problem("INVALID_DATA", field.api_name, path, expected_data_type="jsonarray")
    if len(value) > MAX_SUBFORM_ROWS:
        return [], _problem("LIMIT_EXCEEDED", field.api_name, path, limit=MAX_SUBFORM_ROWS)
    rows: list[dict[str, Any]] = []
    for position, raw_row in enumerate(value):
        row_path = f"{path}[{position}]"
        if not isinstance(raw_row, dict):
            return [], _problem("INVALID_DATA", field.api_name, row_path, expected_data_type="jsonobject")
        if field.v2_api_name is not None:
            raw_row = {V2_LINE_ITEM_KEYS.get(k, k): v for k, v in raw_row.items()}
        row: dict[str, Any] = {}
        row_id = raw_row.get("id")
        if row_id is not None:
            if isinstance(row_id, bool) or not str(row_id).isdigit():
                return [], _problem("INVALID_DATA", "id", f"{row_path}.id", expected_data_type="bigint")
            row["id"] = str(row_id)
            if ROW_DELETE_KEY in raw_row:
                rows.append({"id": row["id"], ROW_DELETE_KEY: True})
                continue
        for required in field.rows:
            if required.mandatory and row_id is None and _empty(raw_row.get(required.api_name)):
                return [], _problem("MANDATORY_NOT_FOUND", required.api_name, f"{row_path}.{required.api_name}")
        for key, item in raw_row.items():
            spec = field.row_field(key)
            if spec is None or spec.read_only:
                continue
            if spec.mandatory and _empty(item):
                return [], _problem("MANDATORY_NOT_FOUND", key, f"{row_path}.{key}")
            try:
                row[key] = coerce(spec, item)
            except InvalidValue as exc:
                return [], _problem("INVALID_DATA", key, f"{row_path}.{key}", **exc.details)
        rows.append(row)
    return rows, None


def clean_record(
    module: ModuleDef, raw: Any, index: int, *, for_insert: bool
) -> tuple[dict[str, Any], RecordProblem | None]:
    """Validate one input record: ``(values to store, None)`` or ``({}, problem)``.

    Unknown keys and read-only system fields are ignored like the real API. On insert every mandatory
    field must be present and non-empty; on update only a mandatory field that is sent must be non-empty.
    Subforms come back as the rows sent (see :func:`clean_rows`), stored under the field's v3+ name.
    """
    if not isinstance(raw, dict):
        return {}, RecordProblem("INVALID_DATA", "invalid data", {"json_path": f"$.data[{index}]"})
    for field in module.fields:
        key = sent_key(raw, field)
        value = raw.get(key) if key else None
        missing = _empty(value) or (field.data_type == "subform" and value == [])
        if field.mandatory and ((for_insert and missing) or (not for_insert and key is not None and missing)):
            name = key or field.api_name
            return {}, _problem("MANDATORY_NOT_FOUND", name, f"$.data[{index}].{name}")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        spec = module.field(key)
        if spec is None or spec.read_only:
            continue
        if spec.data_type == "subform":
            if key != spec.api_name and spec.api_name in raw:
                continue  # both shapes sent: the v3+ name wins
            rows, problem = clean_rows(spec, value, f"$.data[{index}].{key}")
            if problem:
                return {}, problem
            values[spec.api_name] = rows
            continue
        try:
            values[key] = coerce(spec, value)
        except InvalidValue as exc:
            return {}, _problem("INVALID_DATA", key, f"$.data[{index}].{key}", **exc.details)
    if "se_module" in raw or "$se_module" in raw:
        parent = next((f for f in module.fields if f.data_type == "multi_module_lookup"), None)
        ref = values.get(parent.api_name) if parent is not None else None
        if isinstance(ref, dict) and ref.get("module") is None:
            se_module = raw.get("se_module") or raw.get("$se_module")
            ref["module"] = str(se_module) if se_module else None
    return values, None


def versioned_view(module: ModuleDef, view: dict[str, Any], version: str) -> dict[str, Any]:
    """The record as API ``version`` shows it: line items as v2 ``Product_Details`` rows in v2/v2.1."""
    if version not in ("v2", "v2.1"):
        return view
    for field in module.fields:
        if field.v2_api_name is None or field.api_name not in view:
            continue
        rows = view.pop(field.api_name)
        view[field.v2_api_name] = (
            None
            if rows is None
            else [{LINE_ITEM_KEYS_V2.get(k, k): v for k, v in row.items()} | {"line_tax": []} for row in rows]
        )
    return view
