"""WebApiReader: the field key ↔ column mapping, the cutting of query rows into table rows, and a read through the
simulated ExecuteBillQuery run in-process on SQLite (no network) compared with the tables read directly."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine

from connectors.kingdee import models as m
from connectors.kingdee.assembly import DocumentAssembler, RowChange, Transaction, row_pk, wire_row
from connectors.kingdee.client import KingdeeApiCredentials, KingdeeApiError
from connectors.kingdee.document_reader import TableRows
from connectors.kingdee.document_store import DocumentStore
from connectors.kingdee.documents import DOCUMENTS, DocumentCatalog, DocumentSpec
from connectors.kingdee.query_reader import QueryReader
from connectors.kingdee.row_types import RowTypes
from connectors.kingdee.webapi_reader import (
    ID_BATCH,
    WebApiReader,
    after,
    column_value,
    discovered_fields,
    form_fields,
    load_fields,
    role,
    shape,
    unreadable_columns,
)
from infra.simulators.kingdee import envelope as env
from infra.simulators.kingdee.account_forms import AccountForms
from infra.simulators.kingdee.business_info import business_info
from infra.simulators.kingdee.erp import (
    OrderLine,
    delete_material,
    insert_customer,
    insert_material,
    insert_sales_order,
    update_material,
)
from infra.simulators.kingdee.forms import form_by_id
from infra.simulators.kingdee.query import BillQuery

CATALOG = DocumentCatalog()
MATERIAL, CUSTOMER, ORDER = (CATALOG.by_name[n] for n in ("material", "customer", "sales_order"))
DECLARED = load_fields()


# --- the mapping ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", DOCUMENTS, ids=lambda s: s.name)
def test_every_document_kind_declares_its_id_and_modified_keys_and_only_real_columns_of_its_tables(
        spec: DocumentSpec) -> None:
    ff = form_fields(spec, DECLARED)
    assert ff.id_key and ff.modified_key
    for key, (table, column) in ff.keys.items():
        assert table in spec.tables, (key, table)
        assert column in m.metadata.tables[table].c, (key, column)
    assert len(set(ff.keys.values())) == len(ff.keys), "two keys read one column"


def test_what_the_webapi_cannot_read_is_the_documented_limit() -> None:
    material = unreadable_columns(MATERIAL)
    assert material == {"T_BD_MATERIAL_L": ["FPKID"], "T_BD_MATERIALBASE": ["FENTRYID"]}
    assert unreadable_columns(CUSTOMER) == {"T_BD_CUSTOMER_L": ["FPKID"]}
    assert unreadable_columns(ORDER) == {"T_SAL_ORDERFIN": ["FENTRYID"]}
    receipt = unreadable_columns(CATALOG.by_name["receipt"])
    assert "T_AR_RECEIVEBILLSRCENTRY" in receipt  # the second entry: not served


def test_keys_discovered_from_the_form_metadata_complete_the_declared_ones() -> None:
    info = {"Entrys": [
        {"Key": "FBillHead", "TableName": "T_SAL_ORDER", "Fields": [
            {"Key": "FBillNo", "FieldName": "FBILLNO"},  # declared already
            {"Key": "F_ABC_Region", "FieldName": "F_ABC_REGION"},  # the installation's own field
            {"Key": "FBillAmount", "FieldName": "FBILLAMOUNT", "TableName": "T_SAL_ORDERFIN"},
        ]},
        {"Key": "FSaleOrderEntry", "TableName": "T_SAL_ORDERENTRY", "Fields": [
            {"Key": "FEntryRegion", "FieldName": "F_ABC_LINEREGION"}]},
        {"Key": "FOther", "TableName": "T_ELSEWHERE", "Fields": [{"Key": "FX", "FieldName": "FX"}]},
    ]}
    found = discovered_fields(info, ORDER.tables)
    assert found == {"FBillNo": ("T_SAL_ORDER", "FBILLNO"), "F_ABC_Region": ("T_SAL_ORDER", "F_ABC_REGION"),
                     "FBillAmount": ("T_SAL_ORDERFIN", "FBILLAMOUNT"),
                     "FEntryRegion": ("T_SAL_ORDERENTRY", "F_ABC_LINEREGION")}
    ff = form_fields(ORDER, DECLARED, found)
    assert ff.discovered == {"F_ABC_Region", "FEntryRegion"}
    assert ff.keys["F_ABC_Region"] == ("T_SAL_ORDER", "F_ABC_REGION")
    assert discovered_fields({"Entrys": [{"Key": "FBillHead", "Fields": [{"Key": "FBillNo", "FieldName": "X"}]}]},
                             ORDER.tables) == {}  # metadata without table names gives nothing


def test_a_malformed_fields_file_fails_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "fields.toml"
    bad.write_text('[BD_MATERIAL]\nFNumber = "FNUMBER"\n', encoding="utf-8")
    with pytest.raises(ValueError, match="TABLE.COLUMN"):
        load_fields(bad)


def test_roles_of_a_sales_orders_tables() -> None:
    assert [role(ORDER, p) for p in (ORDER.header, *ORDER.parts)] == [
        "header", "header_split", "entry", "entry_split", "entry_split"]
    assert role(MATERIAL, MATERIAL.parts[0]) == "texts"


def test_values_take_their_columns_types_as_the_database_gives_them() -> None:
    assert column_value("T_SAL_ORDERENTRY", "FQTY", 12.5) == Decimal("12.5000000000")
    assert wire_row({"q": column_value("T_SAL_ORDERENTRY", "FQTY", 0)}) == {"q": str(Decimal("0E-10"))}
    assert column_value("T_SAL_ORDER", "FMODIFYDATE", "2026-12-07T09:01:02.345") == datetime(2026, 12, 7, 9, 1, 2,
                                                                                             345000)
    assert column_value("T_SAL_ORDER", "FCUSTID", "100001") == 100001
    assert column_value("T_BD_CUSTOMER", "FCUSTTYPEID", " ") == " "
    assert column_value("T_SAL_ORDER", "F_NOT_MODELLED", 7) == 7
    assert column_value("T_SAL_ORDER", "FAPPROVEDATE", None) is None


def test_query_rows_are_cut_into_header_split_entry_and_entry_split_rows_once_each() -> None:
    ff = form_fields(ORDER, DECLARED)
    [(parts, _)] = ff.query_groups()
    keys = ["FID", "FBillNo", "FBillAmount", "FSaleOrderEntry_FEntryID", "FSaleOrderEntry_FSeq", "FQty", "FPrice"]
    results = [[100001, "XSDD000001", 30, 100011, 1, 1, 10], [100001, "XSDD000001", 30, 100012, 2, 2, 10],
               [100002, "XSDD000002", 0, None, None, None, None]]
    out: TableRows = {t: [] for t in ORDER.tables}
    shape(ff, parts, keys, results, out, set(), 2052)
    assert out["T_SAL_ORDER"] == [{"FID": 100001, "FBILLNO": "XSDD000001"}, {"FID": 100002, "FBILLNO": "XSDD000002"}]
    assert [r["FID"] for r in out["T_SAL_ORDERFIN"]] == [100001, 100002]
    assert out["T_SAL_ORDERENTRY"] == [
        {"FENTRYID": 100011, "FSEQ": 1, "FQTY": "1.0000000000", "FID": 100001},
        {"FENTRYID": 100012, "FSEQ": 2, "FQTY": "2.0000000000", "FID": 100001}]
    assert out["T_SAL_ORDERENTRY_F"] == [{"FPRICE": "10.0000000000", "FENTRYID": 100011, "FID": 100001},
                                         {"FPRICE": "10.0000000000", "FENTRYID": 100012, "FID": 100001}]
    assert out["T_SAL_ORDERENTRY_R"] == []  # no key of it asked


# --- a read through the simulated WebAPI on SQLite -------------------------------------------------------------


class InProcessKingdee:
    """The client surface the reader uses, answered by the simulator's query and metadata services."""

    def __init__(self, engine: Engine, max_limit: int = 2000) -> None:
        self.query = BillQuery(engine, max_limit)
        self.credentials = KingdeeApiCredentials("", "acct", "user", "app", "secret")
        self.requests: list[dict[str, Any]] = []
        self.refuse: set[str] = set()

    def execute_bill_query(self, form_id: str, field_keys: list[str], *, filter_string: str = "",
                           order_string: str = "", start_row: int = 0, limit: int = 2000) -> list[list[Any]]:
        self.requests.append({"form": form_id, "keys": list(field_keys), "filter": filter_string,
                              "start": start_row})
        refused = [k for k in field_keys if k in self.refuse]
        if refused:
            raise KingdeeApiError("field not found", env.FIELD_NOT_FOUND,
                                  [{"FieldName": refused[0], "Message": "不存在"}])
        return self.query.run({"FormId": form_id, "FieldKeys": ",".join(field_keys), "FilterString": filter_string,
                               "OrderString": order_string, "StartRow": start_row, "Limit": limit})

    def business_info(self, form_id: str) -> dict[str, Any]:
        form = form_by_id(form_id)
        assert form is not None
        return dict(business_info(form, AccountForms())["Result"]["NeedReturnData"])

    def close(self) -> None:
        pass


@pytest.fixture()
def kingdee(tmp_path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{tmp_path / 'kingdee.db'}")
    m.create_schema(engine)
    return engine


def table_rows(engine: Engine, spec: DocumentSpec, ids: list[str]) -> TableRows:
    """What the log capture stores: every row of the documents' tables, as the database has them."""
    return QueryReader(engine).read(spec, ids)


def comparable(spec: DocumentSpec, rows: TableRows, unreadable: dict[str, list[str]]) -> dict[str, list[Any]]:
    """Rows without the columns the WebAPI cannot give, times to the millisecond, in a stable order."""
    out: dict[str, list[Any]] = {}
    for table, found in rows.items():
        drop = set(unreadable.get(table, []))
        shown = []
        for row in found:
            kept = {k: _ms(v) for k, v in row.items() if k not in drop}
            shown.append(sorted(kept.items()))
        out[table] = sorted(shown, key=repr)
    return out


def _ms(value: Any) -> Any:
    """A wire time to the millisecond, as the API shows it; other values as they are."""
    if isinstance(value, str) and len(value) >= 19 and value[10:11] == " " and value[13:14] == ":":
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            return value
        return when.replace(microsecond=when.microsecond // 1000 * 1000).isoformat(sep=" ")
    return value


def test_read_gives_the_rows_of_the_tables_for_what_the_api_shows(kingdee: Engine) -> None:
    t0 = datetime(2026, 12, 7, 9, 0, 0, 123456)
    mat = insert_material(kingdee, "1.01.0001", "一次性使用气管插管", "ID 7.0", now=t0)
    mat2 = insert_material(kingdee, "1.01.0002", "一次性使用喉罩", "3#", now=t0)
    cust = insert_customer(kingdee, "C0001", "北京协和医院", "协和", tel="010-1234", now=t0)
    order = insert_sales_order(kingdee, cust, [OrderLine(mat, 3, "113.00"), OrderLine(mat2, "2.5", "9.99")], now=t0)
    reader = WebApiReader(InProcessKingdee(kingdee))  # type: ignore[arg-type]
    for spec, ids in ((MATERIAL, [str(mat), str(mat2)]), (CUSTOMER, [str(cust)]), (ORDER, [str(order.fid)])):
        got = reader.read(spec, ids)
        assert set(got) == set(spec.tables)
        unreadable = reader.fields(spec).unreadable()
        assert comparable(spec, got, unreadable) == comparable(spec, table_rows(kingdee, spec, ids), unreadable)
    assert len(reader.read(ORDER, [str(order.fid)])["T_SAL_ORDERENTRY"]) == 2


def test_calls_per_read_changed_since_and_keys(kingdee: Engine) -> None:
    t0 = datetime(2026, 12, 7, 9, 0, 0)
    ids = [insert_material(kingdee, f"1.01.{n:04d}", f"物料{n}", now=t0 + timedelta(seconds=n)) for n in range(5)]
    client = InProcessKingdee(kingdee, max_limit=2)
    reader = WebApiReader(client, id_batch=3, page_size=2)  # type: ignore[arg-type]
    reader.fields(MATERIAL)
    assert reader.calls == 1  # QueryBusinessInfo, once
    got = reader.read(MATERIAL, [str(i) for i in ids])
    assert len(got["T_BD_MATERIAL"]) == 5
    assert reader.calls == 1 + 2 + 2  # two batches of ids (3 + 2); pages of 2 rows: (2, 1) and (2, 0)
    before = reader.calls
    assert reader.keys(MATERIAL, 1024) == {str(i) for i in ids}
    assert reader.calls - before == 3  # 5 keys: pages of 2, 2 and 1
    before = reader.calls
    assert len(reader.changed_since(MATERIAL, None)) == 5 and reader.calls - before == 3
    assert reader.key_buckets(MATERIAL, 1024) is None
    assert reader.rows_read > 0
    assert ID_BATCH >= 100


def test_changed_since_finds_a_document_after_its_update_and_keys_lose_a_deleted_one(kingdee: Engine) -> None:
    t0 = datetime(2026, 12, 7, 9, 0, 0)
    a = insert_material(kingdee, "1.01.0001", "气管插管", now=t0)
    b = insert_material(kingdee, "1.01.0002", "喉罩", now=t0 + timedelta(seconds=5))
    reader = WebApiReader(InProcessKingdee(kingdee))  # type: ignore[arg-type]
    everything = reader.changed_since(MATERIAL, None)
    assert [d for d, _ in everything] == [str(a), str(b)]
    since = t0 + timedelta(seconds=10)
    assert reader.changed_since(MATERIAL, since) == []
    update_material(kingdee, a, name="气管插管 加强型", now=t0 + timedelta(seconds=20, microseconds=500))
    assert reader.changed_since(MATERIAL, since) == [(str(a), t0 + timedelta(seconds=20))]
    texts = reader.read(MATERIAL, [str(a)])["T_BD_MATERIAL_L"]
    assert [r["FNAME"] for r in texts] == ["气管插管 加强型"] and texts[0]["FLOCALEID"] == 2052
    delete_material(kingdee, b)
    assert reader.keys(MATERIAL, 1024) == {str(a)}
    assert reader.read(MATERIAL, [str(b)]) == {t: [] for t in MATERIAL.tables}


def test_a_discovered_key_the_server_refuses_is_dropped_and_the_read_goes_on(kingdee: Engine) -> None:
    mat = insert_material(kingdee, "1.01.0001", "气管插管")
    client = InProcessKingdee(kingdee)
    reader = WebApiReader(client)  # type: ignore[arg-type]
    ff = reader.fields(MATERIAL)
    ff.keys["FMnemonic2"] = ("T_BD_MATERIAL", "FMNEMONIC2")
    ff.discovered.add("FMnemonic2")
    client.refuse = {"FMnemonic2"}
    rows = reader.read(MATERIAL, [str(mat)])
    assert rows["T_BD_MATERIAL"][0]["FNUMBER"] == "1.01.0001"
    assert "FMnemonic2" not in reader.fields(MATERIAL).keys
    client.refuse = {"FNumber"}  # a declared key refused: the configuration is wrong, said at once
    with pytest.raises(KingdeeApiError):
        reader.read(MATERIAL, [str(mat)])


def test_stand_in_keys_give_one_to_one_rows_the_document_id_as_the_key_the_api_cannot_read(kingdee: Engine) -> None:
    mat = insert_material(kingdee, "1.01.0001", "气管插管")
    plain = WebApiReader(InProcessKingdee(kingdee)).read(MATERIAL, [str(mat)])  # type: ignore[arg-type]
    assert "FPKID" not in plain["T_BD_MATERIAL_L"][0] and "FENTRYID" not in plain["T_BD_MATERIALBASE"][0]
    keyed = WebApiReader(InProcessKingdee(kingdee), stand_in_keys=True).read(  # type: ignore[arg-type]
        MATERIAL, [str(mat)])
    assert keyed["T_BD_MATERIAL_L"][0]["FPKID"] == mat and keyed["T_BD_MATERIALBASE"][0]["FENTRYID"] == mat
    assert [row_pk(p, keyed[p.table][0]) for p in MATERIAL.parts] == [str(mat), str(mat)]


def test_next_pages_start_after_the_last_row_so_a_deletion_meanwhile_shifts_nothing_out(kingdee: Engine) -> None:
    assert after(["FModifyDate", "FID"], [datetime(2026, 12, 7, 9, 0, 0, 123456), 7]) == (
        "((FModifyDate > '2026-12-07 09:00:00.123') OR (FModifyDate = '2026-12-07 09:00:00.123' AND FID > 7))")
    assert after(["FID"], ["a'b"]) == "((FID > 'a''b'))"
    t0 = datetime(2026, 12, 7, 9, 0, 0)
    ids = [insert_material(kingdee, f"1.01.{n:04d}", f"物料{n}", now=t0 + timedelta(microseconds=400 * n))
           for n in range(5)]  # one millisecond for all, as the API shows them
    client = InProcessKingdee(kingdee)
    reader = WebApiReader(client, page_size=2)  # type: ignore[arg-type]
    reader.fields(MATERIAL)
    first_page = client.execute_bill_query

    def deleting_after_the_first_page(*args: Any, **kw: Any) -> list[list[Any]]:
        rows = first_page(*args, **kw)
        if len(client.requests) == 1:
            delete_material(kingdee, ids[0])
        return rows

    client.execute_bill_query = deleting_after_the_first_page  # type: ignore[method-assign]
    assert reader.keys(MATERIAL, 1024) == {str(i) for i in ids}  # the first was read before it went
    assert "IN" not in client.requests[1]["filter"] and f"> {ids[1]}" in client.requests[1]["filter"]
    changed = reader.changed_since(MATERIAL, t0)
    assert [d for d, _ in changed] == [str(i) for i in ids[1:]]


def _documents(rows_by_kind: list[tuple[DocumentSpec, TableRows]], path: Path) -> dict[tuple[str, str], Any]:
    """The documents the capture assembles from these rows (as one transaction of inserts)."""
    store = DocumentStore(path)
    assembler = DocumentAssembler(CATALOG, store, RowTypes(m.metadata))
    tx = Transaction(xid=None, commit_lsn=1, commit_time_ms=0)
    for spec, rows in rows_by_kind:
        for part in (spec.header, *spec.parts):
            tx.changes += [RowChange(part.table, "I", None, row) for row in rows[part.table]]
    changes = assembler.apply(tx)
    store.close()
    return {(c.spec.name, c.doc_id): c.after for c in changes}


def test_the_capture_assembles_the_same_documents_from_webapi_rows_as_from_the_tables(
        kingdee: Engine, tmp_path: Path) -> None:
    t0 = datetime(2026, 12, 7, 9, 0, 0)
    mat = insert_material(kingdee, "1.01.0001", "一次性使用气管插管", "ID 7.0", now=t0)
    cust = insert_customer(kingdee, "C0001", "北京协和医院", "协和", now=t0)
    order = insert_sales_order(kingdee, cust, [OrderLine(mat, 3, "113.00")], now=t0)
    reader = WebApiReader(InProcessKingdee(kingdee), stand_in_keys=True)  # type: ignore[arg-type]
    kinds = [(MATERIAL, [str(mat)]), (CUSTOMER, [str(cust)]), (ORDER, [str(order.fid)])]
    from_api = _documents([(s, reader.read(s, ids)) for s, ids in kinds], tmp_path / "api.sqlite")
    from_tables = _documents([(s, table_rows(kingdee, s, ids)) for s, ids in kinds], tmp_path / "db.sqlite")
    assert from_api.keys() == from_tables.keys() and len(from_api) == 3
    stand_ins = {"FPKID", "FENTRYID"}
    for key, doc in from_tables.items():
        api_doc = from_api[key]
        assert doc is not None and api_doc is not None
        header_stand_ins = stand_ins if key[0] == "material" or key[0] == "sales_order" else set()
        assert {k: v for k, v in api_doc.items() if k not in header_stand_ins and k != "texts"} == {
            k: v for k, v in doc.items() if k not in header_stand_ins and k != "texts"}, key
        strip = [{k: v for k, v in t.items() if k != "FPKID"} for t in doc.get("texts", [])]
        assert [{k: v for k, v in t.items() if k != "FPKID"} for t in api_doc.get("texts", [])] == strip
    assert from_api[("material", str(mat))]["base_unit_number"] is None  # references resolve alike
    assert from_api[("sales_order", str(order.fid))]["customer_number"] == "C0001"
