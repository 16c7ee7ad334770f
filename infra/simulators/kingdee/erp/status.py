"""Document status (数据状态) and its audit trail: who created, modified and audited a document, and when.

A = 创建, B = 审核中, C = 已审核, D = 重新审核, Z = 暂存 (``connectors.kingdee.models.DOCUMENT_STATUS``). Auditing
sets approver and date; any other status clears them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, update

from connectors.kingdee import models as m
from connectors.kingdee.models import DOCUMENT_TABLES, TABLES
from infra.simulators.kingdee.erp.company import DEMO_USER_ID
from infra.simulators.kingdee.erp.transaction import kingdee_time, transaction


def audit_columns(
    status: str, created: datetime, modified: datetime, approved: datetime | None, user: int
) -> dict[str, Any]:
    """The status and audit-trail columns of a new document."""
    audited = status == "C"
    return {
        "FDOCUMENTSTATUS": status,
        "FCREATORID": user,
        "FCREATEDATE": created,
        "FMODIFIERID": user,
        "FMODIFYDATE": modified,
        "FAPPROVERID": user if audited else 0,
        "FAPPROVEDATE": (approved or modified) if audited else None,
    }


def status_change(status: str, ts: datetime, user_id: int) -> dict[str, Any]:
    """The columns a change to ``status`` writes; an unknown status is a ``ValueError``."""
    if status not in m.DOCUMENT_STATUS:
        raise ValueError(f"unknown FDOCUMENTSTATUS {status!r}; expected one of {sorted(m.DOCUMENT_STATUS)}")
    audited = status == "C"
    return {
        "FDOCUMENTSTATUS": status,
        "FAPPROVERID": user_id if audited else 0,
        "FAPPROVEDATE": ts if audited else None,
    }


def set_document_status(
    bind: Connection | Engine,
    header: str,
    doc_id: int | str,
    status: str,
    *,
    user_id: int = DEMO_USER_ID,
    now: datetime | None = None,
) -> None:
    """Submit (B), audit (C), un-audit (D) … any document by its header table: status, approver, FMODIFYDATE.

    Only the header changes (no back-writes): use the specific helpers for bills that write back.
    """
    ts = kingdee_time(now)
    spec = DOCUMENT_TABLES[header]
    t = TABLES[header]
    values = status_change(status, ts, user_id)
    if "FMODIFYDATE" in t.c:
        values.update(FMODIFYDATE=ts)
    if "FMODIFIERID" in t.c:
        values.update(FMODIFIERID=user_id)
    with transaction(bind) as conn:
        conn.execute(update(t).where(t.c[spec.key] == doc_id).values(values))
