"""The Kingdee database for the local stack: schema, demo data, and the capture's configuration."""

from __future__ import annotations

import psycopg2
from sqlalchemy import Engine, create_engine, func, select

from connectors.kingdee.source import CaptureConfig
from connectors.settings import Settings


def engine(settings: Settings) -> Engine:
    return create_engine(settings.kingdee_db.sqlalchemy_url(), future=True, pool_pre_ping=True)


def prepare(settings: Settings, *, materials: int = 50, customers: int = 20, orders: int = 30) -> dict[str, int]:
    """Create the Kingdee tables and the capture's publication (idempotent) and seed demo data when the database is
    empty."""
    from connectors.kingdee import models
    from connectors.kingdee.documents import DocumentCatalog
    from connectors.kingdee.publication import ensure_publication
    from infra.simulators.kingdee.demo_seed import seed
    from infra.simulators.kingdee.erp.users import ensure_users

    eng = engine(settings)
    try:
        models.create_schema(eng)
        conn = psycopg2.connect(settings.kingdee_db.dsn())
        try:
            conn.autocommit = True
            ensure_publication(conn, settings.kingdee_db.publication, DocumentCatalog().by_table, autocreate=True)
        finally:
            conn.close()
        ensure_users(eng)
        with eng.connect() as conn:
            existing = conn.execute(select(func.count()).select_from(models.T_BD_MATERIAL)).scalar_one()
        if existing:
            return {"materials": int(existing), "seeded": 0}
        summary = seed(eng, materials=materials, customers=customers, orders=orders)
        return {**summary, "seeded": 1}
    finally:
        eng.dispose()


def capture_config(settings: Settings, documents: list[str] | None = None) -> CaptureConfig:
    db = settings.kingdee_db
    return CaptureConfig(
        dsn=db.dsn(), database=db.database, slot=db.slot, kafka=settings.kafka,
        registry_url=settings.registry.url, registry=settings.registry, state_dir=settings.state_dir,
        documents=documents,
        heartbeat_s=settings.capture_heartbeat_s,
        publication=db.publication, publication_autocreate=db.publication_autocreate,
    )
