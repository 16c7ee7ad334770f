"""QueryReader: the polled capture's reads through SQLAlchemy Core — run for real on SQLite (the Kingdee model's
tables), and the SQL it generates for SQL Server and Oracle checked as compiled statements."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, update
from sqlalchemy.dialects import mssql, oracle

from connectors.kingdee import models as m
from connectors.kingdee.documents import DocumentCatalog
from connectors.kingdee.query_reader import IN_CHUNK, QueryReader
from infra.simulators.kingdee.erp import delete_material, insert_material, update_material

MATERIAL = DocumentCatalog().by_name["material"]
CUSTOMER_TYPE = DocumentCatalog().by_name["customer_type"]


@pytest.fixture()
def kingdee(tmp_path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{tmp_path / 'kingdee.db'}")
    m.create_schema(engine)
    return engine


def sql(statement: object, dialect: object) -> str:
    """The statement as the dialect writes it, identifiers quoted the standard way (SQL Server's [] as "")."""
    text = str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))  # type: ignore[attr-defined]
    return " ".join(text.replace("[", '"').replace("]", '"').split())


def test_changed_documents_whole_documents_and_deletions_read_from_a_real_database(kingdee: Engine) -> None:
    t0 = datetime(2026, 12, 7, 9, 0, 0)
    a = insert_material(kingdee, "1.01.0001", "一次性使用气管插管", "ID 7.0", now=t0)
    b = insert_material(kingdee, "1.01.0002", "一次性使用喉罩", "3#", now=t0 + timedelta(seconds=5))
    reader = QueryReader(kingdee)

    assert [d for d, _ in reader.changed_since(MATERIAL, None)] == [str(a), str(b)]
    assert [d for d, _ in reader.changed_since(MATERIAL, t0 + timedelta(seconds=1))] == [str(b)]
    update_material(kingdee, a, name="一次性使用气管插管（加强型）", now=t0 + timedelta(seconds=9))
    assert [d for d, _ in reader.changed_since(MATERIAL, t0 + timedelta(seconds=6))] == [str(a)]

    rows = reader.read(MATERIAL, [str(a)])
    assert set(rows) == set(MATERIAL.tables), "every table of the document, header included"
    [header] = rows["T_BD_MATERIAL"]
    assert header["FMATERIALID"] == a and header["FNUMBER"] == "1.01.0001"
    assert header["FMODIFYDATE"] == "2026-12-07 09:00:09", "times as the wire carries them"
    assert [t["FNAME"] for t in rows["T_BD_MATERIAL_L"]] == ["一次性使用气管插管（加强型）"]
    assert len(rows["T_BD_MATERIALBASE"]) == 1 and rows["T_BD_MATERIALBASE"][0]["FMATERIALID"] == a

    buckets = reader.key_buckets(MATERIAL, 1024)
    assert buckets == {a // 1024: (2, a + b)} if a // 1024 == b // 1024 else len(buckets or {}) == 2
    delete_material(kingdee, b)
    assert reader.key_buckets(MATERIAL, 1024) == {a // 1024: (1, a)}
    assert reader.keys(MATERIAL, 1024, {a // 1024}) == {str(a)}
    assert reader.keys(MATERIAL, 1024, set()) == set()
    assert reader.read(MATERIAL, [str(b)]) == {t: [] for t in MATERIAL.tables}, "a deleted document has no rows"


def test_many_documents_are_read_in_chunks_each_below_the_databases_list_limits(kingdee: Engine) -> None:
    ids = [insert_material(kingdee, f"2.01.{i:04d}", f"麻醉面罩 {i}#") for i in range(IN_CHUNK + 20)]
    reader = QueryReader(kingdee)
    reader.read(MATERIAL, [str(ids[0])])  # the tables reflected once
    before = reader.calls
    rows = reader.read(MATERIAL, [str(i) for i in ids])
    assert sorted(r["FMATERIALID"] for r in rows["T_BD_MATERIAL"]) == ids
    assert reader.calls - before == 2 * len(MATERIAL.tables), "two chunks per table"


def test_text_keys_are_listed_not_summed(kingdee: Engine) -> None:
    reader = QueryReader(kingdee)
    assert reader.key_buckets(CUSTOMER_TYPE, 1024) is None  # assistant data entries have text ids


def test_a_column_added_to_the_database_is_read_after_a_refresh(kingdee: Engine) -> None:
    a = insert_material(kingdee, "3.01.0001", "吸痰管")
    reader = QueryReader(kingdee)
    assert "F_PAEZ_GRADE" not in reader.read(MATERIAL, [str(a)])["T_BD_MATERIAL"][0]
    with kingdee.begin() as conn:
        conn.exec_driver_sql('ALTER TABLE "T_BD_MATERIAL" ADD COLUMN "F_PAEZ_GRADE" NUMERIC(10, 2)')
        conn.execute(update(m.T_BD_MATERIAL).values(FNUMBER="3.01.0001"))
    reader.refresh()
    assert "F_PAEZ_GRADE" in reader.read(MATERIAL, [str(a)])["T_BD_MATERIAL"][0]
    assert reader.column_types("T_BD_MATERIAL", ["F_PAEZ_GRADE"]) == {"F_PAEZ_GRADE": ("numeric", 10, 2)}


@pytest.mark.parametrize("dialect", [mssql.dialect(), oracle.dialect()], ids=["mssql", "oracle"])
def test_the_sql_for_sql_server_and_oracle_is_standard(kingdee: Engine, dialect: object) -> None:
    reader = QueryReader(kingdee)  # tables reflected from a database; compiled for another dialect
    since = datetime(2026, 12, 7, 9, 0, 0)
    changed = sql(reader.changed_statement(MATERIAL, since), dialect)
    assert 'FROM "T_BD_MATERIAL" WHERE "T_BD_MATERIAL"."FMODIFYDATE" >=' in changed
    assert changed.endswith('ORDER BY "T_BD_MATERIAL"."FMODIFYDATE", "T_BD_MATERIAL"."FMATERIALID"')
    rows = sql(reader.rows_statement("T_BD_MATERIAL_L", "FMATERIALID", [1, 2]), dialect)
    assert rows.endswith('WHERE "T_BD_MATERIAL_L"."FMATERIALID" IN (1, 2)')
    assert "LIMIT" not in rows and "::" not in rows, "nothing PostgreSQL-only"
    grouped = reader.buckets_statement(MATERIAL, 1024)
    buckets = sql(grouped, dialect)
    assert "count(*)" in buckets and 'sum(CAST("T_BD_MATERIAL"."FMATERIALID" AS' in buckets
    bucket = ('FLOOR("T_BD_MATERIAL"."FMATERIALID" / 1024)' if isinstance(dialect, oracle.dialect)  # exact division
              else '"T_BD_MATERIAL"."FMATERIALID" / 1024')                                          # integer division
    assert buckets.startswith(f"SELECT {bucket} AS bucket,") and buckets.endswith(f"GROUP BY {bucket}")
    assert not grouped.compile(dialect=dialect).params, "no parameter SQL Server could see as two expressions"
    keys = sql(reader.keys_statement(MATERIAL, 1024, {3, 1}), dialect)
    assert keys.startswith('SELECT "T_BD_MATERIAL"."FMATERIALID" FROM "T_BD_MATERIAL" WHERE') and "IN (1, 3)" in keys
