"""WebApiReader against the Kingdee WebAPI simulator over a real PostgreSQL Kingdee database: the documents it reads
through ``ExecuteBillQuery`` are the rows of their tables (for the columns the API shows), ``changed_since`` sees a
save, and ``keys`` loses a deleted document.

The documents are written as the ERP writes them (``infra.simulators.kingdee.erp``, straight into the database),
then read through the simulator's HTTP WebAPI by this test's own simulator process on a throwaway database.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from connectors.kingdee import models as m
from connectors.kingdee.client import KingdeeApiCredentials, KingdeeWebApiClient
from connectors.kingdee.document_reader import TableRows
from connectors.kingdee.documents import DocumentCatalog, DocumentSpec
from connectors.kingdee.query_reader import QueryReader
from connectors.kingdee.webapi_reader import WebApiReader
from connectors.settings import Settings
from infra.simulators.kingdee.erp import (
    OrderLine,
    delete_material,
    delete_sales_order,
    insert_customer,
    insert_material,
    insert_sales_order,
    update_material,
)
from tests.integration.harness import kingdee_with_webapi
from tests.unit.test_webapi_reader import _ms

pytestmark = pytest.mark.integration

CATALOG = DocumentCatalog()
MATERIAL, CUSTOMER, ORDER = (CATALOG.by_name[n] for n in ("material", "customer", "sales_order"))


@pytest.fixture(scope="module")
def kingdee(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[Engine, KingdeeApiCredentials]]:
    """A throwaway Kingdee database (basedata, outbounds, invoices, receipts, inventory) and a simulator of its
    WebAPI on a free port."""
    stack: Settings = request.getfixturevalue("stack")
    with kingdee_with_webapi(stack, tmp_path_factory.mktemp("kingdee-sim"), "kingdee_wreader",
                             materials=4, customers=3, orders=12) as (engine, creds, _):
        yield engine, creds


@pytest.fixture()
def reader(kingdee: tuple[Engine, KingdeeApiCredentials]) -> Iterator[WebApiReader]:
    one = WebApiReader(KingdeeWebApiClient(kingdee[1], timeout_s=10))
    yield one
    one.close()


def table_rows(engine: Engine, spec: DocumentSpec, ids: list[str]) -> TableRows:
    """What the log capture stores of the documents: their tables' rows as the database has them."""
    return QueryReader(engine).read(spec, ids)


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
