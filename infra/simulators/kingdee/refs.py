"""Basedata references in a Save: ``{"FNumber": ".."}`` (``NumberSearch``) or an id, resolved to the stored id.

An unknown number is a validation error naming the field. With ``IsVerifyBaseDataField`` the target must also be
audited and not disabled, as the real server checks. ``org`` fields always resolve to the one demo organisation
(there is no organisation table); ``id`` fields keep a numeric id as given (numbers that are not numeric become 0).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select

from connectors.kingdee.models import TABLES
from infra.simulators.kingdee.erp.company import ORG_ID
from infra.simulators.kingdee.forms import REF_TARGETS, FieldDef
from infra.simulators.kingdee.values import BadValue, ref_number


def resolve(conn: Connection, f: FieldDef, raw: Any, *, verify: bool) -> Any:
    """The value to store for reference field ``f`` (``0`` or ``' '`` for an empty reference)."""
    ref = ref_number(raw)
    if f.kind == "org":
        return ORG_ID if ref is not None else 0
    if f.kind == "id":
        if ref is None:
            return 0
        kind, value = ref
        if kind == "id":
            return value
        return int(value) if str(value).isdigit() else 0
    assert f.ref is not None
    target = REF_TARGETS[f.ref]
    table = TABLES[target.table]
    key = table.c[target.key]
    if ref is None:
        return " " if target.key == "FENTRYID" and target.table.startswith("T_BAS") else 0
    kind, value = ref
    where = table.c[target.number] == str(value) if kind == "number" else key == value
    row = conn.execute(
        select(key, *(table.c[c] for c in ("FDOCUMENTSTATUS", "FFORBIDSTATUS") if c in table.c))
        .where(where)
        .order_by(key)
        .limit(1)
    ).first()
    shown = value if kind == "number" else f"Id={value}"
    if row is None:
        raise BadValue(f"“{f.label}”字段（{f.key}）的值“{shown}”在系统中不存在")
    if verify:
        status = row._mapping.get("FDOCUMENTSTATUS")
        forbid = row._mapping.get("FFORBIDSTATUS")
        if (status not in (None, "C")) or (forbid not in (None, "A")):
            raise BadValue(f"“{f.label}”字段（{f.key}）的值“{shown}”未审核或已禁用")
    return row[0]


def number_taken(conn: Connection, table_name: str, number_column: str, number: str, except_id: Any) -> bool:
    t = TABLES[table_name]
    (pk,) = t.primary_key.columns
    query = select(func.count()).select_from(t).where(t.c[number_column] == number)
    if except_id:
        query = query.where(pk != except_id)
    return bool(conn.execute(query).scalar())
