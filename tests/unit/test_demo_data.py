"""The Kingdee demo data: counts, Chinese names, links between documents, determinism, write helpers."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import create_engine, select, text

from connectors.kingdee import models as m
from infra.simulators.kingdee import erp as d
from infra.simulators.kingdee.demo_seed import seed

HAN = re.compile(r"[\u4e00-\u9fff]")
NOW = datetime(2025, 7, 1, 9, 30, 0)


def _cents(value):
    """SQLite keeps decimal(23,10) as a float: compare amounts to the cent (PostgreSQL keeps them exact)."""
    return Decimal(value).quantize(Decimal("0.01"))


def _engine():
    return create_engine("sqlite://")


@pytest.fixture(scope="module")
def seeded():
    engine = _engine()
    summary = seed(engine)
    return engine, summary


@pytest.fixture
def empty():
    engine = _engine()
    m.create_schema(engine)
    return engine


def _rows(engine, table):
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(m.TABLES[table])).mappings()]


def _dump(engine):
    return {name: sorted(map(repr, _rows(engine, name))) for name in m.CAPTURED_TABLES}


# --- the seed ---------------------------------------------------------------------------------------------


def test_seed_produces_the_requested_volumes(seeded):
    engine, summary = seeded
    counts = d.count_rows(engine)
    assert summary["skipped"] is False
    assert summary["rows"] == counts
    assert counts["T_BD_MATERIAL"] == counts["T_BD_MATERIAL_L"] == counts["T_BD_MATERIALBASE"] == 50
    assert counts["T_BD_CUSTOMER"] == counts["T_BD_CUSTOMER_L"] == 20
    assert counts["T_SAL_ORDER"] == counts["T_SAL_ORDERFIN"] == 30
    assert counts["T_SAL_ORDERENTRY"] == counts["T_SAL_ORDERENTRY_F"] == counts["T_SAL_ORDERENTRY_R"]
    assert counts["T_SAL_ORDERENTRY"] == summary["order_lines"]
    assert 30 <= summary["order_lines"] <= 150
    assert counts["T_SAL_OUTSTOCKENTRY"] == counts["T_SAL_OUTSTOCKENTRY_R"] == counts["T_SAL_OUTSTOCKENTRY_F"]
    assert summary["outbounds"] > 0 and summary["receipts"] > 0 and summary["inventory_rows"] > 0
    assert summary["invoices_special"] > 0 and summary["invoices_ordinary"] > 0
    assert counts["T_BD_UNIT"] == 5 and counts["T_BD_STOCK"] == 6


def test_volumes_beyond_the_catalogue(empty):
    summary = seed(empty, materials=150, customers=70, orders=5, lines_per_order=(2, 2))
    assert (summary["materials"], summary["customers"], summary["orders"]) == (150, 70, 5)
    assert summary["order_lines"] == 10
    names = [r["FNAME"] for r in _rows(empty, "T_BD_CUSTOMER_L")]
    assert len(set(names)) == 70, "customer names stay unique past the list of real hospitals"
    numbers = [r["FNUMBER"] for r in _rows(empty, "T_BD_MATERIAL")]
    assert len(set(numbers)) == 150


def test_names_are_chinese_and_numbers_look_like_kingdee(seeded):
    engine, _ = seeded
    for row in _rows(engine, "T_BD_MATERIAL_L"):
        assert HAN.search(row["FNAME"]) and row["FSPECIFICATION"].strip()
        assert row["FLOCALEID"] == m.LOCALE_ZH_CN
    for row in _rows(engine, "T_BD_CUSTOMER_L"):
        assert HAN.search(row["FNAME"]) and HAN.search(row["FSHORTNAME"])
    for table in ("T_BD_UNIT_L", "T_BD_STOCK_L", "T_BD_MATERIALGROUP_L"):
        assert all(HAN.search(r["FNAME"]) for r in _rows(engine, table))
    assert all(re.fullmatch(r"1\.0[1-4]\.\d{4}", r["FNUMBER"]) for r in _rows(engine, "T_BD_MATERIAL"))
    assert all(re.fullmatch(r"CUST\d{4}", r["FNUMBER"]) for r in _rows(engine, "T_BD_CUSTOMER"))
    assert all(re.fullmatch(r"XSDD\d{6}", r["FBILLNO"]) for r in _rows(engine, "T_SAL_ORDER"))
    customer_names = {r["FNAME"] for r in _rows(engine, "T_BD_CUSTOMER_L")}
    assert "北京协和医院" in customer_names and any(n.endswith("有限公司") for n in customer_names)


def test_most_materials_are_audited_and_enabled_a_few_are_not(seeded):
    engine, _ = seeded
    rows = _rows(engine, "T_BD_MATERIAL")
    usable = [r for r in rows if r["FDOCUMENTSTATUS"] == "C" and r["FFORBIDSTATUS"] == "A"]
    assert len(usable) >= 0.7 * len(rows)
    assert {r["FDOCUMENTSTATUS"] for r in rows} >= {"A", "B", "C"}
    assert any(r["FFORBIDSTATUS"] == "B" for r in rows)
    for r in rows:
        assert (r["FAPPROVERID"] != 0) == (r["FDOCUMENTSTATUS"] == "C")
        assert r["FMASTERID"] == r["FMATERIALID"] and r["FMODIFYDATE"] >= r["FCREATEDATE"]


def test_every_child_row_belongs_to_an_existing_document(seeded):
    engine, _ = seeded
    for doc in m.DOCUMENT_TABLES.values():
        headers = {r[doc.key] for r in _rows(engine, doc.header)}
        for child in doc.children:
            orphans = [r for r in _rows(engine, child) if r[doc.key] not in headers]
            assert not orphans, f"{child} rows without a {doc.header}"


def test_references_point_at_existing_basedata(seeded):
    engine, _ = seeded
    units = {r["FUNITID"] for r in _rows(engine, "T_BD_UNIT")}
    groups = {r["FID"] for r in _rows(engine, "T_BD_MATERIALGROUP")}
    materials = {r["FMATERIALID"] for r in _rows(engine, "T_BD_MATERIAL")}
    customers = {r["FCUSTID"] for r in _rows(engine, "T_BD_CUSTOMER")}
    stocks = {r["FSTOCKID"] for r in _rows(engine, "T_BD_STOCK")}
    cust_types = {r["FENTRYID"] for r in _rows(engine, "T_BAS_ASSISTANTDATAENTRY")}
    assert all(r["FBASEUNITID"] in units for r in _rows(engine, "T_BD_MATERIALBASE"))
    assert all(r["FMATERIALGROUP"] in groups for r in _rows(engine, "T_BD_MATERIAL"))
    assert all(r["FCUSTTYPEID"] in cust_types for r in _rows(engine, "T_BD_CUSTOMER"))
    assert all(r["FCUSTID"] in customers for r in _rows(engine, "T_SAL_ORDER"))
    assert all(r["FMATERIALID"] in materials for r in _rows(engine, "T_SAL_ORDERENTRY"))
    for r in _rows(engine, "T_SAL_OUTSTOCKENTRY"):
        assert r["FMATERIALID"] in materials and r["FSTOCKID"] in stocks
    for r in _rows(engine, "T_STK_INVENTORY"):
        assert r["FMATERIALID"] in materials and r["FSTOCKID"] in stocks and len(r["FID"]) == 32


def test_outbound_lines_reference_existing_order_lines(seeded):
    engine, _ = seeded
    orders = {r["FID"]: r for r in _rows(engine, "T_SAL_ORDER")}
    order_entries = {r["FENTRYID"]: r for r in _rows(engine, "T_SAL_ORDERENTRY")}
    out_entries = {r["FENTRYID"]: r for r in _rows(engine, "T_SAL_OUTSTOCKENTRY")}
    out_headers = {r["FID"]: r for r in _rows(engine, "T_SAL_OUTSTOCK")}
    links = _rows(engine, "T_SAL_OUTSTOCKENTRY_R")
    assert links
    for link in links:
        source = order_entries[link["FSOENTRYID"]]
        order = orders[source["FID"]]
        entry = out_entries[link["FENTRYID"]]
        assert link["FSOORDERNO"] == link["FSRCBILLNO"] == order["FBILLNO"]
        assert link["FID"] == entry["FID"], "the _R row carries its outbound's FID"
        assert entry["FMATERIALID"] == source["FMATERIALID"]
        assert out_headers[entry["FID"]]["FCUSTOMERID"] == order["FCUSTID"]


def test_order_progress_matches_audited_outbounds(seeded):
    engine, _ = seeded
    audited = {r["FID"] for r in _rows(engine, "T_SAL_OUTSTOCK") if r["FDOCUMENTSTATUS"] == "C"}
    qty_by_entry = {r["FENTRYID"]: r["FREALQTY"] for r in _rows(engine, "T_SAL_OUTSTOCKENTRY")}
    delivered: dict[int, Decimal] = defaultdict(Decimal)
    for link in _rows(engine, "T_SAL_OUTSTOCKENTRY_R"):
        if link["FID"] in audited:
            delivered[link["FSOENTRYID"]] += qty_by_entry[link["FENTRYID"]]
    entries = {r["FENTRYID"]: r for r in _rows(engine, "T_SAL_ORDERENTRY")}
    for progress in _rows(engine, "T_SAL_ORDERENTRY_R"):
        entry = entries[progress["FENTRYID"]]
        assert progress["FSTOCKOUTQTY"] == delivered[progress["FENTRYID"]]
        assert progress["FREMAINOUTQTY"] == entry["FQTY"] - progress["FSTOCKOUTQTY"] >= 0
    remaining: dict[int, Decimal] = defaultdict(Decimal)
    for progress in _rows(engine, "T_SAL_ORDERENTRY_R"):
        remaining[progress["FID"]] += progress["FREMAINOUTQTY"]
    closed = [r for r in _rows(engine, "T_SAL_ORDER") if r["FCLOSESTATUS"] == "B"]
    assert closed and all(remaining[r["FID"]] == 0 for r in closed)


def test_amounts_add_up(seeded):
    engine, _ = seeded
    entries = {r["FENTRYID"]: r for r in _rows(engine, "T_SAL_ORDERENTRY")}
    totals: dict[int, Decimal] = defaultdict(Decimal)
    for f in _rows(engine, "T_SAL_ORDERENTRY_F"):
        expected = (entries[f["FENTRYID"]]["FQTY"] * f["FTAXPRICE"]).quantize(Decimal("0.01"))
        assert _cents(f["FALLAMOUNT"]) == expected
        assert _cents(f["FAMOUNT"] + f["FTAXAMOUNT"]) == _cents(f["FALLAMOUNT"])
        totals[f["FID"]] += f["FALLAMOUNT"]
    for fin in _rows(engine, "T_SAL_ORDERFIN"):
        assert _cents(fin["FBILLALLAMOUNT"]) == _cents(totals[fin["FID"]])


def test_invoices_of_both_kinds_link_to_outbound_lines(seeded):
    engine, _ = seeded
    out_bills = {r["FID"]: r["FBILLNO"] for r in _rows(engine, "T_SAL_OUTSTOCK")}
    out_entries = {r["FENTRYID"]: r for r in _rows(engine, "T_SAL_OUTSTOCKENTRY")}
    for header, entry in (("T_IV_SALESIC", "T_IV_SALESICENTRY"), ("T_IV_SALESOC", "T_IV_SALESOCENTRY")):
        invoices = {r["FID"]: r for r in _rows(engine, header)}
        assert invoices
        totals: dict[int, Decimal] = defaultdict(Decimal)
        for line in _rows(engine, entry):
            source = out_entries[line["FSRCROWID"]]
            assert line["FSRCBILLTYPEID"] == "SAL_OUTSTOCK"
            assert line["FSRCBILLNO"] == out_bills[source["FID"]]
            assert line["FPRICEQTY"] == source["FREALQTY"]
            totals[line["FID"]] += line["FALLAMOUNTFOR"]
        for fid, invoice in invoices.items():
            assert _cents(invoice["FAFTERTOTALTAXFOR"]) == _cents(totals[fid])
            assert invoice["FINVOICENO"].isdigit() and len(invoice["FINVOICENO"]) == 8


def test_receipts_name_their_source_orders(seeded):
    engine, _ = seeded
    orders = {r["FBILLNO"]: r for r in _rows(engine, "T_SAL_ORDER")}
    receipts = {r["FID"]: r for r in _rows(engine, "T_AR_RECEIVEBILL")}
    for entry in _rows(engine, "T_AR_RECEIVEBILLENTRY"):
        order = orders[entry["FSALEORDERNO"]]
        assert entry["FSALEORDERID"] == order["FID"]
        assert receipts[entry["FID"]]["FCONTACTUNIT"] == order["FCUSTID"]
        assert receipts[entry["FID"]]["FRECEIVEAMOUNT"] == entry["FREALRECAMOUNT"]
    for src in _rows(engine, "T_AR_RECEIVEBILLSRCENTRY"):
        assert src["FORDERBILLNO"] in orders and src["FSRCBILLTYPEID"] == "SAL_SaleOrder"


def test_inventory_spans_warehouses_and_lots(seeded):
    engine, _ = seeded
    rows = _rows(engine, "T_STK_INVENTORY")
    lots = {r["FLOTID"]: r for r in _rows(engine, "T_BD_LOTMASTER")}
    assert len({r["FSTOCKID"] for r in rows}) >= 3
    assert any(r["FLOT"] for r in rows) and len({r["FLOT"] for r in rows if r["FLOT"]}) > 10
    for r in rows:
        if r["FLOT"]:
            assert lots[r["FLOT"]]["FMATERIALID"] == r["FMATERIALID"]
    keys = [(r["FMATERIALID"], r["FSTOCKID"], r["FLOT"]) for r in rows]
    assert len(keys) == len(set(keys))


def test_seeding_twice_does_not_duplicate(seeded):
    engine, summary = seeded
    again = seed(engine)
    assert again["skipped"] is True
    assert again["rows"] == summary["rows"] == d.count_rows(engine)


def test_seed_is_deterministic_and_reset_reproduces_it():
    first, second = _engine(), _engine()
    seed(first, materials=20, customers=8, orders=10, seed=7)
    seed(second, materials=20, customers=8, orders=10, seed=7)
    assert _dump(first) == _dump(second)
    d.insert_material(first, "9.00.0001", "临时物料")
    reset = seed(first, materials=20, customers=8, orders=10, seed=7, reset=True)
    assert reset["skipped"] is False
    assert _dump(first) == _dump(second)
    other = _engine()
    seed(other, materials=20, customers=8, orders=10, seed=8)
    assert _dump(other) != _dump(first)


def test_seed_rejects_impossible_volumes(empty):
    with pytest.raises(ValueError):
        seed(empty, materials=0)
    with pytest.raises(ValueError):
        seed(empty, lines_per_order=(3, 1))


# --- write helpers ----------------------------------------------------------------------------------------


def test_insert_update_disable_delete_material(empty):
    material_id = d.insert_material(empty, "1.01.9001", "喉罩", "一次性 3#", now=NOW)
    header = _rows(empty, "T_BD_MATERIAL")[0]
    assert header["FMATERIALID"] == material_id and header["FDOCUMENTSTATUS"] == "C"
    assert header["FMODIFYDATE"] == NOW and header["FAPPROVEDATE"] == NOW
    assert _rows(empty, "T_BD_MATERIAL_L")[0]["FMATERIALID"] == material_id
    assert _rows(empty, "T_BD_MATERIALBASE")[0]["FMATERIALID"] == material_id

    later = datetime(2025, 7, 2, 10, 0, 0)
    d.update_material(empty, material_id, name="喉罩（加强型）", spec="加强型 4#", base_unit_id=7, now=later)
    texts = _rows(empty, "T_BD_MATERIAL_L")[0]
    assert (texts["FNAME"], texts["FSPECIFICATION"]) == ("喉罩（加强型）", "加强型 4#")
    assert _rows(empty, "T_BD_MATERIAL")[0]["FMODIFYDATE"] == later
    assert _rows(empty, "T_BD_MATERIALBASE")[0]["FBASEUNITID"] == 7

    d.disable_material(empty, material_id, now=later)
    assert _rows(empty, "T_BD_MATERIAL")[0]["FFORBIDSTATUS"] == "B"
    d.enable_material(empty, material_id, now=later)
    assert _rows(empty, "T_BD_MATERIAL")[0]["FFORBIDSTATUS"] == "A"

    d.set_document_status(empty, "T_BD_MATERIAL", material_id, "D", now=later)
    header = _rows(empty, "T_BD_MATERIAL")[0]
    assert (header["FDOCUMENTSTATUS"], header["FAPPROVERID"], header["FAPPROVEDATE"]) == ("D", 0, None)
    with pytest.raises(ValueError, match="FDOCUMENTSTATUS"):
        d.set_document_status(empty, "T_BD_MATERIAL", material_id, "X")

    d.delete_material(empty, material_id)
    assert not any(d.count_rows(empty).values())


def test_helpers_join_the_callers_transaction(empty):
    with empty.connect() as conn:
        conn.execute(text("SELECT 1"))  # autobegins: the helper must not commit the caller's transaction
        d.insert_material(conn, "1.01.9002", "人工鼻", "热湿交换器 HME 成人")
        assert d.count_rows(conn)["T_BD_MATERIAL"] == 1
        conn.rollback()
    assert d.count_rows(empty)["T_BD_MATERIAL"] == 0


def test_bulk_insert_materials(empty):
    ids = d.bulk_insert_materials(empty, 250, "9.99.")
    assert len(ids) == len(set(ids)) == 250 and ids == sorted(ids)
    counts = d.count_rows(empty)
    assert counts["T_BD_MATERIAL"] == counts["T_BD_MATERIAL_L"] == counts["T_BD_MATERIALBASE"] == 250
    numbers = sorted(r["FNUMBER"] for r in _rows(empty, "T_BD_MATERIAL"))
    assert numbers[0] == "9.99.000001" and numbers[-1] == "9.99.000250"
    more = d.bulk_insert_materials(empty, 5, "9.99.", start=251)
    assert min(more) > max(ids)


def test_sales_order_outbound_back_write_and_delete(empty):
    customer = d.insert_customer(empty, "CUST9001", "四川大学华西医院", "华西医院")
    laryngeal = d.insert_material(empty, "1.01.0001", "喉罩", "一次性 3#")
    circuit = d.insert_material(empty, "1.01.0002", "一次性使用麻醉呼吸回路", "成人 1.8m 可伸缩")
    order = d.insert_sales_order(
        empty,
        customer,
        [
            d.OrderLine(laryngeal, 100, "38.50"),
            {"material_id": circuit, "qty": 20, "tax_price": Decimal("45")},
        ],
        now=NOW,
    )
    assert order.bill_no == "XSDD000001" and len(order.entry_ids) == 2
    assert _rows(empty, "T_SAL_ORDERFIN")[0]["FBILLALLAMOUNT"] == Decimal("4750.00")

    partial = d.insert_outstock(empty, order, [d.OutstockLine(order.entry_ids[0], 60, stock_id=5)])
    progress = {r["FENTRYID"]: r for r in _rows(empty, "T_SAL_ORDERENTRY_R")}
    assert progress[order.entry_ids[0]]["FSTOCKOUTQTY"] == 60
    assert progress[order.entry_ids[0]]["FREMAINOUTQTY"] == 40
    assert _rows(empty, "T_SAL_ORDER")[0]["FCLOSESTATUS"] == "A"

    rest = d.insert_outstock(empty, order.fid)  # the remaining quantity of every line
    assert rest.bill_no == "XSCKD000002" and len(rest.entry_ids) == 2
    assert all(r["FREMAINOUTQTY"] == 0 for r in _rows(empty, "T_SAL_ORDERENTRY_R"))
    assert _rows(empty, "T_SAL_ORDER")[0]["FCLOSESTATUS"] == "B"
    links = {r["FENTRYID"]: r for r in _rows(empty, "T_SAL_OUTSTOCKENTRY_R")}
    assert links[partial.entry_ids[0]]["FSOENTRYID"] == order.entry_ids[0]
    assert links[partial.entry_ids[0]]["FSOORDERNO"] == order.bill_no

    d.delete_outstock(empty, rest.fid)  # reverses its back-write and reopens the order
    progress = {r["FENTRYID"]: r for r in _rows(empty, "T_SAL_ORDERENTRY_R")}
    assert progress[order.entry_ids[0]]["FREMAINOUTQTY"] == 40
    assert progress[order.entry_ids[1]]["FREMAINOUTQTY"] == 20
    assert _rows(empty, "T_SAL_ORDER")[0]["FCLOSESTATUS"] == "A"
    assert {r["FID"] for r in _rows(empty, "T_SAL_OUTSTOCKENTRY")} == {partial.fid}

    d.delete_sales_order(empty, order.fid)
    counts = d.count_rows(empty)
    assert all(counts[t] == 0 for t in m.DOCUMENT_TABLES["T_SAL_ORDER"].tables)


def test_update_order_line_can_change_entries_only(empty):
    order = d.insert_sales_order(empty, 1, [d.OrderLine(1, 10, "20")], now=NOW)
    d.update_order_line(empty, order.entry_ids[0], qty=15, touch_header=False, now=datetime(2025, 7, 3))
    assert _rows(empty, "T_SAL_ORDER")[0]["FMODIFYDATE"] == NOW, "entry-only change leaves the header alone"
    assert _rows(empty, "T_SAL_ORDERENTRY_F")[0]["FALLAMOUNT"] == Decimal("300.00")
    assert _rows(empty, "T_SAL_ORDERENTRY_R")[0]["FREMAINOUTQTY"] == 15
    later = datetime(2025, 7, 4)
    d.update_order_line(empty, order.entry_ids[0], tax_price="22", now=later)
    assert _rows(empty, "T_SAL_ORDER")[0]["FMODIFYDATE"] == later
    assert _rows(empty, "T_SAL_ORDERFIN")[0]["FBILLALLAMOUNT"] == Decimal("330.00")


def test_adjust_inventory_creates_then_adds(empty):
    fid = d.adjust_inventory(empty, 100001, 100002, 10, lot_id=5)
    assert d.adjust_inventory(empty, 100001, 100002, "-3.5", lot_id=5) == fid
    (row,) = _rows(empty, "T_STK_INVENTORY")
    assert row["FBASEQTY"] == Decimal("6.5") and row["FID"] == fid


def test_lookup_id(seeded):
    engine, _ = seeded
    assert d.lookup_id(engine, "T_BD_MATERIAL", "1.01.0001") == m.ID_START
    assert d.lookup_id(engine, "T_SAL_ORDER", "XSDD000001") == m.ID_START
    assert d.lookup_id(engine, "T_BD_CUSTOMER", "NOPE") is None
