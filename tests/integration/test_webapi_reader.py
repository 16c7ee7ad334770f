"""WebApiReader against the Kingdee WebAPI simulator over a real PostgreSQL Kingdee database: the documents it reads
through ``ExecuteBillQuery`` are the rows of their tables (for the columns the API shows), ``changed_since`` sees a
save, and ``keys`` loses a deleted document.

The documents are written as the ERP writes them (``demo_data``, straight into the database), then read through
the simulator's HTTP WebAPI by this test's own simulator process on a throwaway database.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import BigInteger, Engine, create_engine, select

from cdchub.settings import Settings
from connectors.kingdee import models as m
from connectors.kingdee.assembly import wire_row
from connectors.kingdee.client import KingdeeApiCredentials, KingdeeWebApiClient
from connectors.kingdee.demo_data import (
    OrderLine,
    delete_material,
    delete_sales_order,
    insert_customer,
    insert_material,
    insert_sales_order,
    seed,
    update_material,
)
from connectors.kingdee.document_reader import TableRows
from connectors.kingdee.documents import DocumentCatalog, DocumentSpec
from connectors.kingdee.webapi_reader import WebApiReader
from infra.simulators.common.process import SimulatorProcess
from infra.simulators.kingdee.signing import make_app_id
from tests.unit.test_webapi_reader import _ms

pytestmark = pytest.mark.integration

CATALOG = DocumentCatalog()
MATERIAL, CUSTOMER, ORDER = (CATALOG.by_name[n] for n in ("material", "customer", "sales_order"))


@pytest.fixture(scope="module")
def kingdee(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[Engine, KingdeeApiCredentials]]:
    """A throwaway Kingdee database and a simulator of its WebAPI on a free port."""
    stack: Settings = request.getfixturevalue("stack")
    database = f"kingdee_wreader_{uuid.uuid4().hex[:8]}"
    server = stack.kingdee_db.sqlalchemy_url().rsplit("/", 1)[0]
    admin = create_engine(server + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE \"{database}\" ENCODING 'UTF8' TEMPLATE template0")
    engine = create_engine(f"{server}/{database}", future=True)
    seed(engine, materials=4, customers=3, orders=12)  # basedata, outbounds, invoices, receipts, inventory
    state = tmp_path_factory.mktemp("kingdee-sim")
    creds = KingdeeApiCredentials("", "6650a1b2c3d4e5", "cdchub_api", make_app_id("224055", os.urandom(24)),
                                  uuid.uuid4().hex)  # fmt: skip
    sim = SimulatorProcess(
        "infra.simulators.kingdee",
        args=["--state-dir", str(state), "--database-url", f"{server}/{database}", "--acct-id", creds.acct_id,
              "--user", creds.user, "--password", "pw", "--app-id", creds.app_id, "--app-secret", creds.app_secret],
        log_path=state / "sim.log",
    ).start()  # fmt: skip
    yield engine, KingdeeApiCredentials(sim.base_url + "/K3Cloud", creds.acct_id, creds.user, creds.app_id,
                                        creds.app_secret)
    sim.stop()
    engine.dispose()
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture()
def reader(kingdee: tuple[Engine, KingdeeApiCredentials]) -> Iterator[WebApiReader]:
    one = WebApiReader(KingdeeWebApiClient(kingdee[1], timeout_s=10))
    yield one
    one.close()


def table_rows(engine: Engine, spec: DocumentSpec, ids: list[str]) -> TableRows:
    """What the log capture stores of the documents: ``SELECT * … WHERE doc_key IN``, through ``wire_row``."""
    out: TableRows = {}
    with engine.connect() as conn:
        for part in (spec.header, *spec.parts):
            t = m.metadata.tables[part.table]
            key = t.c[part.doc_key]
            wanted: list[Any] = [int(i) for i in ids] if isinstance(key.type, BigInteger) else list(ids)
            out[part.table] = [wire_row(dict(r)) for r in conn.execute(select(t).where(key.in_(wanted))).mappings()]
    return out


def comparable(rows: TableRows, unreadable: dict[str, list[str]]) -> dict[str, list[Any]]:
    """Rows without the columns the WebAPI cannot give, times to the millisecond, in a stable order; a table the
    API cannot read at all is left out."""
    out: dict[str, list[Any]] = {}
    for table, found in rows.items():
        if set(unreadable.get(table, [])) >= set(m.metadata.tables[table].c.keys()):
            continue
        out[table] = sorted((sorted((k, _ms(v)) for k, v in row.items() if k not in unreadable.get(table, []))
                             for row in found), key=repr)
    return out


def test_documents_read_through_the_webapi_are_the_rows_of_their_tables(
        kingdee: tuple[Engine, KingdeeApiCredentials], reader: WebApiReader) -> None:
    engine, _ = kingdee
    tag = uuid.uuid4().hex[:6]
    mats = [insert_material(engine, f"W.{tag}.{n}", f"一次性使用气管插管 {n}", f"ID {n}.0", barcode=f"69{n}")
            for n in range(3)]
    customer = insert_customer(engine, f"WC.{tag}", "北京协和医院", "协和", tel="010-69156114", tax_code="12100000")
    orders = [insert_sales_order(engine, customer, [OrderLine(mats[0], 3, "113.00"), OrderLine(mats[1], "2.5", "9.99"),
                                                    OrderLine(mats[2], 1, "0.01")], note="加急"),
              insert_sales_order(engine, customer, [OrderLine(mats[2], 10, "12.34")])]
    for spec, ids in ((MATERIAL, [str(i) for i in mats]), (CUSTOMER, [str(customer)]),
                      (ORDER, [str(o.fid) for o in orders])):
        before = reader.calls
        got = reader.read(spec, ids)
        assert set(got) == set(spec.tables)
        unreadable = reader.fields(spec).unreadable()
        assert comparable(got, unreadable) == comparable(table_rows(engine, spec, ids), unreadable), spec.name
        assert reader.calls - before <= 2  # the form's metadata once, then one query for the whole batch
    assert len(reader.read(ORDER, [str(orders[0].fid)])["T_SAL_ORDERENTRY"]) == 3
    assert reader.fields(MATERIAL).unreadable() == {"T_BD_MATERIAL_L": ["FPKID"], "T_BD_MATERIALBASE": ["FENTRYID"]}


def test_changed_since_sees_a_save_and_keys_lose_a_deleted_document(
        kingdee: tuple[Engine, KingdeeApiCredentials], reader: WebApiReader) -> None:
    engine, _ = kingdee
    tag = uuid.uuid4().hex[:6]
    past = m.china_now() - timedelta(hours=1)
    a = insert_material(engine, f"W.{tag}.a", "喉罩", now=past)
    b = insert_material(engine, f"W.{tag}.b", "气管插管", now=past)
    since = past + timedelta(minutes=30)
    assert str(a) not in {d for d, _ in reader.changed_since(MATERIAL, since)}
    everything = reader.changed_since(MATERIAL, None)
    assert {str(a), str(b)} <= {d for d, _ in everything}
    assert [t for _, t in everything] == sorted(t for _, t in everything)  # oldest first
    update_material(engine, a, name="喉罩 加强型")
    changed = dict(reader.changed_since(MATERIAL, since))
    assert str(a) in changed and str(b) not in changed
    assert changed[str(a)] >= since
    assert [r["FNAME"] for r in reader.read(MATERIAL, [str(a)])["T_BD_MATERIAL_L"]] == ["喉罩 加强型"]

    assert {str(a), str(b)} <= reader.keys(MATERIAL, 1024)
    delete_material(engine, b)
    keys = reader.keys(MATERIAL, 1024)
    assert str(a) in keys and str(b) not in keys
    assert reader.read(MATERIAL, [str(b)]) == {t: [] for t in MATERIAL.tables}
    assert reader.key_buckets(MATERIAL, 1024) is None

    customer = insert_customer(engine, f"WC.{tag}", "上海瑞金医院")
    order = insert_sales_order(engine, customer, [OrderLine(a, 1, "5")])
    assert str(order.fid) in reader.keys(ORDER, 1024)
    delete_sales_order(engine, order.fid)
    assert str(order.fid) not in reader.keys(ORDER, 1024)
    assert reader.read(ORDER, [str(order.fid)]) == {t: [] for t in ORDER.tables}


@pytest.mark.parametrize("name", [s.name for s in CATALOG.specs])
def test_every_kind_of_seeded_document_reads_as_its_tables(
        kingdee: tuple[Engine, KingdeeApiCredentials], reader: WebApiReader, name: str) -> None:
    """The seeded basedata the documents reference (users, units, groups, stocks, customer types) and every bill."""
    engine, credentials = kingdee
    spec = CATALOG.by_name[name]
    if name == "expense_reimbursement":  # not in the demo data: saved through the WebAPI, as the expenses flow does
        clerk = KingdeeWebApiClient(credentials, timeout_s=10)
        clerk.save(spec.form_id, {"FDate": "2026-12-07", "FProposerID": 100101, "FCausa": "北京出差",
                                  "FEntity": [{"FExpID": 1, "FReqAmount": "123.45", "FTaxRate": 6},
                                              {"FExpID": 2, "FReqAmount": 80}]})
        clerk.close()
    ids = sorted(reader.keys(spec, 1024))
    assert ids, f"no {name} seeded"
    got = reader.read(spec, ids)
    unreadable = reader.fields(spec).unreadable()
    assert comparable(got, unreadable) == comparable(table_rows(engine, spec, ids), unreadable)
    assert {str(r[spec.key_column]) for r in got[spec.header.table]} == set(ids)
