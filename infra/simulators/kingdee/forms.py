"""The business objects the simulator serves, declared as data: form id → tables, field keys → columns.

A field key is what WebAPI clients write (``FCustId``, ``FQty``, ``FSaleOrderEntry``); keys are matched
case-insensitively, as on the real server. Each field says which table and column hold it and of which kind it is:

``text``, ``amount`` (decimal), ``int``, ``date``, ``status`` (one letter), ``lang`` (zh-CN text in the ``_L``
table), ``ref`` (basedata: ``{"FNumber": ..}`` resolved in the target's table), ``org`` (an organisation: the one
demo organisation), ``id`` (a reference to something without a table here: a plain id, kept as given),
``billtype`` (单据类型 by number, ``BILL_TYPES``, stored as its id).

Which fields K/3 Cloud really has on each form is [H] for the common ones (number, date, customer, material,
quantity, status) and [M] for the rest; ``ER_ExpReimbursement`` is [L] throughout (see ``models.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from infra.simulators.kingdee.erp.company import BILL_TYPE_OUTSTOCK, BILL_TYPE_RECEIPT, BILL_TYPE_SALES_ORDER

KINDS = frozenset({"text", "amount", "int", "date", "status", "lang", "ref", "org", "id", "billtype"})
#: 单据类型 by number (what a Save sends, ``{"FNumber": "XSDD01_SYS"}``) → the id Kingdee stores.
BILL_TYPES = {"XSDD01_SYS": BILL_TYPE_SALES_ORDER, "XSCKD01_SYS": BILL_TYPE_OUTSTOCK, "SKDLX01_SYS": BILL_TYPE_RECEIPT}


@dataclass(frozen=True)
class RefTarget:
    """A basedata table a ``ref`` field points at, looked up by number."""

    form_id: str
    table: str
    key: str
    number: str = "FNUMBER"
    lang_table: str | None = None
    name_column: str = "FNAME"


REF_TARGETS: dict[str, RefTarget] = {
    t.form_id: t
    for t in (
        RefTarget("BD_MATERIAL", "T_BD_MATERIAL", "FMATERIALID", lang_table="T_BD_MATERIAL_L"),
        RefTarget("BD_Customer", "T_BD_CUSTOMER", "FCUSTID", lang_table="T_BD_CUSTOMER_L"),
        RefTarget("BD_UNIT", "T_BD_UNIT", "FUNITID", lang_table="T_BD_UNIT_L"),
        RefTarget("BD_STOCK", "T_BD_STOCK", "FSTOCKID", lang_table="T_BD_STOCK_L"),
        RefTarget("BD_MaterialGroup", "T_BD_MATERIALGROUP", "FID", lang_table="T_BD_MATERIALGROUP_L"),
        RefTarget("BD_LotMaster", "T_BD_LOTMASTER", "FLOTID"),
        RefTarget(
            "BOS_ASSISTANTDATA_DETAIL",
            "T_BAS_ASSISTANTDATAENTRY",
            "FENTRYID",
            lang_table="T_BAS_ASSISTANTDATAENTRY_L",
            name_column="FDATAVALUE",
        ),
    )
}


@dataclass(frozen=True)
class FieldDef:
    key: str
    table: str
    column: str
    kind: str = "text"
    caption: str = ""
    ref: str | None = None
    required: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.key}: unknown kind {self.kind}")
        if (self.kind == "ref") != (self.ref is not None):
            raise ValueError(f"{self.key}: a ref field names its target, and only a ref field does")

    @property
    def label(self) -> str:
        return self.caption or self.key


@dataclass(frozen=True)
class Part:
    """A 1:1 table of the header (``_L`` texts, ``T_BD_MATERIALBASE``, ``…FIN``): own id, carries the header key."""

    table: str
    pk: str
    fixed: tuple[tuple[str, object], ...] = ()


@dataclass(frozen=True)
class EntryDef:
    key: str  # FSaleOrderEntry, FEntity
    table: str
    splits: tuple[str, ...] = ()  # 1:1 with the entry row, keyed by its FENTRYID

    @property
    def tables(self) -> tuple[str, ...]:
        return (self.table, *self.splits)


@dataclass(frozen=True)
class FormDef:
    form_id: str
    caption: str
    header: str
    key: str
    number_column: str  # FNUMBER or FBILLNO
    fields: tuple[FieldDef, ...]
    parts: tuple[Part, ...] = ()
    entry: EntryDef | None = None
    basedata: bool = False
    query_only: bool = False
    bill_type: str = " "
    bill_prefix: tuple[str, int] | None = None
    entry_required: bool = False
    _by_key: dict[str, FieldDef] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_key.update({f.key.lower(): f for f in self.fields})

    @property
    def number_key(self) -> str:
        return "FBillNo" if self.number_column == "FBILLNO" else "FNumber"

    @property
    def lang_table(self) -> str | None:
        return next((p.table for p in self.parts if p.table.endswith("_L")), None)

    def field(self, key: str) -> FieldDef | None:
        return self._by_key.get(key.lower())

    def is_entry_field(self, f: FieldDef) -> bool:
        return self.entry is not None and f.table in self.entry.tables

    def header_fields(self) -> list[FieldDef]:
        return [f for f in self.fields if not self.is_entry_field(f)]

    def entry_fields(self) -> list[FieldDef]:
        return [f for f in self.fields if self.is_entry_field(f)]


def _f(key: str, table: str, column: str, kind: str = "text", caption: str = "", **kw: object) -> FieldDef:
    return FieldDef(key, table, column, kind, caption, **kw)  # type: ignore[arg-type]


def _bill_header(t: str) -> tuple[FieldDef, ...]:
    """Number, date, statuses and audit fields every bill has."""
    return (
        _f("FID", t, "FID", "int", "实体主键"),
        _f("FBillNo", t, "FBILLNO", "text", "单据编号"),
        _f("FBillTypeID", t, "FBILLTYPEID", "billtype", "单据类型"),
        _f("FDate", t, "FDATE", "date", "日期"),
        _f("FDocumentStatus", t, "FDOCUMENTSTATUS", "status", "单据状态"),
        _f("FCancelStatus", t, "FCANCELSTATUS", "status", "作废状态"),
        _f("FCreatorId", t, "FCREATORID", "id", "创建人"),
        _f("FCreateDate", t, "FCREATEDATE", "date", "创建日期"),
        _f("FModifierId", t, "FMODIFIERID", "id", "修改人"),
        _f("FModifyDate", t, "FMODIFYDATE", "date", "修改日期"),
        _f("FApproverId", t, "FAPPROVERID", "id", "审核人"),
        _f("FApproveDate", t, "FAPPROVEDATE", "date", "审核日期"),
        _f("FCancellerId", t, "FCANCELLERID", "id", "作废人"),
        _f("FCancelDate", t, "FCANCELDATE", "date", "作废日期"),
    )


def _basedata_header(t: str, key: str, key_field: str) -> tuple[FieldDef, ...]:
    return (
        _f(key_field, t, key, "int", "实体主键"),
        _f("FNumber", t, "FNUMBER", "text", "编码"),
        _f("FMasterId", t, "FMASTERID", "int", "主档ID"),
        _f("FCreateOrgId", t, "FCREATEORGID", "org", "创建组织"),
        _f("FUseOrgId", t, "FUSEORGID", "org", "使用组织"),
        _f("FDocumentStatus", t, "FDOCUMENTSTATUS", "status", "数据状态"),
        _f("FForbidStatus", t, "FFORBIDSTATUS", "status", "禁用状态"),
        _f("FCreatorId", t, "FCREATORID", "id", "创建人"),
        _f("FCreateDate", t, "FCREATEDATE", "date", "创建日期"),
        _f("FModifierId", t, "FMODIFIERID", "id", "修改人"),
        _f("FModifyDate", t, "FMODIFYDATE", "date", "修改日期"),
        _f("FApproverId", t, "FAPPROVERID", "id", "审核人"),
        _f("FApproveDate", t, "FAPPROVEDATE", "date", "审核日期"),
        _f("FForbidderId", t, "FFORBIDDERID", "id", "禁用人"),
        _f("FForbidDate", t, "FFORBIDDATE", "date", "禁用日期"),
    )


def _lang_part(table: str) -> Part:
    return Part(f"{table}_L", "FPKID", (("FLOCALEID", 2052),))


# --- basedata -----------------------------------------------------------------------------------------------

_M, _ML, _MB = "T_BD_MATERIAL", "T_BD_MATERIAL_L", "T_BD_MATERIALBASE"
BD_MATERIAL = FormDef(
    "BD_MATERIAL",
    "物料",
    _M,
    "FMATERIALID",
    "FNUMBER",
    fields=(
        *_basedata_header(_M, "FMATERIALID", "FMaterialId"),
        _f("FName", _ML, "FNAME", "lang", "名称", required=True),
        _f("FSpecification", _ML, "FSPECIFICATION", "lang", "规格型号"),
        _f("FDescription", _ML, "FDESCRIPTION", "lang", "描述"),
        _f("FMaterialGroup", _M, "FMATERIALGROUP", "ref", "物料分组", ref="BD_MaterialGroup"),
        _f("FOldNumber", _M, "FOLDNUMBER", "text", "旧物料编码"),
        _f("FMnemonicCode", _M, "FMNEMONICCODE", "text", "助记码"),
        _f("FErpClsID", _MB, "FERPCLSID", "text", "物料属性"),
        _f("FBaseUnitId", _MB, "FBASEUNITID", "ref", "基本单位", ref="BD_UNIT"),
        _f("FCategoryID", _MB, "FCATEGORYID", "id", "存货类别"),
        _f("FIsInventory", _MB, "FISINVENTORY", "status", "允许库存"),
        _f("FIsSale", _MB, "FISSALE", "status", "允许销售"),
        _f("FBarCode", _MB, "FBARCODE", "text", "条码"),
    ),
    parts=(_lang_part(_M), Part(_MB, "FENTRYID", (("FERPCLSID", "1"),))),
    basedata=True,
)

_C, _CL = "T_BD_CUSTOMER", "T_BD_CUSTOMER_L"
BD_CUSTOMER = FormDef(
    "BD_Customer",
    "客户",
    _C,
    "FCUSTID",
    "FNUMBER",
    fields=(
        *_basedata_header(_C, "FCUSTID", "FCUSTID"),
        _f("FName", _CL, "FNAME", "lang", "客户名称", required=True),
        _f("FShortName", _CL, "FSHORTNAME", "lang", "简称"),
        _f("FCustTypeId", _C, "FCUSTTYPEID", "ref", "客户类别", ref="BOS_ASSISTANTDATA_DETAIL"),
        _f("FGroup", _C, "FGROUP", "id", "客户分组"),
        _f("FSeller", _C, "FSELLER", "id", "销售员"),
        _f("FSalDeptId", _C, "FSALDEPTID", "id", "销售部门"),
        _f("FTradingCurrId", _C, "FTRADINGCURRID", "id", "结算币别"),
        _f("FInvoiceType", _C, "FINVOICETYPE", "text", "发票类型"),
        _f("FTEL", _C, "FTEL", "text", "联系电话"),
        _f("FADDRESS", _C, "FADDRESS", "text", "通讯地址"),
        _f("FTaxRegisterCode", _C, "FTAXREGISTERCODE", "text", "纳税登记号"),
    ),
    parts=(_lang_part(_C),),
    basedata=True,
)

# --- sales ---------------------------------------------------------------------------------------------------

_SO, _SOF, _SOE, _SOEF, _SOER = (
    "T_SAL_ORDER", "T_SAL_ORDERFIN", "T_SAL_ORDERENTRY", "T_SAL_ORDERENTRY_F", "T_SAL_ORDERENTRY_R",
)  # fmt: skip
SAL_SALEORDER = FormDef(
    "SAL_SaleOrder",
    "销售订单",
    _SO,
    "FID",
    "FBILLNO",
    fields=(
        *_bill_header(_SO),
        _f("FCustId", _SO, "FCUSTID", "ref", "客户", ref="BD_Customer", required=True),
        _f("FSaleOrgId", _SO, "FSALEORGID", "org", "销售组织"),
        _f("FSaleDeptId", _SO, "FSALEDEPTID", "id", "销售部门"),
        _f("FSalerId", _SO, "FSALERID", "id", "销售员"),
        _f("FReceiveId", _SO, "FRECEIVEID", "ref", "收货方", ref="BD_Customer"),
        _f("FSettleId", _SO, "FSETTLEID", "ref", "结算方", ref="BD_Customer"),
        _f("FChargeId", _SO, "FCHARGEID", "ref", "付款方", ref="BD_Customer"),
        _f("FBusinessType", _SO, "FBUSINESSTYPE", "text", "业务类型"),
        _f("FCloseStatus", _SO, "FCLOSESTATUS", "status", "关闭状态"),
        _f("FCloserId", _SO, "FCLOSERID", "id", "关闭人"),
        _f("FCloseDate", _SO, "FCLOSEDATE", "date", "关闭日期"),
        _f("FNote", _SO, "FNOTE", "text", "备注"),
        _f("F_CDC_CRMOrderId", _SO, "F_CDC_CRMORDERID", "text", "CRM订单ID"),
        _f("FSettleCurrId", _SOF, "FSETTLECURRID", "id", "结算币别"),
        _f("FExchangeRate", _SOF, "FEXCHANGERATE", "amount", "汇率"),
        _f("FIsIncludedTax", _SOF, "FISINCLUDEDTAX", "status", "是否含税"),
        _f("FBillAmount", _SOF, "FBILLAMOUNT", "amount", "金额"),
        _f("FBillTaxAmount", _SOF, "FBILLTAXAMOUNT", "amount", "税额"),
        _f("FBillAllAmount", _SOF, "FBILLALLAMOUNT", "amount", "价税合计"),
        _f("FMaterialId", _SOE, "FMATERIALID", "ref", "物料编码", ref="BD_MATERIAL", required=True),
        _f("FUnitID", _SOE, "FUNITID", "ref", "销售单位", ref="BD_UNIT"),
        _f("FQty", _SOE, "FQTY", "amount", "销售数量", required=True),
        _f("FBaseUnitId", _SOE, "FBASEUNITID", "ref", "基本单位", ref="BD_UNIT"),
        _f("FBaseUnitQty", _SOE, "FBASEUNITQTY", "amount", "基本单位数量"),
        _f("FDeliveryDate", _SOE, "FDELIVERYDATE", "date", "要货日期"),
        _f("FMrpCloseStatus", _SOE, "FMRPCLOSESTATUS", "status", "业务关闭"),
        _f("FMrpTerminateStatus", _SOE, "FMRPTERMINATESTATUS", "status", "业务终止"),
        _f("FEntryNote", _SOE, "FNOTE", "text", "备注"),
        _f("FPrice", _SOEF, "FPRICE", "amount", "单价"),
        _f("FTaxPrice", _SOEF, "FTAXPRICE", "amount", "含税单价"),
        _f("FEntryTaxRate", _SOEF, "FTAXRATE", "amount", "税率%"),
        _f("FDiscountRate", _SOEF, "FDISCOUNTRATE", "amount", "折扣率%"),
        _f("FAmount", _SOEF, "FAMOUNT", "amount", "金额"),
        _f("FEntryTaxAmount", _SOEF, "FTAXAMOUNT", "amount", "税额"),
        _f("FAllAmount", _SOEF, "FALLAMOUNT", "amount", "价税合计"),
        _f("FStockOutQty", _SOER, "FSTOCKOUTQTY", "amount", "累计出库数量"),
        _f("FRemainOutQty", _SOER, "FREMAINOUTQTY", "amount", "剩余未出数量"),
        _f("FBaseStockOutQty", _SOER, "FBASESTOCKOUTQTY", "amount", "累计出库数量(基本单位)"),
        _f("FReturnQty", _SOER, "FRETURNQTY", "amount", "累计退货数量"),
    ),
    parts=(Part(_SOF, "FENTRYID", (("FSETTLECURRID", 1), ("FEXCHANGERATE", 1))),),
    entry=EntryDef("FSaleOrderEntry", _SOE, (_SOEF, _SOER)),
    bill_type=BILL_TYPE_SALES_ORDER,
    entry_required=True,
)

_OS, _OSF, _OSE, _OSER, _OSEF = (
    "T_SAL_OUTSTOCK", "T_SAL_OUTSTOCKFIN", "T_SAL_OUTSTOCKENTRY", "T_SAL_OUTSTOCKENTRY_R", "T_SAL_OUTSTOCKENTRY_F",
)  # fmt: skip
SAL_OUTSTOCK = FormDef(
    "SAL_OUTSTOCK",
    "销售出库单",
    _OS,
    "FID",
    "FBILLNO",
    fields=(
        *_bill_header(_OS),
        _f("FCustomerID", _OS, "FCUSTOMERID", "ref", "客户", ref="BD_Customer", required=True),
        _f("FSaleOrgId", _OS, "FSALEORGID", "org", "销售组织"),
        _f("FStockOrgId", _OS, "FSTOCKORGID", "org", "发货组织"),
        _f("FSalesManID", _OS, "FSALESMANID", "id", "销售员"),
        _f("FDeliveryDeptID", _OS, "FDELIVERYDEPTID", "id", "发货部门"),
        _f("FCarriageNO", _OS, "FCARRIAGENO", "text", "运输单号"),
        _f("FNote", _OS, "FNOTE", "text", "备注"),
        _f("FSettleCurrID", _OSF, "FSETTLECURRID", "id", "结算币别"),
        _f("FExchangeRate", _OSF, "FEXCHANGERATE", "amount", "汇率"),
        _f("FIsIncludedTax", _OSF, "FISINCLUDEDTAX", "status", "是否含税"),
        _f("FBillAmount", _OSF, "FBILLAMOUNT", "amount", "金额"),
        _f("FBillTaxAmount", _OSF, "FBILLTAXAMOUNT", "amount", "税额"),
        _f("FBillAllAmount", _OSF, "FBILLALLAMOUNT", "amount", "价税合计"),
        _f("FMaterialID", _OSE, "FMATERIALID", "ref", "物料编码", ref="BD_MATERIAL", required=True),
        _f("FUnitID", _OSE, "FUNITID", "ref", "库存单位", ref="BD_UNIT"),
        _f("FRealQty", _OSE, "FREALQTY", "amount", "实发数量", required=True),
        _f("FBaseUnitID", _OSE, "FBASEUNITID", "ref", "基本单位", ref="BD_UNIT"),
        _f("FBaseUnitQty", _OSE, "FBASEUNITQTY", "amount", "基本单位数量"),
        _f("FStockID", _OSE, "FSTOCKID", "ref", "仓库", ref="BD_STOCK"),
        _f("FStockStatusID", _OSE, "FSTOCKSTATUSID", "id", "库存状态"),
        _f("FLot", _OSE, "FLOT_TEXT", "text", "批号"),
        _f("FProduceDate", _OSE, "FPRODUCEDATE", "date", "生产日期"),
        _f("FExpiryDate", _OSE, "FEXPIRYDATE", "date", "有效期至"),
        _f("FEntrynote", _OSE, "FNOTE", "text", "备注"),
        _f("FSrcType", _OSER, "FSRCTYPE", "text", "源单类型"),
        _f("FSrcBillNo", _OSER, "FSRCBILLNO", "text", "源单编号"),
        _f("FSoorDerno", _OSER, "FSOORDERNO", "text", "订单单号"),
        _f("FSOEntryId", _OSER, "FSOENTRYID", "int", "销售订单EntryId"),
        _f("FPrice", _OSEF, "FPRICE", "amount", "单价"),
        _f("FTaxPrice", _OSEF, "FTAXPRICE", "amount", "含税单价"),
        _f("FEntryTaxRate", _OSEF, "FTAXRATE", "amount", "税率%"),
        _f("FAmount", _OSEF, "FAMOUNT", "amount", "金额"),
        _f("FEntryTaxAmount", _OSEF, "FTAXAMOUNT", "amount", "税额"),
        _f("FAllAmount", _OSEF, "FALLAMOUNT", "amount", "价税合计"),
    ),
    parts=(Part(_OSF, "FENTRYID", (("FSETTLECURRID", 1), ("FEXCHANGERATE", 1))),),
    entry=EntryDef("FEntity", _OSE, (_OSER, _OSEF)),
    bill_type=BILL_TYPE_OUTSTOCK,
    entry_required=True,
)

# --- finance -------------------------------------------------------------------------------------------------

_RB, _RBE = "T_AR_RECEIVEBILL", "T_AR_RECEIVEBILLENTRY"
AR_RECEIVEBILL = FormDef(
    "AR_RECEIVEBILL",
    "收款单",
    _RB,
    "FID",
    "FBILLNO",
    fields=(
        *_bill_header(_RB),
        _f("FCONTACTUNITTYPE", _RB, "FCONTACTUNITTYPE", "text", "往来单位类型"),
        _f("FCONTACTUNIT", _RB, "FCONTACTUNIT", "ref", "往来单位", ref="BD_Customer", required=True),
        _f("FPAYUNITTYPE", _RB, "FPAYUNITTYPE", "text", "付款单位类型"),
        _f("FPAYUNIT", _RB, "FPAYUNIT", "ref", "付款单位", ref="BD_Customer"),
        _f("FCURRENCYID", _RB, "FCURRENCYID", "id", "币别"),
        _f("FSETTLEORGID", _RB, "FSETTLEORGID", "org", "结算组织"),
        _f("FPAYORGID", _RB, "FPAYORGID", "org", "收款组织"),
        _f("FSALEORGID", _RB, "FSALEORGID", "org", "销售组织"),
        _f("FSALEDEPTID", _RB, "FSALEDEPTID", "id", "销售部门"),
        _f("FRECEIVEAMOUNTFOR", _RB, "FRECEIVEAMOUNTFOR", "amount", "收款金额"),
        _f("FRECEIVEAMOUNT", _RB, "FRECEIVEAMOUNT", "amount", "收款金额本位币"),
        _f("FSETTLETYPEID", _RBE, "FSETTLETYPEID", "id", "结算方式"),
        _f("FPURPOSEID", _RBE, "FPURPOSEID", "id", "收款用途"),
        _f("FACCOUNTID", _RBE, "FACCOUNTID", "id", "我方银行账号"),
        _f("FRECTOTALAMOUNTFOR", _RBE, "FRECTOTALAMOUNTFOR", "amount", "应收金额"),
        _f("FREALRECAMOUNTFOR", _RBE, "FREALRECAMOUNTFOR", "amount", "实收金额", required=True),
        _f("FREALRECAMOUNT", _RBE, "FREALRECAMOUNT", "amount", "实收金额本位币"),
        _f("FSALEORDERNO", _RBE, "FSALEORDERNO", "text", "销售订单号"),
        _f("FSALEORDERID", _RBE, "FSALEORDERID", "int", "销售订单内码"),
    ),
    entry=EntryDef("FRECEIVEBILLENTRY", _RBE),
    bill_type=BILL_TYPE_RECEIPT,
    entry_required=True,
)


def _invoice(form_id: str, caption: str, header: str) -> FormDef:
    entry = f"{header}ENTRY"
    return FormDef(
        form_id,
        caption,
        header,
        "FID",
        "FBILLNO",
        fields=(
            *_bill_header(header),
            _f("FCUSTOMERID", header, "FCUSTOMERID", "ref", "客户", ref="BD_Customer", required=True),
            _f("FSETTLEORGID", header, "FSETTLEORGID", "org", "结算组织"),
            _f("FSALEORGID", header, "FSALEORGID", "org", "销售组织"),
            _f("FCURRENCYID", header, "FCURRENCYID", "id", "币别"),
            _f("FINVOICENO", header, "FINVOICENO", "text", "发票号"),
            _f("FINVOICECODE", header, "FINVOICECODE", "text", "发票代码"),
            _f("FAFTERTOTALTAXFOR", header, "FAFTERTOTALTAXFOR", "amount", "价税合计"),
            _f("FMATERIALID", entry, "FMATERIALID", "ref", "物料编码", ref="BD_MATERIAL", required=True),
            _f("FPRICEUNITID", entry, "FPRICEUNITID", "ref", "计价单位", ref="BD_UNIT"),
            _f("FPRICEQTY", entry, "FPRICEQTY", "amount", "计价数量", required=True),
            _f("FPRICE", entry, "FPRICE", "amount", "单价"),
            _f("FTAXPRICE", entry, "FTAXPRICE", "amount", "含税单价"),
            _f("FENTRYTAXRATE", entry, "FTAXRATE", "amount", "税率%"),
            _f("FAMOUNTFOR", entry, "FAMOUNTFOR", "amount", "不含税金额"),
            _f("FALLAMOUNTFOR", entry, "FALLAMOUNTFOR", "amount", "价税合计"),
            _f("FSRCBILLTYPEID", entry, "FSRCBILLTYPEID", "text", "源单类型"),
            _f("FSRCBILLNO", entry, "FSRCBILLNO", "text", "源单编号"),
            _f("FSRCROWID", entry, "FSRCROWID", "int", "源单行内码"),
        ),
        entry=EntryDef(f"F{form_id.split('_')[1]}ENTRY", entry),
        entry_required=True,
    )


IV_SALESIC = _invoice("IV_SALESIC", "销售增值税专用发票", "T_IV_SALESIC")
IV_SALESOC = _invoice("IV_SALESOC", "销售普通发票", "T_IV_SALESOC")

_ER, _ERE = "T_ER_EXPREIMBURSE", "T_ER_EXPREIMBURSEENTRY"
ER_EXPREIMBURSEMENT = FormDef(
    "ER_ExpReimbursement",
    "费用报销单",
    _ER,
    "FID",
    "FBILLNO",
    fields=(
        *_bill_header(_ER),
        _f("FProposerID", _ER, "FPROPOSERID", "id", "申请人", required=True),
        _f("FRequestDeptID", _ER, "FREQUESTDEPTID", "id", "申请部门"),
        _f("FOrgID", _ER, "FORGID", "org", "申请组织"),
        _f("FExpenseOrgId", _ER, "FEXPENSEORGID", "org", "费用承担组织"),
        _f("FExpenseDeptID", _ER, "FEXPENSEDEPTID", "id", "费用承担部门"),
        _f("FCurrencyID", _ER, "FCURRENCYID", "id", "币别"),
        _f("FContactUnitType", _ER, "FCONTACTUNITTYPE", "text", "往来单位类型"),
        _f("FContactUnit", _ER, "FCONTACTUNIT", "id", "往来单位"),
        _f("FCausa", _ER, "FCAUSA", "text", "事由"),
        _f("FSourceBillNo", _ER, "FSOURCEBILLNO", "text", "来源单号"),
        _f("FReqAmountSum", _ER, "FREQAMOUNTSUM", "amount", "申请报销金额汇总"),
        _f("FExpAmountSum", _ER, "FEXPAMOUNTSUM", "amount", "核定报销金额汇总"),
        _f("FExpID", _ERE, "FEXPID", "id", "费用项目", required=True),
        _f("FOccurDate", _ERE, "FOCCURDATE", "date", "发生日期"),
        _f("FReqAmount", _ERE, "FREQAMOUNT", "amount", "申请报销金额", required=True),
        _f("FExpAmount", _ERE, "FEXPAMOUNT", "amount", "核定报销金额"),
        _f("FTaxRate", _ERE, "FTAXRATE", "amount", "税率%"),
        _f("FTaxAmount", _ERE, "FTAXAMOUNT", "amount", "税额"),
        _f("FInvoiceType", _ERE, "FINVOICETYPE", "text", "发票类型"),
        _f("FRemark", _ERE, "FREMARK", "text", "备注"),
    ),
    entry=EntryDef("FEntity", _ERE),
    bill_prefix=("FYBX", 6),
    entry_required=True,
)

_INV = "T_STK_INVENTORY"
STK_INVENTORY = FormDef(
    "STK_Inventory",
    "即时库存",
    _INV,
    "FID",
    "FID",
    fields=(
        _f("FID", _INV, "FID", "text", "实体主键"),
        _f("FStockOrgId", _INV, "FSTOCKORGID", "org", "库存组织"),
        _f("FKeeperTypeId", _INV, "FKEEPERTYPEID", "text", "保管者类型"),
        _f("FKeeperId", _INV, "FKEEPERID", "id", "保管者"),
        _f("FOwnerTypeId", _INV, "FOWNERTYPEID", "text", "货主类型"),
        _f("FOwnerId", _INV, "FOWNERID", "id", "货主"),
        _f("FStockId", _INV, "FSTOCKID", "ref", "仓库", ref="BD_STOCK"),
        _f("FStockLocId", _INV, "FSTOCKLOCID", "id", "仓位"),
        _f("FStockStatusId", _INV, "FSTOCKSTATUSID", "id", "库存状态"),
        _f("FMaterialId", _INV, "FMATERIALID", "ref", "物料编码", ref="BD_MATERIAL"),
        _f("FLot", _INV, "FLOT", "ref", "批号", ref="BD_LotMaster"),
        _f("FBaseUnitId", _INV, "FBASEUNITID", "ref", "基本单位", ref="BD_UNIT"),
        _f("FBaseQty", _INV, "FBASEQTY", "amount", "库存量(基本单位)"),
        _f("FBaseLockQty", _INV, "FBASELOCKQTY", "amount", "锁库量(基本单位)"),
        _f("FStockUnitId", _INV, "FSTOCKUNITID", "ref", "库存单位", ref="BD_UNIT"),
        _f("FQty", _INV, "FQTY", "amount", "库存量(库存单位)"),
        _f("FProduceDate", _INV, "FPRODUCEDATE", "date", "生产日期"),
        _f("FExpiryDate", _INV, "FEXPIRYDATE", "date", "有效期至"),
        _f("FUpdateTime", _INV, "FUPDATETIME", "date", "最后更新日期"),
    ),
    query_only=True,
)

# --- basedata the documents reference (read through ExecuteBillQuery only) -----------------------------------
# Kingdee serves these forms too; the simulator lets them be queried (a polled capture reads them) but not saved:
# the demo data fills them.

_U, _UL = "T_BD_UNIT", "T_BD_UNIT_L"
BD_UNIT = FormDef(
    "BD_UNIT", "计量单位", _U, "FUNITID", "FNUMBER",
    fields=(
        *_basedata_header(_U, "FUNITID", "FUNITID"),
        _f("FName", _UL, "FNAME", "lang", "名称"),
        _f("FUnitGroupId", _U, "FUNITGROUPID", "id", "单位分组"),
        _f("FPrecision", _U, "FPRECISION", "int", "精度"),
    ),
    parts=(_lang_part(_U),), basedata=True, query_only=True,
)  # fmt: skip

_MG, _MGL = "T_BD_MATERIALGROUP", "T_BD_MATERIALGROUP_L"
BD_MATERIALGROUP = FormDef(
    "BD_MATERIALGROUP", "物料分组", _MG, "FID", "FNUMBER",
    fields=(
        _f("FID", _MG, "FID", "int", "实体主键"),
        _f("FNumber", _MG, "FNUMBER", "text", "编码"),
        _f("FParentId", _MG, "FPARENTID", "int", "上级分组"),
        _f("FCreateDate", _MG, "FCREATEDATE", "date", "创建日期"),
        _f("FModifyDate", _MG, "FMODIFYDATE", "date", "修改日期"),
        _f("FName", _MGL, "FNAME", "lang", "名称"),
        _f("FDescription", _MGL, "FDESCRIPTION", "lang", "描述"),
    ),
    parts=(_lang_part(_MG),), basedata=True, query_only=True,
)  # fmt: skip

_ST, _STL = "T_BD_STOCK", "T_BD_STOCK_L"
BD_STOCK = FormDef(
    "BD_STOCK", "仓库", _ST, "FSTOCKID", "FNUMBER",
    fields=(
        *_basedata_header(_ST, "FSTOCKID", "FStockId"),
        _f("FName", _STL, "FNAME", "lang", "名称"),
        _f("FDescription", _STL, "FDESCRIPTION", "lang", "描述"),
        _f("FStockProperty", _ST, "FSTOCKPROPERTY", "status", "仓库属性"),
    ),
    parts=(_lang_part(_ST),), basedata=True, query_only=True,
)  # fmt: skip

_AD, _ADL = "T_BAS_ASSISTANTDATAENTRY", "T_BAS_ASSISTANTDATAENTRY_L"
BOS_ASSISTANTDATA_DETAIL = FormDef(
    "BOS_ASSISTANTDATA_DETAIL", "辅助资料", _AD, "FENTRYID", "FNUMBER",
    fields=(
        _f("FEntryID", _AD, "FENTRYID", "text", "实体主键"),
        _f("FId", _AD, "FID", "text", "辅助资料类别"),
        _f("FNumber", _AD, "FNUMBER", "text", "编码"),
        _f("FSeq", _AD, "FSEQ", "int", "顺序号"),
        _f("FDocumentStatus", _AD, "FDOCUMENTSTATUS", "status", "数据状态"),
        _f("FForbidStatus", _AD, "FFORBIDSTATUS", "status", "禁用状态"),
        _f("FCreateDate", _AD, "FCREATEDATE", "date", "创建日期"),
        _f("FModifyDate", _AD, "FMODIFYDATE", "date", "修改日期"),
        _f("FDataValue", _ADL, "FDATAVALUE", "lang", "名称"),
        _f("FDescription", _ADL, "FDESCRIPTION", "lang", "描述"),
    ),
    parts=(_lang_part(_AD),), basedata=True, query_only=True,
)  # fmt: skip

_USR = "T_SEC_USER"
SEC_USER = FormDef(
    "SEC_User", "用户", _USR, "FUSERID", "FUSERACCOUNT",
    fields=(
        _f("FUserID", _USR, "FUSERID", "int", "用户内码"),
        _f("FName", _USR, "FNAME", "text", "用户名称"),
        _f("FUserAccount", _USR, "FUSERACCOUNT", "text", "用户账号"),
        _f("FForbidStatus", _USR, "FFORBIDSTATUS", "status", "禁用状态"),
        _f("FModifyDate", _USR, "FMODIFYDATE", "date", "修改日期"),
    ),
    basedata=True, query_only=True,
)  # fmt: skip

FORMS: dict[str, FormDef] = {
    f.form_id.lower(): f
    for f in (
        BD_MATERIAL, BD_CUSTOMER, SAL_SALEORDER, SAL_OUTSTOCK, AR_RECEIVEBILL, IV_SALESIC, IV_SALESOC,
        ER_EXPREIMBURSEMENT, STK_INVENTORY, BD_UNIT, BD_MATERIALGROUP, BD_STOCK, BOS_ASSISTANTDATA_DETAIL, SEC_USER,
    )
}  # fmt: skip


def form_by_id(form_id: str) -> FormDef | None:
    """The form with this id, matched case-insensitively (``BD_Material`` and ``BD_MATERIAL`` are one form)."""
    return FORMS.get(form_id.strip().lower()) if isinstance(form_id, str) else None
