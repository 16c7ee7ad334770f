"""The Kingdee K/3 Cloud database tables: SQLAlchemy Core ``Table``s with Kingdee's own upper-case names.

Why Core, not ORM: the CDC reader sees rows by table and column name (logical decoding gives
``"T_BD_MATERIAL"."FNUMBER"``), so the code that writes demo data and the code that reads changes use the
same names. Every identifier is upper case and quoted, so PostgreSQL keeps it upper case as K/3 Cloud's own
schema is. ``table.c.FNUMBER`` is the column named ``FNUMBER`` (column keys equal column names).

Facts and confidence (shared reference, Kingdee "Database conventions"): table names, ``FID``/``FENTRYID``/
``FSEQ``, the ``_L``/``_F``/``_R`` splits, status letters, ``FSOORDERNO``/``FSOENTRYID`` and ``FBASEQTY`` are
from the reference [H]. Other columns are ones K/3 Cloud is commonly seen to have [M]; a connector must not
depend on a column outside the reference without making it configurable.

Design decisions the capture side relies on:

* **Every child table carries its document's id under the header's key column name.** Entries, ``_F``/``_R``
  splits, ``SRCENTRY`` and header splits (``…FIN``) carry ``FID``; ``_L`` texts carry the basedata key
  (``FMATERIALID``, ``FCUSTID``, …); ``T_BD_MATERIALBASE`` carries ``FMATERIALID``. So any single row change
  names its document without a lookup. ``DOCUMENT_TABLES`` declares the key column and children per header.
* ``_F`` and ``_R`` rows are 1:1 with their entry row and share its ``FENTRYID`` (no id of their own).
* Kingdee declares no foreign keys and few NOT NULLs: an empty reference is ``0``, empty text is ``' '`` (one
  space). We do the same and add no CHECK constraints, so bad data can reach the database and the capture
  must cope with it. Only keys are NOT NULL.
* Ids are integers allocated from 100001 per table (an identity column on PostgreSQL; ``next_ids`` allocates
  them for multi-table writes). As in K/3 Cloud, ``T_STK_INVENTORY.FID`` and assistant-data keys are 36-char
  strings instead.
* Dates are ``timestamp without time zone`` holding China local time, as Kingdee stores them.
* ``create_schema`` sets ``REPLICA IDENTITY FULL`` on every table (PostgreSQL), so updates and deletes carry
  the whole before-image, including the document id of a deleted child row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CHAR,
    BigInteger,
    Column,
    Connection,
    DateTime,
    Dialect,
    Engine,
    Identity,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    func,
    inspect,
    select,
    text,
)

from core.china_time import CHINA_TIME

ID_START = 100001
"""First id of every integer-keyed table (K/3 Cloud ids start around 100001)."""

LOCALE_ZH_CN = 2052


def china_now() -> datetime:
    """Now, as Kingdee writes it: China wall-clock time without a zone (Kingdee stores wall-clock China time,
    ``timestamp without time zone``, whatever the server's own zone is)."""
    return datetime.now(CHINA_TIME).replace(tzinfo=None)
"""``FLOCALEID`` of Simplified Chinese texts in ``_L`` tables."""

DOCUMENT_STATUS: dict[str, str] = {
    "Z": "暂存 draft",
    "A": "创建 created",
    "B": "审核中 in review",
    "C": "已审核 audited",
    "D": "重新审核 re-audit",
}
FORBID_STATUS: dict[str, str] = {"A": "启用 enabled", "B": "禁用 disabled"}
CANCEL_STATUS: dict[str, str] = {"A": "未作废 normal", "B": "已作废 voided"}
CLOSE_STATUS: dict[str, str] = {"A": "未关闭 open", "B": "已关闭 closed"}

AMOUNT = Numeric(23, 10)
"""Kingdee stores every amount, price, rate and quantity as decimal(23,10)."""

metadata = MetaData()


# --- column builders ----------------------------------------------------------------------------------------
# Small builders keep the tables below readable as a list of Kingdee column names.


def _pk(name: str) -> Column[Any]:
    """An integer primary key allocated by the database from ``ID_START``."""
    return Column(name, BigInteger, Identity(start=ID_START), primary_key=True, quote=True)


def _shared_pk(name: str) -> Column[Any]:
    """The primary key of a 1:1 split (``_F``, ``_R``): the entry's own ``FENTRYID``, never generated."""
    return Column(name, BigInteger, primary_key=True, autoincrement=False, quote=True)


def _guid_pk(name: str) -> Column[Any]:
    return Column(name, String(36), primary_key=True, quote=True)


def _owner(name: str, type_: type[BigInteger] | String = BigInteger) -> Column[Any]:
    """The document id carried by a child table: a key, so NOT NULL."""
    return Column(name, type_, nullable=False, quote=True)


def _ref(name: str) -> Column[Any]:
    """A reference to another row by id; ``0`` means none, as in Kingdee."""
    return Column(name, BigInteger, server_default=text("0"), quote=True)


def _text(name: str, length: int = 255) -> Column[Any]:
    return Column(name, String(length), server_default=" ", quote=True)


def _number(name: str = "FNUMBER") -> Column[Any]:
    return Column(name, String(80), server_default=" ", quote=True)


def _status(name: str, default: str) -> Column[Any]:
    return Column(name, CHAR(1), server_default=default, quote=True)


def _amount(name: str) -> Column[Any]:
    return Column(name, AMOUNT, server_default=text("0"), quote=True)


def _date(name: str) -> Column[Any]:
    return Column(name, DateTime, quote=True)


def _int(name: str, default: int = 0) -> Column[Any]:
    return Column(name, Integer, server_default=text(str(default)), quote=True)


def _basedata_common() -> list[Column[Any]]:
    """Organisation, status and audit columns of basedata headers (materials, customers, stocks, units)."""
    return [
        _ref("FMASTERID"),
        _ref("FCREATEORGID"),
        _ref("FUSEORGID"),
        _status("FDOCUMENTSTATUS", "A"),
        _status("FFORBIDSTATUS", "A"),
        _ref("FCREATORID"),
        _date("FCREATEDATE"),
        _ref("FMODIFIERID"),
        _date("FMODIFYDATE"),
        _ref("FAPPROVERID"),
        _date("FAPPROVEDATE"),
        _ref("FFORBIDDERID"),
        _date("FFORBIDDATE"),
    ]


def _bill_common() -> list[Column[Any]]:
    """Number, type, status and audit columns of bill headers (orders, outbounds, receipts, invoices)."""
    return [
        _number("FBILLNO"),
        _text("FBILLTYPEID", 36),
        _date("FDATE"),
        _status("FDOCUMENTSTATUS", "A"),
        _status("FCANCELSTATUS", "A"),
        _ref("FCREATORID"),
        _date("FCREATEDATE"),
        _ref("FMODIFIERID"),
        _date("FMODIFYDATE"),
        _ref("FAPPROVERID"),
        _date("FAPPROVEDATE"),
        _ref("FCANCELLERID"),
        _date("FCANCELDATE"),
    ]


def _texts_l(
    owner_table: str, owner_key: str, *columns: str, owner_type: type[BigInteger] | String = BigInteger
) -> Table:
    """A multilingual ``_L`` table: ``FPKID`` key, the owner's id, ``FLOCALEID`` and the texts."""
    pk = _guid_pk("FPKID") if isinstance(owner_type, String) else _pk("FPKID")
    return Table(
        f"{owner_table}_L",
        metadata,
        pk,
        _owner(owner_key, owner_type),
        _int("FLOCALEID", LOCALE_ZH_CN),
        *(_text(c) for c in columns),
        Index(f"IDX_{owner_table}_L_{owner_key}", owner_key),
        quote=True,
    )


# --- basedata -----------------------------------------------------------------------------------------------

T_BD_UNIT = Table(
    "T_BD_UNIT",
    metadata,
    _pk("FUNITID"),
    _number(),
    *_basedata_common(),
    _ref("FUNITGROUPID"),
    _int("FPRECISION"),
    Index("IDX_T_BD_UNIT_FNUMBER", "FNUMBER"),
    quote=True,
)
T_BD_UNIT_L = _texts_l("T_BD_UNIT", "FUNITID", "FNAME")

T_BD_MATERIALGROUP = Table(
    "T_BD_MATERIALGROUP",
    metadata,
    _pk("FID"),
    _number(),
    _ref("FPARENTID"),
    _date("FCREATEDATE"),
    _date("FMODIFYDATE"),
    quote=True,
)
T_BD_MATERIALGROUP_L = _texts_l("T_BD_MATERIALGROUP", "FID", "FNAME", "FDESCRIPTION")

T_BD_STOCK = Table(
    "T_BD_STOCK",
    metadata,
    _pk("FSTOCKID"),
    _number(),
    *_basedata_common(),
    _status("FSTOCKPROPERTY", "1"),  # 1 普通仓库 ordinary warehouse
    Index("IDX_T_BD_STOCK_FNUMBER", "FNUMBER"),
    quote=True,
)
T_BD_STOCK_L = _texts_l("T_BD_STOCK", "FSTOCKID", "FNAME", "FDESCRIPTION")

# 辅助资料 (assistant data): small code lists such as 客户类别 (customer type). Keys are 36-char
# strings in K/3 Cloud; FID is the list (category) an entry belongs to.
T_BAS_ASSISTANTDATAENTRY = Table(
    "T_BAS_ASSISTANTDATAENTRY",
    metadata,
    _guid_pk("FENTRYID"),
    Column("FID", String(36), nullable=False, quote=True),
    _number(),
    _int("FSEQ"),
    _status("FDOCUMENTSTATUS", "A"),
    _status("FFORBIDSTATUS", "A"),
    _date("FCREATEDATE"),
    _date("FMODIFYDATE"),
    quote=True,
)
T_BAS_ASSISTANTDATAENTRY_L = _texts_l(
    "T_BAS_ASSISTANTDATAENTRY", "FENTRYID", "FDATAVALUE", "FDESCRIPTION", owner_type=String(36)
)

T_BD_MATERIAL = Table(
    "T_BD_MATERIAL",
    metadata,
    _pk("FMATERIALID"),
    _number(),
    *_basedata_common(),
    _ref("FMATERIALGROUP"),
    _text("FOLDNUMBER"),
    _text("FMNEMONICCODE"),
    Index("IDX_T_BD_MATERIAL_FNUMBER", "FNUMBER"),
    Index("IDX_T_BD_MATERIAL_FMODIFYDATE", "FMODIFYDATE"),
    quote=True,
)
T_BD_MATERIAL_L = _texts_l("T_BD_MATERIAL", "FMATERIALID", "FNAME", "FSPECIFICATION", "FDESCRIPTION")
# 基本 tab of the material: 1:1 with the material; its base unit lives here, as in K/3 Cloud.
T_BD_MATERIALBASE = Table(
    "T_BD_MATERIALBASE",
    metadata,
    _pk("FENTRYID"),
    _owner("FMATERIALID"),
    _text("FERPCLSID", 20),  # 物料属性: 1 外购 purchased, 2 自制 self-made, 3 委外 subcontracted, …
    _ref("FBASEUNITID"),
    _ref("FCATEGORYID"),
    _status("FISINVENTORY", "1"),
    _status("FISSALE", "1"),
    _text("FBARCODE"),
    Index("IDX_T_BD_MATERIALBASE_FMATERIALID", "FMATERIALID"),
    quote=True,
)

T_BD_CUSTOMER = Table(
    "T_BD_CUSTOMER",
    metadata,
    _pk("FCUSTID"),
    _number(),
    *_basedata_common(),
    _text("FCUSTTYPEID", 36),  # 客户类别: T_BAS_ASSISTANTDATAENTRY.FENTRYID
    _ref("FGROUP"),
    _ref("FSELLER"),
    _ref("FSALDEPTID"),
    _ref("FTRADINGCURRID"),
    _status("FINVOICETYPE", "1"),  # 1 增值税专用发票 VAT special invoice, 2 普通发票 ordinary invoice
    _text("FTEL"),
    _text("FADDRESS"),
    _text("FTAXREGISTERCODE"),
    Index("IDX_T_BD_CUSTOMER_FNUMBER", "FNUMBER"),
    Index("IDX_T_BD_CUSTOMER_FMODIFYDATE", "FMODIFYDATE"),
    quote=True,
)
T_BD_CUSTOMER_L = _texts_l("T_BD_CUSTOMER", "FCUSTID", "FNAME", "FSHORTNAME")

T_BD_LOTMASTER = Table(
    "T_BD_LOTMASTER",
    metadata,
    _pk("FLOTID"),
    _number(),
    _ref("FMATERIALID"),
    _ref("FCREATEORGID"),
    _ref("FUSEORGID"),
    _status("FDOCUMENTSTATUS", "C"),
    _status("FFORBIDSTATUS", "A"),
    _date("FPRODUCEDATE"),
    _date("FEXPIRYDATE"),
    _date("FCREATEDATE"),
    _date("FMODIFYDATE"),
    Index("IDX_T_BD_LOTMASTER_FMATERIALID", "FMATERIALID"),
    quote=True,
)


# --- bills --------------------------------------------------------------------------------------------------


def _entry(name: str, *columns: Column[Any]) -> Table:
    """An entry table: ``FENTRYID`` key, the bill's ``FID`` and the line number ``FSEQ``."""
    return Table(
        name,
        metadata,
        _pk("FENTRYID"),
        _owner("FID"),
        _int("FSEQ"),
        *columns,
        Index(f"IDX_{name}_FID", "FID"),
        quote=True,
    )


def _split(name: str, *columns: Column[Any]) -> Table:
    """A 1:1 split of an entry (``_F`` amounts, ``_R`` progress): keyed by the entry's ``FENTRYID``."""
    return Table(
        name,
        metadata,
        _shared_pk("FENTRYID"),
        _owner("FID"),
        *columns,
        Index(f"IDX_{name}_FID", "FID"),
        quote=True,
    )


def _header_fin(name: str) -> Table:
    """A bill's 财务信息 split: currency and header totals, one row per bill."""
    return Table(
        name,
        metadata,
        _pk("FENTRYID"),
        _owner("FID"),
        _ref("FSETTLECURRID"),
        _amount("FEXCHANGERATE"),
        _status("FISINCLUDEDTAX", "1"),
        _amount("FBILLAMOUNT"),
        _amount("FBILLTAXAMOUNT"),
        _amount("FBILLALLAMOUNT"),
        Index(f"IDX_{name}_FID", "FID"),
        quote=True,
    )


T_SAL_ORDER = Table(
    "T_SAL_ORDER",
    metadata,
    _pk("FID"),
    *_bill_common(),
    _ref("FCUSTID"),
    _ref("FSALEORGID"),
    _ref("FSALEDEPTID"),
    _ref("FSALERID"),
    _ref("FRECEIVEID"),
    _ref("FSETTLEID"),
    _ref("FCHARGEID"),
    _text("FBUSINESSTYPE", 20),
    _status("FCLOSESTATUS", "A"),
    _ref("FCLOSERID"),
    _date("FCLOSEDATE"),
    _text("FNOTE"),
    # An extension field (BOS 扩展) the installation adds for the integration: the CRM order an order came from.
    _text("F_CDC_CRMORDERID", 50),
    Index("IDX_T_SAL_ORDER_FBILLNO", "FBILLNO"),
    Index("IDX_T_SAL_ORDER_FMODIFYDATE", "FMODIFYDATE"),
    quote=True,
)
T_SAL_ORDERFIN = _header_fin("T_SAL_ORDERFIN")
T_SAL_ORDERENTRY = _entry(
    "T_SAL_ORDERENTRY",
    _ref("FMATERIALID"),
    _ref("FUNITID"),
    _amount("FQTY"),
    _ref("FBASEUNITID"),
    _amount("FBASEUNITQTY"),
    _date("FDELIVERYDATE"),
    _status("FMRPCLOSESTATUS", "A"),
    _status("FMRPTERMINATESTATUS", "A"),
    _text("FNOTE"),
)
T_SAL_ORDERENTRY_F = _split(
    "T_SAL_ORDERENTRY_F",
    _amount("FPRICE"),
    _amount("FTAXPRICE"),
    _amount("FTAXRATE"),
    _amount("FDISCOUNTRATE"),
    _amount("FAMOUNT"),
    _amount("FTAXAMOUNT"),
    _amount("FALLAMOUNT"),
)
T_SAL_ORDERENTRY_R = _split(
    "T_SAL_ORDERENTRY_R",
    _amount("FSTOCKOUTQTY"),
    _amount("FREMAINOUTQTY"),
    _amount("FBASESTOCKOUTQTY"),
    _amount("FRETURNQTY"),
)

T_SAL_OUTSTOCK = Table(
    "T_SAL_OUTSTOCK",
    metadata,
    _pk("FID"),
    *_bill_common(),
    _ref("FCUSTOMERID"),
    _ref("FSALEORGID"),
    _ref("FSTOCKORGID"),
    _ref("FSALESMANID"),
    _ref("FDELIVERYDEPTID"),
    _text("FCARRIAGENO"),
    _text("FNOTE"),
    Index("IDX_T_SAL_OUTSTOCK_FBILLNO", "FBILLNO"),
    Index("IDX_T_SAL_OUTSTOCK_FMODIFYDATE", "FMODIFYDATE"),
    quote=True,
)
T_SAL_OUTSTOCKFIN = _header_fin("T_SAL_OUTSTOCKFIN")
T_SAL_OUTSTOCKENTRY = _entry(
    "T_SAL_OUTSTOCKENTRY",
    _ref("FMATERIALID"),
    _ref("FUNITID"),
    _amount("FREALQTY"),
    _ref("FBASEUNITID"),
    _amount("FBASEUNITQTY"),
    _ref("FSTOCKID"),
    _ref("FSTOCKSTATUSID"),
    _ref("FLOT"),
    _text("FLOT_TEXT"),
    _date("FPRODUCEDATE"),
    _date("FEXPIRYDATE"),
    _text("FNOTE"),
)
# The link to the sales order line: FSOORDERNO = T_SAL_ORDER.FBILLNO, FSOENTRYID = T_SAL_ORDERENTRY.FENTRYID.
T_SAL_OUTSTOCKENTRY_R = _split(
    "T_SAL_OUTSTOCKENTRY_R",
    _text("FSRCTYPE", 36),
    _number("FSRCBILLNO"),
    _number("FSOORDERNO"),
    _ref("FSOENTRYID"),
)
T_SAL_OUTSTOCKENTRY_F = _split(
    "T_SAL_OUTSTOCKENTRY_F",
    _amount("FPRICE"),
    _amount("FTAXPRICE"),
    _amount("FTAXRATE"),
    _amount("FAMOUNT"),
    _amount("FTAXAMOUNT"),
    _amount("FALLAMOUNT"),
)

T_AR_RECEIVEBILL = Table(
    "T_AR_RECEIVEBILL",
    metadata,
    _pk("FID"),
    *_bill_common(),
    _text("FCONTACTUNITTYPE", 36),  # form id of the contact unit, e.g. BD_Customer
    _ref("FCONTACTUNIT"),
    _text("FPAYUNITTYPE", 36),
    _ref("FPAYUNIT"),
    _ref("FCURRENCYID"),
    _ref("FSETTLEORGID"),
    _ref("FPAYORGID"),
    _ref("FSALEORGID"),
    _ref("FSALEDEPTID"),
    _amount("FRECEIVEAMOUNTFOR"),
    _amount("FRECEIVEAMOUNT"),
    Index("IDX_T_AR_RECEIVEBILL_FBILLNO", "FBILLNO"),
    Index("IDX_T_AR_RECEIVEBILL_FMODIFYDATE", "FMODIFYDATE"),
    quote=True,
)
T_AR_RECEIVEBILLENTRY = _entry(
    "T_AR_RECEIVEBILLENTRY",
    _ref("FSETTLETYPEID"),
    _ref("FPURPOSEID"),
    _ref("FACCOUNTID"),
    _amount("FRECTOTALAMOUNTFOR"),
    _amount("FREALRECAMOUNTFOR"),
    _amount("FREALRECAMOUNT"),
    _number("FSALEORDERNO"),
    _ref("FSALEORDERID"),
)
T_AR_RECEIVEBILLSRCENTRY = _entry(
    "T_AR_RECEIVEBILLSRCENTRY",
    _text("FSRCBILLTYPEID", 36),  # form id of the source bill, e.g. SAL_SaleOrder
    _number("FSRCBILLNO"),
    _ref("FSRCBILLID"),
    _ref("FSRCROWID"),
    _number("FORDERBILLNO"),
    _amount("FAFTTAXTOTALAMOUNT"),
    _amount("FREALRECAMOUNT"),
)


def _invoice(name: str) -> tuple[Table, Table]:
    """销售发票: 增值税专用发票 (``T_IV_SALESIC``) and 普通发票 (``T_IV_SALESOC``) have the same shape."""
    header = Table(
        name,
        metadata,
        _pk("FID"),
        *_bill_common(),
        _ref("FCUSTOMERID"),
        _ref("FSETTLEORGID"),
        _ref("FSALEORGID"),
        _ref("FCURRENCYID"),
        _text("FINVOICENO", 80),
        _text("FINVOICECODE", 80),
        _amount("FAFTERTOTALTAXFOR"),
        Index(f"IDX_{name}_FBILLNO", "FBILLNO"),
        Index(f"IDX_{name}_FMODIFYDATE", "FMODIFYDATE"),
        quote=True,
    )
    entry = _entry(
        f"{name}ENTRY",
        _ref("FMATERIALID"),
        _ref("FPRICEUNITID"),
        _amount("FPRICEQTY"),
        _amount("FPRICE"),
        _amount("FTAXPRICE"),
        _amount("FTAXRATE"),
        _amount("FAMOUNTFOR"),
        _amount("FALLAMOUNTFOR"),
        _text("FSRCBILLTYPEID", 36),
        _number("FSRCBILLNO"),
        _ref("FSRCROWID"),
    )
    return header, entry


T_IV_SALESIC, T_IV_SALESICENTRY = _invoice("T_IV_SALESIC")
T_IV_SALESOC, T_IV_SALESOCENTRY = _invoice("T_IV_SALESOC")

# 即时库存 (inventory): one row per stock org, keeper, owner, warehouse, location, stock status,
# material and lot. FID is a GUID string.
T_STK_INVENTORY = Table(
    "T_STK_INVENTORY",
    metadata,
    _guid_pk("FID"),
    _ref("FSTOCKORGID"),
    _text("FKEEPERTYPEID", 36),
    _ref("FKEEPERID"),
    _text("FOWNERTYPEID", 36),
    _ref("FOWNERID"),
    _ref("FSTOCKID"),
    _ref("FSTOCKLOCID"),
    _ref("FSTOCKSTATUSID"),
    _ref("FMATERIALID"),
    _ref("FLOT"),
    _ref("FBASEUNITID"),
    _amount("FBASEQTY"),
    _amount("FBASELOCKQTY"),
    _ref("FSTOCKUNITID"),
    _amount("FQTY"),
    _date("FPRODUCEDATE"),
    _date("FEXPIRYDATE"),
    _date("FUPDATETIME"),
    Index("IDX_T_STK_INVENTORY_FMATERIALID", "FMATERIALID"),
    quote=True,
)


# 费用报销单 (ER_ExpReimbursement, entry FEntity). Added for the WebAPI simulator. Confidence [L]: the reference
# only says such tables exist; these names and columns are our assumption (K/3 Cloud naming habits), so a
# connector must not rely on them without making them configurable.
T_ER_EXPREIMBURSE = Table(
    "T_ER_EXPREIMBURSE",
    metadata,
    _pk("FID"),
    *_bill_common(),
    _ref("FPROPOSERID"),  # 申请人
    _ref("FREQUESTDEPTID"),  # 申请部门
    _ref("FORGID"),  # 申请组织
    _ref("FEXPENSEORGID"),  # 费用承担组织
    _ref("FEXPENSEDEPTID"),  # 费用承担部门
    _ref("FCURRENCYID"),
    _text("FCONTACTUNITTYPE", 36),  # form id of the payee, e.g. BD_Empinfo
    _ref("FCONTACTUNIT"),
    _text("FCAUSA"),  # 事由 purpose
    _text("FSOURCEBILLNO", 80),  # id of the report in the source system (e.g. 汇联易)
    _amount("FREQAMOUNTSUM"),  # 申请报销金额
    _amount("FEXPAMOUNTSUM"),  # 核定报销金额
    Index("IDX_T_ER_EXPREIMBURSE_FBILLNO", "FBILLNO"),
    Index("IDX_T_ER_EXPREIMBURSE_FMODIFYDATE", "FMODIFYDATE"),
    quote=True,
)
T_ER_EXPREIMBURSEENTRY = _entry(
    "T_ER_EXPREIMBURSEENTRY",
    _ref("FEXPID"),  # 费用项目
    _date("FOCCURDATE"),
    _amount("FREQAMOUNT"),
    _amount("FEXPAMOUNT"),
    _amount("FTAXRATE"),
    _amount("FTAXAMOUNT"),
    _text("FINVOICETYPE", 20),
    _text("FREMARK"),
)


# 用户 (SEC_User): the people who create, modify and audit bills (FCREATORID, FMODIFIERID, FAPPROVERID name them).
# User ids are given by Kingdee's user management, not allocated here.
T_SEC_USER = Table(
    "T_SEC_USER",
    metadata,
    Column("FUSERID", BigInteger, primary_key=True, autoincrement=False, quote=True),
    _text("FNAME"),
    _text("FUSERACCOUNT", 80),
    _status("FFORBIDSTATUS", "A"),
    _date("FMODIFYDATE"),
    quote=True,
)


# --- which tables carry which document id -------------------------------------------------------------------


@dataclass(frozen=True)
class DocumentTables:
    """The tables of one Kingdee document: a header plus children that carry the header's key column.

    This is the schema's grouping, used to write and delete whole documents; how the capture assembles
    documents (merging splits into entries, lists, references) is declared in ``documents.py``.
    """

    header: str
    key: str
    children: tuple[str, ...] = ()

    @property
    def tables(self) -> tuple[str, ...]:
        return (self.header, *self.children)


DOCUMENT_TABLES: dict[str, DocumentTables] = {
    d.header: d
    for d in (
        DocumentTables("T_BD_UNIT", "FUNITID", ("T_BD_UNIT_L",)),
        DocumentTables("T_BD_MATERIALGROUP", "FID", ("T_BD_MATERIALGROUP_L",)),
        DocumentTables("T_BD_STOCK", "FSTOCKID", ("T_BD_STOCK_L",)),
        DocumentTables("T_BAS_ASSISTANTDATAENTRY", "FENTRYID", ("T_BAS_ASSISTANTDATAENTRY_L",)),
        DocumentTables("T_BD_MATERIAL", "FMATERIALID", ("T_BD_MATERIAL_L", "T_BD_MATERIALBASE")),
        DocumentTables("T_BD_CUSTOMER", "FCUSTID", ("T_BD_CUSTOMER_L",)),
        DocumentTables("T_BD_LOTMASTER", "FLOTID"),
        DocumentTables(
            "T_SAL_ORDER",
            "FID",
            ("T_SAL_ORDERFIN", "T_SAL_ORDERENTRY", "T_SAL_ORDERENTRY_F", "T_SAL_ORDERENTRY_R"),
        ),
        DocumentTables(
            "T_SAL_OUTSTOCK",
            "FID",
            ("T_SAL_OUTSTOCKFIN", "T_SAL_OUTSTOCKENTRY", "T_SAL_OUTSTOCKENTRY_R", "T_SAL_OUTSTOCKENTRY_F"),
        ),
        DocumentTables("T_AR_RECEIVEBILL", "FID", ("T_AR_RECEIVEBILLENTRY", "T_AR_RECEIVEBILLSRCENTRY")),
        DocumentTables("T_IV_SALESIC", "FID", ("T_IV_SALESICENTRY",)),
        DocumentTables("T_IV_SALESOC", "FID", ("T_IV_SALESOCENTRY",)),
        DocumentTables("T_STK_INVENTORY", "FID"),
        DocumentTables("T_ER_EXPREIMBURSE", "FID", ("T_ER_EXPREIMBURSEENTRY",)),
        DocumentTables("T_SEC_USER", "FUSERID"),
    )
}

CAPTURED_TABLES: tuple[str, ...] = tuple(t for d in DOCUMENT_TABLES.values() for t in d.tables)
"""Every Kingdee table, headers before their children: all of them are captured."""

TABLES: dict[str, Table] = {name: metadata.tables[name] for name in CAPTURED_TABLES}


# --- schema and ids -----------------------------------------------------------------------------------------


def _table(table: Table | str) -> Table:
    return table if isinstance(table, Table) else TABLES[table]


def _integer_pk(table: Table) -> Column[Any]:
    (pk,) = table.primary_key.columns
    if not isinstance(pk.type, BigInteger):
        raise ValueError(f"{table.name} has a string key; ids are GUIDs there, not allocated numbers")
    return pk


def create_schema(engine: Engine, tables: Iterable[str] | None = None) -> None:
    """Create the Kingdee tables that do not exist yet; on PostgreSQL set ``REPLICA IDENTITY FULL`` on each.

    Idempotent. Other dialects (SQLite in unit tests) get the same tables without the replica identity.
    """
    chosen = [TABLES[name] for name in (tables or CAPTURED_TABLES)]
    with engine.begin() as conn:
        metadata.create_all(conn, tables=chosen, checkfirst=True)
        _add_missing_columns(conn, chosen)
        for statement in replica_identity_sql(conn.dialect, chosen):
            conn.execute(text(statement))


def _add_missing_columns(conn: Connection, tables: Iterable[Table]) -> None:
    """Columns declared since a database was made (extension fields such as ``F_CDC_CRMORDERID``) are added, as a
    Kingdee extension (BOS 扩展) adds them to an installation's tables."""
    prep = conn.dialect.identifier_preparer
    for table in tables:
        have = {c["name"] for c in inspect(conn).get_columns(table.name)}
        for column in table.columns:
            if column.name in have:
                continue
            default = column.server_default.arg if column.server_default is not None else None  # type: ignore[attr-defined]
            conn.execute(text(
                f"ALTER TABLE {prep.format_table(table)} ADD COLUMN {prep.format_column(column)} "
                f"{column.type.compile(conn.dialect)}" + (f" DEFAULT '{default}'" if isinstance(default, str) else "")))


def replica_identity_sql(dialect: Dialect, tables: Iterable[Table] | None = None) -> list[str]:
    """``ALTER TABLE "T_…" REPLICA IDENTITY FULL`` for each table on PostgreSQL; nothing on other dialects."""
    if dialect.name != "postgresql":
        return []
    prep = dialect.identifier_preparer
    return [f"ALTER TABLE {prep.format_table(t)} REPLICA IDENTITY FULL" for t in (tables or TABLES.values())]


def drop_schema(engine: Engine) -> None:
    """Drop every Kingdee table (tests and ``reset`` of a scratch database only)."""
    with engine.begin() as conn:
        metadata.drop_all(conn, tables=list(TABLES.values()), checkfirst=True)


def next_ids(conn: Connection, table: Table | str, n: int) -> list[int]:
    """Allocate ``n`` new ids of ``table``'s integer key, ascending, for writes that need ids up front.

    On PostgreSQL they come from the identity sequence, so they never collide with rows inserted without an
    id (by another session or the WebAPI simulator). Elsewhere (SQLite in unit tests) they continue from the
    largest id in the table and from what this connection allocated before: single-writer only.
    """
    table = _table(table)
    pk = _integer_pk(table)
    if n <= 0:
        return []
    if conn.dialect.name == "postgresql":
        qualified = conn.dialect.identifier_preparer.format_table(table)
        rows = conn.execute(
            text("SELECT nextval(pg_get_serial_sequence(:t, :c)) FROM generate_series(1, :n)"),
            {"t": qualified, "c": pk.name, "n": n},
        )
        return sorted(int(r[0]) for r in rows)
    allocated: dict[str, int] = conn.info.setdefault("kingdee_next_ids", {})
    in_table = conn.execute(select(func.max(pk))).scalar() or 0
    start = max(int(in_table) + 1, allocated.get(table.name, 0), ID_START)
    allocated[table.name] = start + n
    return list(range(start, start + n))


def restart_ids(conn: Connection) -> None:
    """Restart every integer key at ``ID_START`` (after emptying the tables, for repeatable demo ids)."""
    if conn.dialect.name == "postgresql":
        prep = conn.dialect.identifier_preparer
        for table in TABLES.values():
            (pk,) = table.primary_key.columns
            if isinstance(pk.type, BigInteger) and pk.identity is not None:
                conn.execute(
                    text("SELECT setval(pg_get_serial_sequence(:t, :c), :start, false)"),
                    {"t": prep.format_table(table), "c": pk.name, "start": ID_START},
                )
    conn.info.pop("kingdee_next_ids", None)
