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
    "text", "textarea", "integer", "double", "currency", "boolean", "date", "datetime", "lookup", "picklist"
]
DEFAULT_LENGTH = {"text": 255, "textarea": 32000, "picklist": 255, "integer": 9, "double": 16, "currency": 16}
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

    def __post_init__(self) -> None:
        names = [f.api_name for f in self.fields]
        if len(names) != len(set(names)):
            raise ValueError(f"{self.api_name}: duplicate field api_name")
        for extra in (self.system_duplicate_field, self.display_field):
            if extra is not None and extra not in names:
                raise ValueError(f"{self.api_name}: {extra} is not a field of the module")

    def field(self, api_name: str) -> FieldDef | None:
        for f in self.fields:
            if f.api_name == api_name:
                return f
        return None

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
    if kind in ("text", "textarea", "picklist"):
        if not isinstance(value, str):
            raise InvalidValue(kind)
        if len(value) > field.max_length:
            raise InvalidValue(kind, maximum_length=field.max_length)
        if kind == "picklist" and field.restricted and value and value not in field.picklist_values:
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
        if kind == "currency" and (
            integer_digits > CURRENCY_MAX_INTEGER_DIGITS or decimals > CURRENCY_MAX_DECIMALS
        ):
            raise InvalidValue(
                kind, maximum_length=CURRENCY_MAX_INTEGER_DIGITS, precision=CURRENCY_MAX_DECIMALS
            )
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
    raise InvalidValue(kind)


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def clean_record(
    module: ModuleDef, raw: Any, index: int, *, for_insert: bool
) -> tuple[dict[str, Any], RecordProblem | None]:
    """Validate one input record: ``(values to store, None)`` or ``({}, problem)``.

    Unknown keys and read-only system fields are ignored like the real API. On insert every mandatory
    field must be present and non-empty; on update only a mandatory field that is sent must be non-empty.
    """
    if not isinstance(raw, dict):
        return {}, RecordProblem("INVALID_DATA", "invalid data", {"json_path": f"$.data[{index}]"})
    for field in module.fields:
        if field.mandatory and (
            (for_insert and _empty(raw.get(field.api_name)))
            or (not for_insert and field.api_name in raw and _empty(raw[field.api_name]))
        ):
            path = f"$.data[{index}].{field.api_name}"
            return {}, RecordProblem(
                "MANDATORY_NOT_FOUND",
                "required field not found",
                {"api_name": field.api_name, "json_path": path},
            )
    values: dict[str, Any] = {}
    for key, value in raw.items():
        spec = module.field(key)
        if spec is None or spec.read_only:
            continue
        try:
            values[key] = coerce(spec, value)
        except InvalidValue as exc:
            details = {**exc.details, "api_name": key, "json_path": f"$.data[{index}].{key}"}
            return {}, RecordProblem("INVALID_DATA", "invalid data", details)
    return values, None


def field_metadata(field: FieldDef) -> dict[str, Any]:
    """One element of ``GET /settings/fields`` (a subset of the real keys)."""
    meta: dict[str, Any] = {
        "api_name": field.api_name,
        "field_label": field.field_label,
        "display_label": field.field_label,
        "data_type": field.data_type,
        "length": field.max_length,
        "system_mandatory": field.mandatory,
        "custom_field": field.custom,
        "read_only": field.read_only,
        "unique": {"casesensitive": "false"} if field.unique else {},
    }
    if field.data_type == "picklist":
        meta["pick_list_values"] = [{"display_value": v, "actual_value": v} for v in field.picklist_values]
    if field.data_type == "lookup":
        meta["lookup"] = {"module": {"api_name": field.lookup_module}}
    return meta
