"""物料 (materials) written as Kingdee writes them: header, zh-CN texts (``_L``) and 基本 tab, in one transaction.

Every change sets ``FMODIFYDATE``/``FMODIFIERID``; 禁用/反禁用 (disable/enable) set the forbid status, forbidder and
date.
"""

# SIM300 takes Kingdee's upper-case column attributes (``t.c.FID == fid``) for constants: not Yoda conditions.
# ruff: noqa: SIM300

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, update

from connectors.kingdee import models as m
from connectors.kingdee.models import LOCALE_ZH_CN
from infra.simulators.kingdee.erp.company import DEMO_USER_ID, ORG_ID
from infra.simulators.kingdee.erp.documents import delete_document
from infra.simulators.kingdee.erp.status import audit_columns, status_change
from infra.simulators.kingdee.erp.transaction import insert_rows, kingdee_time, transaction


def material_rows(
    ids: tuple[int, int, int],
    number: str,
    name: str,
    spec: str,
    *,
    status: str,
    forbid: str,
    group_id: int,
    base_unit_id: int,
    description: str,
    barcode: str,
    created: datetime,
    modified: datetime,
    user: int,
) -> dict[str, list[dict[str, Any]]]:
    """The rows of one material, ``ids`` = (FMATERIALID, ``_L`` FPKID, 基本 FENTRYID)."""
    material_id, pkid, base_id = ids
    return {
        "T_BD_MATERIAL": [
            {
                "FMATERIALID": material_id,
                "FNUMBER": number,
                "FMASTERID": material_id,
                "FCREATEORGID": ORG_ID,
                "FUSEORGID": ORG_ID,
                **audit_columns(status, created, modified, None, user),
                "FFORBIDSTATUS": forbid,
                "FFORBIDDERID": user if forbid == "B" else 0,
                "FFORBIDDATE": modified if forbid == "B" else None,
                "FMATERIALGROUP": group_id,
            }
        ],
        "T_BD_MATERIAL_L": [
            {
                "FPKID": pkid,
                "FMATERIALID": material_id,
                "FLOCALEID": LOCALE_ZH_CN,
                "FNAME": name,
                "FSPECIFICATION": spec,
                "FDESCRIPTION": description,
            }
        ],
        "T_BD_MATERIALBASE": [
            {
                "FENTRYID": base_id,
                "FMATERIALID": material_id,
                "FERPCLSID": "2",  # 自制 self-made
                "FBASEUNITID": base_unit_id,
                "FBARCODE": barcode,
            }
        ],
    }


def insert_material(
    bind: Connection | Engine,
    number: str,
    name: str,
    spec: str = " ",
    *,
    status: str = "C",
    forbid: str = "A",
    group_id: int = 0,
    base_unit_id: int = 0,
    description: str = " ",
    barcode: str = " ",
    user_id: int = DEMO_USER_ID,
    now: datetime | None = None,
) -> int:
    """Insert one material (header, zh-CN texts, 基本 tab) in one transaction; returns its ``FMATERIALID``."""
    ts = kingdee_time(now)
    with transaction(bind) as conn:
        ids = (
            m.next_ids(conn, "T_BD_MATERIAL", 1)[0],
            m.next_ids(conn, "T_BD_MATERIAL_L", 1)[0],
            m.next_ids(conn, "T_BD_MATERIALBASE", 1)[0],
        )
        rows = material_rows(
            ids,
            number,
            name,
            spec,
            status=status,
            forbid=forbid,
            group_id=group_id,
            base_unit_id=base_unit_id,
            description=description,
            barcode=barcode,
            created=ts,
            modified=ts,
            user=user_id,
        )
        insert_rows(conn, rows)
        return ids[0]


def bulk_insert_materials(
    bind: Connection | Engine,
    n: int,
    prefix: str = "9.99.",
    *,
    name: str = "一次性使用麻醉呼吸回路",
    spec: str = "成人 1.8m 可伸缩",
    status: str = "C",
    group_id: int = 0,
    base_unit_id: int = 0,
    start: int = 1,
    user_id: int = DEMO_USER_ID,
    now: datetime | None = None,
) -> list[int]:
    """Insert ``n`` materials numbered ``{prefix}{start:06d}``… in one transaction, as multi-row INSERTs.

    Every material gets its header, ``_L`` and ``T_BD_MATERIALBASE`` rows. Returns the ids.
    """
    ts = kingdee_time(now)
    with transaction(bind) as conn:
        ids = list(
            zip(
                m.next_ids(conn, "T_BD_MATERIAL", n),
                m.next_ids(conn, "T_BD_MATERIAL_L", n),
                m.next_ids(conn, "T_BD_MATERIALBASE", n),
                strict=True,
            )
        )
        rows: dict[str, list[dict[str, Any]]] = {}
        for i, triple in enumerate(ids):
            one = material_rows(
                triple,
                f"{prefix}{start + i:06d}",
                name,
                spec,
                status=status,
                forbid="A",
                group_id=group_id,
                base_unit_id=base_unit_id,
                description=" ",
                barcode=" ",
                created=ts,
                modified=ts,
                user=user_id,
            )
            for table, table_rows in one.items():
                rows.setdefault(table, []).extend(table_rows)
        insert_rows(conn, rows)
        return [t[0] for t in ids]


def update_material(
    bind: Connection | Engine,
    material_id: int,
    *,
    number: str | None = None,
    name: str | None = None,
    spec: str | None = None,
    description: str | None = None,
    status: str | None = None,
    group_id: int | None = None,
    base_unit_id: int | None = None,
    user_id: int = DEMO_USER_ID,
    now: datetime | None = None,
) -> None:
    """Change a material as a Kingdee save does: header ``FMODIFYDATE`` always moves, texts only if given."""
    ts = kingdee_time(now)
    header: dict[str, Any] = {"FMODIFYDATE": ts, "FMODIFIERID": user_id}
    if number is not None:
        header["FNUMBER"] = number
    if group_id is not None:
        header["FMATERIALGROUP"] = group_id
    if status is not None:
        header.update(status_change(status, ts, user_id))
    texts = {
        k: v
        for k, v in (("FNAME", name), ("FSPECIFICATION", spec), ("FDESCRIPTION", description))
        if v is not None
    }
    with transaction(bind) as conn:
        t = m.T_BD_MATERIAL
        conn.execute(update(t).where(t.c.FMATERIALID == material_id).values(header))
        if texts:
            tl = m.T_BD_MATERIAL_L
            conn.execute(
                update(tl)
                .where(tl.c.FMATERIALID == material_id, tl.c.FLOCALEID == LOCALE_ZH_CN)
                .values(texts)
            )
        if base_unit_id is not None:
            tb = m.T_BD_MATERIALBASE
            conn.execute(update(tb).where(tb.c.FMATERIALID == material_id).values(FBASEUNITID=base_unit_id))


def disable_material(
    bind: Connection | Engine, material_id: int, *, user_id: int = DEMO_USER_ID, now: datetime | None = None
) -> None:
    """禁用: ``FFORBIDSTATUS`` B with forbidder and date."""
    ts = kingdee_time(now)
    t = m.T_BD_MATERIAL
    with transaction(bind) as conn:
        conn.execute(
            update(t)
            .where(t.c.FMATERIALID == material_id)
            .values(
                FFORBIDSTATUS="B", FFORBIDDERID=user_id, FFORBIDDATE=ts, FMODIFYDATE=ts, FMODIFIERID=user_id
            )
        )


def enable_material(
    bind: Connection | Engine, material_id: int, *, user_id: int = DEMO_USER_ID, now: datetime | None = None
) -> None:
    """反禁用: ``FFORBIDSTATUS`` back to A."""
    ts = kingdee_time(now)
    t = m.T_BD_MATERIAL
    with transaction(bind) as conn:
        conn.execute(
            update(t)
            .where(t.c.FMATERIALID == material_id)
            .values(FFORBIDSTATUS="A", FFORBIDDERID=0, FFORBIDDATE=None, FMODIFYDATE=ts, FMODIFIERID=user_id)
        )


def delete_material(bind: Connection | Engine, material_id: int) -> None:
    """Delete a material's header, ``_L`` and ``T_BD_MATERIALBASE`` rows in one transaction."""
    delete_document(bind, "T_BD_MATERIAL", material_id)
