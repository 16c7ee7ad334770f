"""Document assembly: whole documents per transaction, entry-only changes, deletes, bad values."""

from __future__ import annotations

from decimal import Decimal

import pytest

from connectors.kingdee.assembly import UNCHANGED, DocumentAssembler, RowChange, Transaction
from connectors.kingdee.document_store import DocumentStore
from connectors.kingdee.documents import DocumentCatalog
from connectors.kingdee.models import metadata
from connectors.kingdee.row_types import RowTypes


@pytest.fixture()
def assembler() -> DocumentAssembler:
    return DocumentAssembler(DocumentCatalog(), DocumentStore(":memory:"), RowTypes(metadata))


def tx(lsn: int, *changes: RowChange) -> Transaction:
    return Transaction(xid=lsn, commit_lsn=lsn, commit_time_ms=1_700_000_000_000 + lsn, changes=list(changes))


def ins(table: str, **row: object) -> RowChange:
    return RowChange(table, "I", None, dict(row))


def upd(table: str, before: dict, **changes: object) -> RowChange:
    return RowChange(table, "U", dict(before), {**before, **changes})


def dele(table: str, **row: object) -> RowChange:
    return RowChange(table, "D", dict(row), None)


ORDER = {"FID": 500, "FBILLNO": "XSDD000500", "FDOCUMENTSTATUS": "C", "FCUSTID": 0}


def order_rows(n: int = 3) -> list[RowChange]:
    rows = [ins("T_SAL_ORDER", **ORDER)]
    for i in range(1, n + 1):
        rows.append(ins("T_SAL_ORDERENTRY", FENTRYID=600 + i, FID=500, FSEQ=i, FMATERIALID=100 + i,
                        FQTY=Decimal("10.0000000000") * i))
        rows.append(ins("T_SAL_ORDERENTRY_F", FENTRYID=600 + i, FID=500, FPRICE=Decimal("12.5"),
                        FALLAMOUNT=Decimal("125") * i))
        rows.append(ins("T_SAL_ORDERENTRY_R", FENTRYID=600 + i, FID=500, FSTOCKOUTQTY=0))
    return rows


def test_multi_line_order_in_one_transaction_is_one_document(assembler: DocumentAssembler) -> None:
    changes = assembler.apply(tx(10, *reversed(order_rows(3))))  # row order within the tx must not matter
    assert len(changes) == 1
    (change,) = changes
    assert (change.spec.name, change.doc_id, change.op, change.before) == ("sales_order", "500", "c", None)
    entries = change.after["entries"]
    assert [e["FSEQ"] for e in entries] == [1, 2, 3]
    assert [e["FQTY"] for e in entries] == [Decimal("10"), Decimal("20"), Decimal("30")]
    assert all(e["FPRICE"] == Decimal("12.5") for e in entries), "the _F split is merged into each entry"
    assert entries[2]["FALLAMOUNT"] == Decimal("375")
    assert change.number == "XSDD000500"


def test_entry_only_change_yields_the_whole_document(assembler: DocumentAssembler) -> None:
    assembler.apply(tx(10, *order_rows(3)))
    old_entry = {"FENTRYID": 602, "FID": 500, "FSEQ": 2, "FMATERIALID": 102, "FQTY": "20"}
    (change,) = assembler.apply(tx(20, upd("T_SAL_ORDERENTRY", old_entry, FQTY=Decimal("25"))))
    assert change.op == "u"
    assert change.after["FBILLNO"] == "XSDD000500"
    assert len(change.after["entries"]) == 3
    assert [e["FQTY"] for e in change.before["entries"]] == [Decimal("10"), Decimal("20"), Decimal("30")]
    assert [e["FQTY"] for e in change.after["entries"]] == [Decimal("10"), Decimal("25"), Decimal("30")]
    assert change.tables == ("T_SAL_ORDERENTRY",)


def test_a_value_the_log_did_not_carry_keeps_the_stored_one(assembler: DocumentAssembler) -> None:
    """An unchanged TOASTed value without an old row (REPLICA IDENTITY DEFAULT) arrives without its value."""
    assembler.apply(tx(10, *order_rows(2)))
    entry = {"FENTRYID": 602, "FID": 500, "FSEQ": 2, "FMATERIALID": 102, "FQTY": UNCHANGED}
    (change,) = assembler.apply(tx(20, RowChange("T_SAL_ORDERENTRY", "U", None, {**entry, "FSEQ": 5})))
    (line,) = [e for e in change.after["entries"] if e["FENTRYID"] == 602]
    assert (line["FSEQ"], line["FQTY"]) == (5, Decimal("20"))


def test_deleted_entry_leaves_the_document_with_fewer_lines(assembler: DocumentAssembler) -> None:
    assembler.apply(tx(10, *order_rows(3)))
    (change,) = assembler.apply(tx(20, dele("T_SAL_ORDERENTRY", FENTRYID=603, FID=500),
                                   dele("T_SAL_ORDERENTRY_F", FENTRYID=603, FID=500),
                                   dele("T_SAL_ORDERENTRY_R", FENTRYID=603, FID=500)))
    assert change.op == "u"
    assert [e["FENTRYID"] for e in change.after["entries"]] == [601, 602]


def test_deleting_a_document_yields_a_delete_with_its_before_image(assembler: DocumentAssembler) -> None:
    rows = order_rows(2)
    assembler.apply(tx(10, *rows))
    deletes = [RowChange(r.table, "D", r.after, None) for r in rows]
    (change,) = assembler.apply(tx(20, *deletes))
    assert change.op == "d"
    assert change.after is None
    assert change.before is not None and len(change.before["entries"]) == 2
    assert assembler.build(change.spec, "500") is None


def test_bulk_transaction_yields_one_event_per_document(assembler: DocumentAssembler) -> None:
    rows = []
    for i in range(1, 251):
        rows.append(ins("T_BD_MATERIAL", FMATERIALID=i, FNUMBER=f"1.01.{i:04d}", FDOCUMENTSTATUS="C"))
        rows.append(ins("T_BD_MATERIAL_L", FPKID=10_000 + i, FMATERIALID=i, FLOCALEID=2052, FNAME=f"喉罩{i}"))
    changes = assembler.apply(tx(30, *rows))
    assert len(changes) == 250
    assert len({c.doc_id for c in changes}) == 250
    assert all(c.op == "c" and c.after["texts"][0]["FNAME"].startswith("喉罩") for c in changes)


def test_material_carries_its_base_split_and_resolved_references(assembler: DocumentAssembler) -> None:
    assembler.apply(tx(5, ins("T_BD_MATERIALGROUP", FID=7, FNUMBER="01"),
                       ins("T_BD_MATERIALGROUP_L", FPKID=70, FID=7, FLOCALEID=2052, FNAME="麻醉耗材"),
                       ins("T_BD_UNIT", FUNITID=8, FNUMBER="Pcs"),
                       ins("T_BD_UNIT_L", FPKID=80, FUNITID=8, FLOCALEID=2052, FNAME="个")))
    (change,) = assembler.apply(tx(6, ins("T_BD_MATERIAL", FMATERIALID=1, FNUMBER="1.01.0001", FMATERIALGROUP=7),
                                   ins("T_BD_MATERIALBASE", FENTRYID=11, FMATERIALID=1, FBASEUNITID=8)))
    assert change.after["FBASEUNITID"] == 8
    assert (change.after["group_number"], change.after["group_name"]) == ("01", "麻醉耗材")
    assert change.after["base_unit_name"] == "个"


def test_unchanged_update_emits_nothing(assembler: DocumentAssembler) -> None:
    assembler.apply(tx(1, ins("T_BD_MATERIAL", FMATERIALID=1, FNUMBER="A")))
    assert assembler.apply(tx(2, upd("T_BD_MATERIAL", {"FMATERIALID": 1, "FNUMBER": "A"}))) == []


def test_child_rows_without_a_header_emit_nothing(assembler: DocumentAssembler) -> None:
    assert assembler.apply(tx(1, ins("T_SAL_ORDERENTRY", FENTRYID=1, FID=999, FSEQ=1))) == []


def test_a_value_the_column_cannot_hold_fails_only_its_document(assembler: DocumentAssembler) -> None:
    changes = assembler.apply(tx(1, ins("T_BD_MATERIAL", FMATERIALID=1, FNUMBER="ok"),
                                 ins("T_SAL_ORDER", FID=2, FBILLNO="X"),
                                 ins("T_SAL_ORDERENTRY", FENTRYID=3, FID=2, FSEQ=1, FQTY="1e40")))
    assert [c.spec.name for c in changes] == ["material"]
    assert [(f.spec.name, f.doc_id) for f in assembler.failures] == [("sales_order", "2")]
    assert "FQTY" in str(assembler.failures[0].error)


def test_tables_outside_any_document_are_ignored(assembler: DocumentAssembler) -> None:
    assert assembler.apply(tx(1, ins("SOME_OTHER_TABLE", X=1))) == []


def test_an_invoice_line_knows_its_order_directly_or_through_its_outbound(assembler: DocumentAssembler) -> None:
    assembler.apply(tx(1, ins("T_SAL_OUTSTOCK", FID=30, FBILLNO="XSCKD000030"),
                       ins("T_SAL_OUTSTOCKENTRY", FENTRYID=301, FID=30, FSEQ=1, FREALQTY=5),
                       ins("T_SAL_OUTSTOCKENTRY_R", FENTRYID=301, FID=30, FSOORDERNO="XSDD000500", FSOENTRYID=601)))
    (change,) = assembler.apply(tx(2, ins("T_IV_SALESIC", FID=40, FBILLNO="XSZYFP000040"),
                                   ins("T_IV_SALESICENTRY", FENTRYID=401, FID=40, FSEQ=1,
                                       FSRCBILLTYPEID="SAL_OUTSTOCK", FSRCBILLNO="XSCKD000030", FSRCROWID=301),
                                   ins("T_IV_SALESICENTRY", FENTRYID=402, FID=40, FSEQ=2,
                                       FSRCBILLTYPEID="SAL_SaleOrder", FSRCBILLNO="XSDD000777"),
                                   ins("T_IV_SALESICENTRY", FENTRYID=403, FID=40, FSEQ=3,
                                       FSRCBILLTYPEID="SAL_OUTSTOCK", FSRCBILLNO="XSCKD999999", FSRCROWID=1)))
    assert [e["source_order_no"] for e in change.after["entries"]] == ["XSDD000500", "XSDD000777", None]


def group(fid: int, number: str, name: str) -> list[RowChange]:
    return [ins("T_BD_MATERIALGROUP", FID=fid, FNUMBER=number),
            ins("T_BD_MATERIALGROUP_L", FPKID=fid * 10, FID=fid, FLOCALEID=2052, FNAME=name)]


def material(mid: int, number: str, group_id: int) -> list[RowChange]:
    return [ins("T_BD_MATERIAL", FMATERIALID=mid, FNUMBER=number, FMATERIALGROUP=group_id),
            ins("T_BD_MATERIAL_L", FPKID=mid * 10, FMATERIALID=mid, FLOCALEID=2052, FNAME=f"物料{mid}")]


def test_renaming_a_group_sends_every_material_that_shows_it_again(assembler: DocumentAssembler) -> None:
    assembler.apply(tx(10, *group(7, "01", "麻醉耗材"), *group(8, "02", "监护耗材"),
                       *material(101, "1.01.0001", 7), *material(102, "1.01.0002", 7),
                       *material(103, "1.02.0001", 8)))
    renamed = assembler.apply(tx(20, upd("T_BD_MATERIALGROUP_L", {"FPKID": 70, "FID": 7, "FLOCALEID": 2052,
                                                                   "FNAME": "麻醉耗材"}, FNAME="麻醉与呼吸耗材")))
    by_doc = {(c.spec.name, c.doc_id): c for c in renamed}
    assert set(by_doc) == {("material_group", "7"), ("material", "101"), ("material", "102")}
    resent = by_doc[("material", "101")]
    assert (resent.op, resent.before["group_name"], resent.after["group_name"]) == ("u", "麻醉耗材", "麻醉与呼吸耗材")
    assert resent.before["FNUMBER"] == resent.after["FNUMBER"] == "1.01.0001"


def test_a_group_created_after_its_materials_sends_them_with_its_name(assembler: DocumentAssembler) -> None:
    (orphan,) = assembler.apply(tx(10, *material(101, "1.01.0001", 9)))
    assert orphan.after["group_name"] is None
    changes = assembler.apply(tx(20, *group(9, "09", "急救耗材")))
    [resent] = [c for c in changes if c.spec.name == "material"]
    assert (resent.doc_id, resent.after["group_name"], resent.after["group_number"]) == ("101", "急救耗材", "09")


def test_referenced_documents_kept_between_transactions_show_every_change_of_them(
        assembler: DocumentAssembler) -> None:
    """Groups are built once for many materials and kept between transactions: a transaction that changes one, a
    re-snapshot's rows and a rollback each show in the next material's names."""
    def name_in_new_material(lsn: int) -> str:
        (change,) = [c for c in assembler.apply(tx(lsn, *material(lsn, f"1.01.{lsn}", 7))) if c.doc_id == str(lsn)]
        return str(change.after["group_name"])

    assembler.apply(tx(10, *group(7, "01", "麻醉耗材")))
    assert name_in_new_material(11) == "麻醉耗材"
    assembler.apply(tx(12, upd("T_BD_MATERIALGROUP_L", {"FPKID": 70, "FID": 7, "FLOCALEID": 2052,
                                                        "FNAME": "麻醉耗材"}, FNAME="呼吸耗材")))
    assert name_in_new_material(13) == "呼吸耗材"
    assembler.store.commit(13)
    assembler.store.put_many("T_BD_MATERIALGROUP_L",  # a re-snapshot's rows, written beside the assembler
                             [("70", "7", {"FPKID": 70, "FID": 7, "FLOCALEID": 2052, "FNAME": "急救耗材"})])
    assert name_in_new_material(14) == "急救耗材"
    assembler.store.rollback()  # the batch since 13 is forgotten: the group's name is the committed one again
    assert name_in_new_material(15) == "呼吸耗材"


def test_a_change_that_shows_nowhere_sends_nothing_else(assembler: DocumentAssembler) -> None:
    assembler.apply(tx(10, *group(7, "01", "麻醉耗材"), *material(101, "1.01.0001", 7)))
    changes = assembler.apply(tx(20, upd("T_BD_MATERIALGROUP", {"FID": 7, "FNUMBER": "01"}, FNUMBER="01",
                                         FMODIFIERID=5)))
    assert [(c.spec.name, c.doc_id) for c in changes] == [("material_group", "7")]


def many_orders(first: int, n: int, lines: int = 2) -> list[RowChange]:
    """Orders ``first``… as a bulk save writes them: every header, then every entry and its splits."""
    heads, rest = [], []
    for fid in range(first, first + n):
        heads.append(ins("T_SAL_ORDER", **{**ORDER, "FID": fid, "FBILLNO": f"XSDD{fid:06d}"}))
        for i in range(1, lines + 1):
            entry = fid * 10 + i
            rest.append(ins("T_SAL_ORDERENTRY", FENTRYID=entry, FID=fid, FSEQ=i, FMATERIALID=100 + i,
                            FQTY=Decimal(i)))
            rest.append(ins("T_SAL_ORDERENTRY_F", FENTRYID=entry, FID=fid, FPRICE=Decimal("12.5")))
    return heads + rest


def test_a_large_transaction_applied_in_chunks_gives_what_it_gives_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    import connectors.kingdee.assembly as assembly

    def run(chunk: int) -> list[tuple[str, str, str, object, object]]:
        monkeypatch.setattr(assembly, "CHUNK_DOCUMENTS", chunk)
        whole = DocumentAssembler(DocumentCatalog(), DocumentStore(":memory:"), RowTypes(metadata))
        out = []
        for i, changes in enumerate([many_orders(1000, 25),
                                     [upd("T_SAL_ORDERENTRY", {"FENTRYID": f * 10 + 1, "FID": f, "FSEQ": 1,
                                                               "FMATERIALID": 101, "FQTY": Decimal(1)},
                                          FQTY=Decimal(7)) for f in range(1000, 1025)]
                                     + [dele("T_SAL_ORDER", **{**ORDER, "FID": 1003, "FBILLNO": "XSDD001003"})]]):
            for change in whole.changes_of(tx(10 + i, *changes)):
                out.append((change.spec.name, change.doc_id, change.op, change.before, change.after))
        return sorted(out, key=lambda c: (c[1], c[2]))

    whole, chunked = run(10_000), run(4)
    assert len(whole) == 50  # 25 created, then 24 updated and one updated and deleted: a "d"
    assert [c[2] for c in whole if c[1] == "1003"] == ["c", "d"]
    assert chunked == whole
