"""Any document by its header table: delete it whole, find it by number, count the rows of every table."""

from __future__ import annotations

from sqlalchemy import Connection, Engine, delete, func, select

from connectors.kingdee.models import DOCUMENT_TABLES, TABLES
from infra.simulators.kingdee.erp.transaction import transaction


def delete_document(bind: Connection | Engine, header: str, doc_id: int | str) -> None:
    """Delete a document: the child rows carrying ``doc_id``, then the header, in one transaction."""
    spec = DOCUMENT_TABLES[header]
    with transaction(bind) as conn:
        for name in (*reversed(spec.children), spec.header):
            t = TABLES[name]
            conn.execute(delete(t).where(t.c[spec.key] == doc_id))


def lookup_id(bind: Connection | Engine, table: str, number: str) -> int | None:
    """The id of the basedata row or bill with this ``FNUMBER``/``FBILLNO`` (the lowest, if several)."""
    t = TABLES[table]
    pk = next(iter(t.primary_key.columns))
    number_col = t.c.FBILLNO if "FBILLNO" in t.c else t.c.FNUMBER
    with transaction(bind) as conn:
        found: int | None = conn.execute(select(func.min(pk)).where(number_col == number)).scalar()
        return found


def count_rows(bind: Connection | Engine) -> dict[str, int]:
    """Row count of every Kingdee table."""
    with transaction(bind) as conn:
        return {
            name: conn.execute(select(func.count()).select_from(TABLES[name])).scalar_one() for name in TABLES
        }
