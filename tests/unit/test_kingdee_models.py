"""The Kingdee table model: real upper-case names, keys, the document id in every child table, DDL."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import (
    CHAR,
    BigInteger,
    CheckConstraint,
    ForeignKeyConstraint,
    Numeric,
    String,
    create_engine,
    inspect,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.schema import CreateTable

from connectors.kingdee import models as m

REQUIRED_TABLES = {
    "T_BD_MATERIAL",
    "T_BD_MATERIAL_L",
    "T_BD_CUSTOMER",
    "T_BD_CUSTOMER_L",
    "T_SAL_ORDER",
    "T_SAL_ORDERENTRY",
    "T_SAL_ORDERENTRY_F",
    "T_SAL_ORDERENTRY_R",
    "T_SAL_OUTSTOCK",
    "T_SAL_OUTSTOCKENTRY",
    "T_SAL_OUTSTOCKENTRY_R",
    "T_SAL_OUTSTOCKENTRY_F",
    "T_AR_RECEIVEBILL",
    "T_AR_RECEIVEBILLENTRY",
    "T_AR_RECEIVEBILLSRCENTRY",
    "T_IV_SALESIC",
    "T_IV_SALESICENTRY",
    "T_IV_SALESOC",
    "T_IV_SALESOCENTRY",
    "T_STK_INVENTORY",
    "T_BD_STOCK",
    "T_BD_STOCK_L",
    "T_BD_MATERIALGROUP",
    "T_BD_MATERIALGROUP_L",
    "T_BD_UNIT",
    "T_BD_UNIT_L",
}

# Columns named in the shared reference (Kingdee "Database conventions"), which the connectors may rely on.
REFERENCE_COLUMNS = {
    "T_BD_MATERIAL": {
        "FMATERIALID",
        "FNUMBER",
        "FMASTERID",
        "FDOCUMENTSTATUS",
        "FFORBIDSTATUS",
        "FMATERIALGROUP",
        "FMODIFYDATE",
        "FCREATEORGID",
        "FUSEORGID",
    },
    "T_BD_MATERIAL_L": {"FPKID", "FMATERIALID", "FLOCALEID", "FNAME", "FSPECIFICATION"},
    "T_BD_CUSTOMER": {"FCUSTID", "FNUMBER", "FDOCUMENTSTATUS", "FFORBIDSTATUS", "FCUSTTYPEID"},
    "T_BD_CUSTOMER_L": {"FPKID", "FCUSTID", "FLOCALEID", "FNAME", "FSHORTNAME"},
    "T_SAL_ORDER": {
        "FID",
        "FBILLNO",
        "FDATE",
        "FCUSTID",
        "FSALEORGID",
        "FSALERID",
        "FDOCUMENTSTATUS",
        "FCLOSESTATUS",
        "FCANCELSTATUS",
        "FAPPROVEDATE",
        "FCREATEDATE",
        "FMODIFYDATE",
        "FCREATORID",
        "FMODIFIERID",
        "FAPPROVERID",
    },
    "T_SAL_ORDERENTRY": {"FENTRYID", "FID", "FSEQ", "FMATERIALID", "FQTY"},
    "T_SAL_ORDERENTRY_F": {"FENTRYID", "FID", "FPRICE", "FTAXPRICE", "FAMOUNT", "FALLAMOUNT"},
    "T_SAL_ORDERENTRY_R": {"FENTRYID", "FID", "FSTOCKOUTQTY", "FREMAINOUTQTY"},
    "T_SAL_OUTSTOCK": {
        "FID",
        "FBILLNO",
        "FDATE",
        "FCUSTOMERID",
        "FSTOCKORGID",
        "FDOCUMENTSTATUS",
        "FCANCELSTATUS",
    },
    "T_SAL_OUTSTOCKENTRY": {"FENTRYID", "FID", "FSEQ", "FMATERIALID", "FREALQTY", "FSTOCKID"},
    "T_SAL_OUTSTOCKENTRY_R": {"FENTRYID", "FID", "FSOORDERNO", "FSOENTRYID"},
    "T_SAL_OUTSTOCKENTRY_F": {"FENTRYID", "FID", "FPRICE", "FALLAMOUNT"},
    "T_AR_RECEIVEBILL": {
        "FID",
        "FBILLNO",
        "FDATE",
        "FCONTACTUNITTYPE",
        "FCONTACTUNIT",
        "FPAYUNIT",
        "FCURRENCYID",
        "FDOCUMENTSTATUS",
        "FCANCELSTATUS",
        "FRECEIVEAMOUNT",
    },
    "T_AR_RECEIVEBILLENTRY": {"FENTRYID", "FID", "FSEQ", "FREALRECAMOUNTFOR", "FSALEORDERNO"},
    "T_AR_RECEIVEBILLSRCENTRY": {"FID", "FORDERBILLNO", "FREALRECAMOUNT"},
    "T_IV_SALESIC": {
        "FID",
        "FBILLNO",
        "FDATE",
        "FCUSTOMERID",
        "FDOCUMENTSTATUS",
        "FCANCELSTATUS",
        "FINVOICENO",
        "FAFTERTOTALTAXFOR",
    },
    "T_IV_SALESICENTRY": {"FENTRYID", "FID", "FSRCBILLNO", "FPRICEQTY", "FALLAMOUNTFOR"},
    "T_IV_SALESOC": {
        "FID",
        "FBILLNO",
        "FDATE",
        "FCUSTOMERID",
        "FDOCUMENTSTATUS",
        "FCANCELSTATUS",
        "FINVOICENO",
        "FAFTERTOTALTAXFOR",
    },
    "T_IV_SALESOCENTRY": {"FENTRYID", "FID", "FSRCBILLNO", "FPRICEQTY", "FALLAMOUNTFOR"},
    "T_STK_INVENTORY": {
        "FID",
        "FMATERIALID",
        "FSTOCKID",
        "FSTOCKORGID",
        "FLOT",
        "FSTOCKSTATUSID",
        "FBASEQTY",
        "FUPDATETIME",
    },
    "T_BD_STOCK": {"FSTOCKID", "FNUMBER"},
    "T_BD_STOCK_L": {"FPKID", "FSTOCKID", "FLOCALEID", "FNAME"},
    "T_BD_MATERIALGROUP": {"FID", "FNUMBER"},
    "T_BD_MATERIALGROUP_L": {"FPKID", "FID", "FLOCALEID", "FNAME"},
    "T_BD_UNIT": {"FUNITID", "FNUMBER"},
    "T_BD_UNIT_L": {"FPKID", "FUNITID", "FLOCALEID", "FNAME"},
    "T_BD_MATERIALBASE": {"FENTRYID", "FMATERIALID", "FBASEUNITID"},
}

UPPER = re.compile(r"^[A-Z][A-Z0-9_]*$")


def test_every_required_table_is_declared_and_captured():
    assert set(m.metadata.tables) >= REQUIRED_TABLES
    assert set(m.metadata.tables) == set(m.CAPTURED_TABLES)
    assert len(m.CAPTURED_TABLES) == len(set(m.CAPTURED_TABLES))


@pytest.mark.parametrize("table", sorted(REFERENCE_COLUMNS))
def test_reference_columns_exist_with_their_kingdee_names(table):
    assert REFERENCE_COLUMNS[table] <= set(m.TABLES[table].c.keys())


def test_identifiers_are_upper_case_and_keys_equal_names():
    for table in m.metadata.tables.values():
        assert UPPER.match(table.name), table.name
        for column in table.columns:
            assert UPPER.match(column.name), f"{table.name}.{column.name}"
            assert column.key == column.name


def test_postgres_ddl_quotes_every_identifier_so_case_is_kept():
    ddl = str(CreateTable(m.T_BD_MATERIAL).compile(dialect=postgresql.dialect()))
    assert 'CREATE TABLE "T_BD_MATERIAL"' in ddl
    assert '"FNUMBER" VARCHAR(80)' in ddl
    assert '"FMATERIALID" BIGINT GENERATED BY DEFAULT AS IDENTITY (START WITH 100001)' in ddl
    for table in m.metadata.tables.values():
        text = str(CreateTable(table).compile(dialect=postgresql.dialect()))
        for column in table.columns:
            assert f'"{column.name}"' in text


def test_replica_identity_full_for_every_table_on_postgres_only():
    statements = m.replica_identity_sql(postgresql.dialect())
    assert len(statements) == len(m.CAPTURED_TABLES)
    assert 'ALTER TABLE "T_SAL_ORDERENTRY_R" REPLICA IDENTITY FULL' in statements
    assert m.replica_identity_sql(sqlite.dialect()) == []


@pytest.mark.parametrize(
    ("table", "pk"),
    [
        ("T_BD_MATERIAL", "FMATERIALID"),
        ("T_BD_MATERIAL_L", "FPKID"),
        ("T_BD_MATERIALBASE", "FENTRYID"),
        ("T_BD_CUSTOMER", "FCUSTID"),
        ("T_BD_CUSTOMER_L", "FPKID"),
        ("T_BD_STOCK", "FSTOCKID"),
        ("T_BD_UNIT", "FUNITID"),
        ("T_BD_MATERIALGROUP", "FID"),
        ("T_SAL_ORDER", "FID"),
        ("T_SAL_ORDERENTRY", "FENTRYID"),
        ("T_SAL_ORDERENTRY_F", "FENTRYID"),
        ("T_SAL_ORDERENTRY_R", "FENTRYID"),
        ("T_SAL_OUTSTOCK", "FID"),
        ("T_SAL_OUTSTOCKENTRY_R", "FENTRYID"),
        ("T_AR_RECEIVEBILL", "FID"),
        ("T_AR_RECEIVEBILLSRCENTRY", "FENTRYID"),
        ("T_IV_SALESIC", "FID"),
        ("T_IV_SALESOCENTRY", "FENTRYID"),
        ("T_STK_INVENTORY", "FID"),
    ],
)
def test_primary_keys(table, pk):
    assert [c.name for c in m.TABLES[table].primary_key.columns] == [pk]


def test_every_child_table_carries_its_document_id_under_the_header_key():
    assert set(m.CAPTURED_TABLES) == {t for d in m.DOCUMENT_TABLES.values() for t in d.tables}
    for doc in m.DOCUMENT_TABLES.values():
        header_key = m.TABLES[doc.header].c[doc.key]
        assert header_key.primary_key
        for child in doc.children:
            column = m.TABLES[child].c[doc.key]
            assert not column.nullable, f"{child}.{doc.key} must be NOT NULL"
            assert not column.primary_key, f"{child}.{doc.key} is the document id, not the row key"
            assert type(column.type) is type(header_key.type)


def test_entry_splits_share_the_entry_id_and_are_never_generated():
    for name in (
        "T_SAL_ORDERENTRY_F",
        "T_SAL_ORDERENTRY_R",
        "T_SAL_OUTSTOCKENTRY_F",
        "T_SAL_OUTSTOCKENTRY_R",
    ):
        pk = m.TABLES[name].c.FENTRYID
        assert pk.primary_key and pk.identity is None and pk.autoincrement is False


def test_text_tables_are_keyed_by_fpkid_with_locale_2052_by_default():
    for name, table in m.TABLES.items():
        if name.endswith("_L"):
            assert [c.name for c in table.primary_key.columns] == ["FPKID"]
            assert table.c.FLOCALEID.server_default.arg.text == "2052"


def test_amounts_and_quantities_are_decimal_23_10():
    for name, column in [
        ("T_SAL_ORDERENTRY", "FQTY"),
        ("T_SAL_ORDERENTRY_F", "FALLAMOUNT"),
        ("T_SAL_OUTSTOCKENTRY", "FREALQTY"),
        ("T_STK_INVENTORY", "FBASEQTY"),
        ("T_AR_RECEIVEBILL", "FRECEIVEAMOUNT"),
        ("T_IV_SALESIC", "FAFTERTOTALTAXFOR"),
    ]:
        col_type = m.TABLES[name].c[column].type
        assert isinstance(col_type, Numeric) and (col_type.precision, col_type.scale) == (23, 10)


def test_status_columns_are_single_letters_with_kingdee_defaults():
    for table in m.metadata.tables.values():
        for column in table.columns:
            if column.name in ("FDOCUMENTSTATUS", "FFORBIDSTATUS", "FCANCELSTATUS", "FCLOSESTATUS"):
                assert isinstance(column.type, CHAR) and column.type.length == 1
                default = column.server_default.arg
                assert default in m.DOCUMENT_STATUS or default in m.FORBID_STATUS


def test_status_letters_are_declared_as_data():
    assert list(m.DOCUMENT_STATUS) == ["Z", "A", "B", "C", "D"]
    assert "audited" in m.DOCUMENT_STATUS["C"]
    assert set(m.FORBID_STATUS) == set(m.CANCEL_STATUS) == set(m.CLOSE_STATUS) == {"A", "B"}


def test_no_check_or_foreign_key_constraints_so_bad_data_reaches_the_capture():
    for table in m.metadata.tables.values():
        assert not [c for c in table.constraints if isinstance(c, CheckConstraint | ForeignKeyConstraint)]
        for column in table.columns:
            if not column.primary_key and column.name not in {d.key for d in m.DOCUMENT_TABLES.values()}:
                assert column.nullable, f"{table.name}.{column.name}"


def test_guid_keys_where_kingdee_uses_them():
    assert isinstance(m.T_STK_INVENTORY.c.FID.type, String)
    assert isinstance(m.T_BAS_ASSISTANTDATAENTRY.c.FENTRYID.type, String)
    assert isinstance(m.T_SAL_ORDER.c.FID.type, BigInteger)


def test_create_schema_on_sqlite_is_idempotent_and_keeps_the_names():
    engine = create_engine("sqlite://")
    m.create_schema(engine)
    m.create_schema(engine)
    insp = inspect(engine)
    assert set(insp.get_table_names()) == set(m.CAPTURED_TABLES)
    assert {c["name"] for c in insp.get_columns("T_SAL_OUTSTOCKENTRY_R")} >= {"FENTRYID", "FID", "FSOORDERNO"}
    assert insp.get_pk_constraint("T_BD_MATERIAL_L")["constrained_columns"] == ["FPKID"]


def test_next_ids_are_ascending_and_never_reused_within_a_connection():
    engine = create_engine("sqlite://")
    m.create_schema(engine)
    with engine.begin() as conn:
        first = m.next_ids(conn, "T_SAL_ORDER", 3)
        second = m.next_ids(conn, m.T_SAL_ORDER, 2)
        assert first == [m.ID_START, m.ID_START + 1, m.ID_START + 2]
        assert second == [m.ID_START + 3, m.ID_START + 4]
        assert m.next_ids(conn, "T_SAL_ORDERENTRY", 1) == [m.ID_START]
        assert m.next_ids(conn, "T_SAL_ORDER", 0) == []
        with pytest.raises(ValueError, match="GUID"):
            m.next_ids(conn, "T_STK_INVENTORY", 1)
        m.restart_ids(conn)
        assert m.next_ids(conn, "T_SAL_ORDER", 1) == [m.ID_START]
