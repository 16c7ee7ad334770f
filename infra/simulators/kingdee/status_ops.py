"""``Submit``/``Audit``/``UnAudit``/``Delete`` by ``Numbers`` or ``Ids``, with K/3 Cloud's status rules.

Submit A/D→B, Audit B→C, UnAudit C→D, Delete only from Z/A/D (shared reference [M]). Anything else is
``MsgCode`` 12 (not operable) with a Chinese message naming the document. Each document is its own transaction
(status, approver, ``FMODIFYDATE``/``FMODIFIERID``). Auditing an outbound writes its delivered quantities back to
the sales order lines and takes them out of its warehouses' stock (即时库存); un-auditing puts both back, as K/3
Cloud does.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, select

from connectors.kingdee import models as m
from infra.simulators.kingdee import envelope as env
from infra.simulators.kingdee.erp.back_write import back_write_deliveries
from infra.simulators.kingdee.erp.documents import delete_document
from infra.simulators.kingdee.erp.inventory import adjust_inventory
from infra.simulators.kingdee.erp.status import set_document_status
from infra.simulators.kingdee.forms import FormDef
from infra.simulators.kingdee.save import STATUS_NAMES, now

RULES: dict[str, tuple[tuple[str, ...], str | None, str]] = {
    # operation: (allowed from, new status or None for delete, caption)
    "submit": (("A", "D"), "B", "提交"),
    "audit": (("B",), "C", "审核"),
    "unaudit": (("C",), "D", "反审核"),
    "delete": (("Z", "A", "D"), None, "删除"),
}


def targets(data: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(numbers, ids) named by ``{"Numbers": [...]}`` and/or ``{"Ids": "1,2"}`` (list or comma string)."""
    lowered = {str(k).lower(): v for k, v in data.items()}

    def listed(value: Any) -> list[str]:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, list):
            return [str(v).strip() for v in value if str(v).strip()]
        if isinstance(value, int) and not isinstance(value, bool):
            return [str(value)]
        return []

    return listed(lowered.get("numbers")), listed(lowered.get("ids"))


def _outstock_back_write(conn: Connection, fid: int, sign: int, user_id: int) -> None:
    link, oe, e = m.T_SAL_OUTSTOCKENTRY_R, m.T_SAL_OUTSTOCKENTRY, m.T_SAL_ORDERENTRY
    rows = conn.execute(
        select(link.c.FSOENTRYID, oe.c.FREALQTY, e.c.FID)
        .join(oe, oe.c.FENTRYID == link.c.FENTRYID)
        .join(e, e.c.FENTRYID == link.c.FSOENTRYID)
        .where(link.c.FID == fid)
    ).all()
    by_order: dict[int, list[tuple[int, Decimal]]] = {}
    for so_entry, qty, order_fid in rows:
        by_order.setdefault(order_fid, []).append((so_entry, Decimal(str(qty)) * sign))
    for order_fid, deliveries in by_order.items():
        back_write_deliveries(conn, order_fid, deliveries, now(), user_id)


class StatusOperations:
    def __init__(self, engine: Engine, user_id: int) -> None:
        self.engine = engine
        self.user_id = user_id

    def run(self, operation: str, form: FormDef, data: dict[str, Any]) -> env.Outcome:
        allowed, new_status, caption = RULES[operation]
        numbers, ids = targets(data)
        outcome = env.Outcome()
        if not numbers and not ids:
            outcome.fail(env.PARAMETER_ERROR, [env.Problem("参数Numbers和Ids不能同时为空", "Numbers")])
            return outcome
        header = m.TABLES[form.header]
        key, number_col = header.c[form.key], header.c[form.number_column]
        wanted = [("number", n) for n in numbers] + [("id", i) for i in ids]
        for dindex, (kind, value) in enumerate(wanted):
            with self.engine.begin() as conn:
                if kind == "number":
                    where = number_col == value
                else:
                    where = key == (value if form.key == "FID" and form.query_only else _as_id(value))
                row = conn.execute(
                    select(key, number_col, header.c.FDOCUMENTSTATUS).where(where).order_by(key).limit(1)
                ).first()
                if row is None:
                    shown = value if kind == "number" else f"内码{value}"
                    problem = env.Problem(f"{form.caption}“{shown}”不存在，无法{caption}", None, dindex)
                    outcome.fail(env.DATA_NOT_FOUND, [problem])
                    continue
                doc_id, number, status = row[0], str(row[1]).strip(), row[2]
                if status not in allowed:
                    message = (
                        f"{form.caption}“{number}”的数据状态为{STATUS_NAMES.get(status, status)}，不能执行{caption}操作"
                    )
                    outcome.fail(env.NOT_OPERABLE, [env.Problem(message, None, dindex)])
                    continue
                if new_status is None:
                    delete_document(conn, form.header, doc_id)
                else:
                    set_document_status(conn, form.header, doc_id, new_status, user_id=self.user_id, now=now())
                    if form.form_id == "SAL_OUTSTOCK" and operation in ("audit", "unaudit"):
                        sign = 1 if operation == "audit" else -1
                        _outstock_back_write(conn, doc_id, sign, self.user_id)
                        _outstock_stock(conn, doc_id, -sign)
            outcome.successes.append(env.Success(doc_id, number, dindex))
        return outcome


def _outstock_stock(conn: Connection, fid: int, sign: int) -> None:
    """即时库存: an audited outbound takes its quantities out of its warehouses (an un-audit puts them back)."""
    e = m.T_SAL_OUTSTOCKENTRY
    rows = conn.execute(select(e.c.FMATERIALID, e.c.FSTOCKID, e.c.FLOT, e.c.FBASEUNITQTY, e.c.FREALQTY,
                               e.c.FBASEUNITID).where(e.c.FID == fid)).all()
    for material, stock, lot, base_qty, qty, unit in rows:
        if material and stock:
            amount = Decimal(str(base_qty if base_qty else qty or 0)) * sign
            adjust_inventory(conn, int(material), int(stock), amount, lot_id=int(lot or 0), unit_id=int(unit or 0),
                             now=now())


def _as_id(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        return -1
