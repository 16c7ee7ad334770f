"""The simulator's form declarations map onto the Kingdee tables, and Save/Query/View work on SQLite."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, select

from connectors.kingdee import models as m
from infra.simulators.kingdee import envelope as env
from infra.simulators.kingdee.demo_seed import seed
from infra.simulators.kingdee.forms import FORMS, REF_TARGETS, form_by_id
from infra.simulators.kingdee.model_input import SaveOptions, read_model
from infra.simulators.kingdee.query import BillQuery
from infra.simulators.kingdee.save import DocumentWriter
from infra.simulators.kingdee.status_ops import StatusOperations
from infra.simulators.kingdee.view import DocumentViewer


def test_every_field_names_a_real_column_and_every_ref_a_known_target() -> None:
    for form in FORMS.values():
        assert form.key in m.TABLES[form.header].c and form.number_column in m.TABLES[form.header].c
        for f in form.fields:
            assert f.column in m.TABLES[f.table].c, (form.form_id, f.key)
            assert f.ref is None or f.ref in REF_TARGETS
            assert f.table == form.header or f.table in {p.table for p in form.parts} or form.is_entry_field(f)
        for part in form.parts:
            assert form.key in m.TABLES[part.table].c


def test_form_ids_and_field_keys_match_case_insensitively() -> None:
    assert form_by_id("bd_material") is form_by_id("BD_MATERIAL") is form_by_id("BD_Material")
    order = form_by_id("SAL_SaleOrder")
    assert order is not None and order.entry is not None and order.entry.key == "FSaleOrderEntry"
    assert order.field("fcustid") is order.field("FCustId")
    assert form_by_id("SAL_OUTSTOCK").entry.key == "FEntity"  # type: ignore[union-attr]
    assert form_by_id("NOPE") is None


def test_model_input_flattens_sub_entities_and_honours_need_update_fields() -> None:
    material = form_by_id("BD_MATERIAL")
    assert material is not None
    data = read_model(material, {"FMATERIALID": 5, "FName": "x", "FDocumentStatus": "C",
                                 "SubHeadEntity": {"FBaseUnitId": {"FNumber": "Pcs"}}, "Unknown": 1},
                      SaveOptions())  # fmt: skip
    assert data.doc_id == 5 and sorted(f.key for f, _ in data.header) == ["FBaseUnitId", "FName"]
    order = form_by_id("SAL_SaleOrder")
    assert order is not None
    model = {"FID": 9, "FNote": "n", "FCustId": {"FNumber": "C"}, "FSaleOrderEntry": [{"FEntryID": 3, "FQty": 2}]}
    narrowed = read_model(order, model, SaveOptions(need_update_fields=frozenset({"fnote"})))
    assert [f.key for f, _ in narrowed.header] == ["FNote"] and narrowed.entries is None
    with_entries = read_model(order, model, SaveOptions(need_update_fields=frozenset({"fsaleorderentry", "fqty"})))
    assert with_entries.entry_lines == [(3, [(order.field("FQty"), 2)])]


@pytest.fixture()
def engine():  # type: ignore[no-untyped-def]
    eng = create_engine("sqlite://")
    m.create_schema(eng)
    seed(eng, materials=4, customers=2, orders=1)
    return eng


def test_save_query_view_and_status_rules_on_sqlite(engine) -> None:  # type: ignore[no-untyped-def]
    order = form_by_id("SAL_SaleOrder")
    assert order is not None
    with engine.connect() as conn:
        customer = conn.execute(select(m.T_BD_CUSTOMER.c.FNUMBER).limit(1)).scalar_one()
        material = conn.execute(select(m.T_BD_MATERIAL.c.FNUMBER).limit(1)).scalar_one()
    model = {"FCustId": {"FNumber": customer},
             "FSaleOrderEntry": [{"FMaterialId": {"FNumber": material}, "FQty": 2, "FTaxPrice": 11.3}]}  # fmt: skip
    outcome = DocumentWriter(engine, 7).save_many(order, [model, {"FCustId": {"FNumber": "X"}}], SaveOptions())
    assert [s.dindex for s in outcome.successes] == [0] and outcome.msg_code == env.VALIDATION_FAILED
    assert {p.field_name for p in outcome.problems} >= {"FCustId", "FSaleOrderEntry"}
    number = outcome.successes[0].number
    rows = BillQuery(engine).run({"FormId": "SAL_SaleOrder", "FieldKeys": "FBillNo,FCustId.FNumber,FQty,FAllAmount",
                                  "FilterString": f"FBillNo = '{number}'"})  # fmt: skip
    assert rows == [[number, customer, 2, 22.6]]
    ops = StatusOperations(engine, 7)
    assert ops.run("audit", order, {"Numbers": [number]}).msg_code == env.NOT_OPERABLE
    assert ops.run("submit", order, {"Ids": str(outcome.successes[0].id)}).msg_code == env.OK
    viewed = DocumentViewer(engine).view(order, {"Number": number})
    assert viewed["DocumentStatus"] == "B" and viewed["SaleOrderEntry"][0]["MaterialId"]["Number"] == material
