"""Read a Save's ``data``: the options and each ``Model`` split into header values and entry lines.

Keys match field keys case-insensitively. A nested object that is not a field (``SubHeadEntity``,
``FSaleOrderFinance``…: K/3 Cloud's sub-entities of the header) is flattened into the header. Unknown keys are
ignored, as the real server does. System fields (status, creator, modify date…) cannot be set by a save.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from infra.simulators.kingdee.forms import FieldDef, FormDef

SYSTEM_COLUMNS = frozenset(
    {
        "FDOCUMENTSTATUS", "FFORBIDSTATUS", "FCANCELSTATUS", "FCLOSESTATUS", "FMRPCLOSESTATUS", "FCREATORID",
        "FCREATEDATE", "FMODIFIERID", "FMODIFYDATE", "FAPPROVERID", "FAPPROVEDATE", "FMASTERID",
        "FSTOCKOUTQTY", "FREMAINOUTQTY", "FBASEUNITQTY",
    }
)  # fmt: skip


@dataclass(frozen=True)
class SaveOptions:
    need_update_fields: frozenset[str] = frozenset()  # lower-case keys; empty: every field sent
    need_return_fields: tuple[str, ...] = ()
    is_delete_entry: bool = True
    is_auto_submit_and_audit: bool = False
    verify_basedata: bool = False

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> SaveOptions:
        lowered = {str(k).lower(): v for k, v in data.items()}

        def keys(name: str) -> list[str]:
            value = lowered.get(name) or []
            if isinstance(value, str):
                value = [v for v in value.split(",") if v.strip()]
            return [str(v).strip() for v in value] if isinstance(value, list) else []

        def flag(name: str, default: bool) -> bool:
            value = lowered.get(name)
            if value is None or value == "":
                return default
            return value.strip().lower() == "true" if isinstance(value, str) else bool(value)

        return cls(
            need_update_fields=frozenset(k.lower() for k in keys("needupdatefields")),
            need_return_fields=tuple(keys("needreturnfields")),
            is_delete_entry=flag("isdeleteentry", True),
            is_auto_submit_and_audit=flag("isautosubmitandaudit", False),
            verify_basedata=flag("isverifybasedatafield", False),
        )


@dataclass
class ModelInput:
    doc_id: Any  # 0: new
    header: list[tuple[FieldDef, Any]] = field(default_factory=list)
    entries: list[dict[str, Any]] | None = None  # None: the entry key was not sent
    entry_lines: list[tuple[int, list[tuple[FieldDef, Any]]]] = field(default_factory=list)  # (entry id, values)


def _walk(form: FormDef, obj: dict[str, Any], into: ModelInput, options: SaveOptions) -> None:
    for key, value in obj.items():
        k = str(key)
        if form.entry is not None and k.lower() == form.entry.key.lower():
            into.entries = value if isinstance(value, list) else [value] if isinstance(value, dict) else []
            continue
        f = form.field(k)
        if f is None:
            if isinstance(value, dict):
                _walk(form, value, into, options)
            continue
        if f.column == form.key and f.table == form.header:
            into.doc_id = value
            continue
        if form.is_entry_field(f) or f.column in SYSTEM_COLUMNS:
            continue
        if options.need_update_fields and k.lower() not in options.need_update_fields:
            continue
        into.header.append((f, value))


def read_model(form: FormDef, model: dict[str, Any], options: SaveOptions) -> ModelInput:
    into = ModelInput(doc_id=0)
    _walk(form, model, into, options)
    listed = form.entry is not None and form.entry.key.lower() in options.need_update_fields
    if options.need_update_fields and not listed:
        into.entries = None  # entries change only when the entry key is listed in NeedUpDateFields
    if into.entries is not None and form.entry is not None:
        for line in into.entries:
            if not isinstance(line, dict):
                continue
            entry_id: Any = 0
            values: list[tuple[FieldDef, Any]] = []
            for key, value in line.items():
                k = str(key).lower()
                if k in ("fentryid", f"{form.entry.key.lower()}_fentryid"):
                    entry_id = value
                    continue
                f = form.field(k)
                if f is None or not form.is_entry_field(f) or f.column in SYSTEM_COLUMNS:
                    continue
                if options.need_update_fields and k not in options.need_update_fields and entry_id:
                    continue
                values.append((f, value))
            into.entry_lines.append((entry_id, values))
    return into
