"""Demo data for the Kingdee database: a medical-device maker of anaesthesia and respiratory products.

``seed`` fills an empty database with a deterministic data set (same ``seed`` and volumes give the same
rows and, on a fresh database, the same ids): units, material groups, warehouses, customer types, materials
with lots and inventory, hospital and distributor customers, sales orders, outbounds linked line by line to
their orders (``FSOORDERNO``/``FSOENTRYID``), VAT special and ordinary invoices linked to outbound lines, and
receipts naming their source orders. Names are Chinese, as a Chinese ERP holds them. The hospitals are real
institutions (names only); distributors, addresses, phone numbers, tax codes and product models are invented.

The write helpers (``insert_material``, ``insert_sales_order``, ``insert_outstock``, ...) change one document
the way Kingdee does: all its tables in one transaction, ``FMODIFYDATE``/``FMODIFIERID`` set. They take a
``Connection`` or an ``Engine``: with a connection already in a transaction they join it (the caller
commits); otherwise they commit their own transaction. So every helper call is atomic.

Pitfalls: the seed commits as **one transaction** (atomic: a failed seed leaves nothing); a replication slot
that exists before the seed sees one large transaction. ``reset=True`` empties the tables with DELETE
(captured as deletes) and restarts the ids. Inventory rows are a separate snapshot: outbounds do not
decrement them.
"""

# SIM300 takes Kingdee's upper-case column attributes (``t.c.FID == fid``) for constants: not Yoda conditions.
# ruff: noqa: SIM300

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from itertools import accumulate
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, update

from connectors.kingdee import models as m
from connectors.kingdee.models import CAPTURED_TABLES, DOCUMENT_TABLES, LOCALE_ZH_CN, TABLES, create_schema

# --- constants of the demo company ------------------------------------------------------------------------
# Ids of things that have no table here (organisation, users, departments, currency) are plain numbers.

ORG_ID = 1
"""The one organisation (创建组织 = 使用组织 = 销售组织 = 库存组织)."""
DEMO_USER_ID = 100010
"""The user the helpers write as (FCREATORID, FMODIFIERID, FAPPROVERID)."""
API_USER_ID = 100099
"""The user WebAPI writes are made as (the Kingdee WebAPI simulator's default ``--api-user-id``)."""
#: The users of the demo company (T_SEC_USER): whoever creates, modifies or audits a bill is one of them.
USERS = {DEMO_USER_ID: ("王静", "wangjing"), API_USER_ID: ("集成接口", "cdchub_api")}
SALESMEN = (100101, 100102, 100103, 100104, 100105, 100106)
SALES_DEPT_ID = 100201
LOGISTICS_DEPT_ID = 100202
CURRENCY_CNY = 1
STOCK_STATUS_AVAILABLE = 10000
SETTLE_TYPE_WIRE = 4  # 结算方式 电汇 (demo id)
PURPOSE_SALES = 20010  # 收款用途 销售收款 (demo id)
VAT_RATE = Decimal(13)
# Preset bill types (标准销售订单 XSDD01_SYS, 标准销售出库单 XSCKD01_SYS, 销售收款单 SKDLX01_SYS). The ids are
# recalled from K/3 Cloud installations [L]; nothing depends on them, they are opaque strings.
BILL_TYPE_SALES_ORDER = "eacb50844fc84a10b03d7b841f3a6278"
BILL_TYPE_OUTSTOCK = "ad0779a4685a43a08f08d2e42d7bf3e9"
BILL_TYPE_RECEIPT = "36cf265bd8c3452194ed9c83ec5e73d2"
CUSTOMER_TYPE_LIST_ID = "CUSTOMER_TYPE"  # the 辅助资料 list 客户类别 (FID of its entries)

SEED_NOW = datetime(2025, 6, 30, 18, 0, 0)
"""The wall clock of the seeded data set: all seeded dates lie before it (Kingdee stores China local time)."""

BILL_PREFIX = {
    "T_SAL_ORDER": ("XSDD", 6),
    "T_SAL_OUTSTOCK": ("XSCKD", 6),
    "T_AR_RECEIVEBILL": ("SKD", 8),
    "T_IV_SALESIC": ("XSZYFP", 6),
    "T_IV_SALESOC": ("XSPTFP", 6),
}

# --- catalogue --------------------------------------------------------------------------------------------

UNITS = (("Pcs", "个", 0), ("Set", "套", 0), ("Tai", "台", 0), ("Box", "盒", 0), ("Zhi", "支", 0))
"""(FNUMBER, name, precision)."""

MATERIAL_GROUPS = (
    ("1", "产成品", None),
    ("1.01", "麻醉耗材", "1"),
    ("1.02", "呼吸耗材", "1"),
    ("1.03", "设备", "1"),
    ("1.04", "配件", "1"),
)
"""(FNUMBER, name, parent FNUMBER)."""

WAREHOUSES = (
    ("CK001", "成品仓"),
    ("CK002", "北京分仓"),
    ("CK003", "上海分仓"),
    ("CK004", "成都分仓"),
    ("CK005", "广州分仓"),
    ("CK006", "武汉分仓"),
)

CUSTOMER_TYPES = (("KHLB001", "公立医院"), ("KHLB002", "民营医院"), ("KHLB003", "经销商"))


@dataclass(frozen=True)
class Product:
    group: str
    name: str
    unit: str
    specs: tuple[str, ...]
    price: tuple[float, float]
    """Tax-included unit price range in CNY."""

    @property
    def is_equipment(self) -> bool:
        return self.group == "1.03"


PRODUCTS = (
    # 麻醉耗材
    Product(
        "1.01",
        "一次性使用麻醉呼吸回路",
        "Set",
        (
            "成人 1.8m 可伸缩",
            "成人 1.5m 光滑管",
            "成人 双管 带2L储气囊",
            "儿童 1.2m 可伸缩",
            "新生儿 1.0m 带Y型接头",
        ),
        (28, 75),
    ),
    Product(
        "1.01",
        "喉罩",
        "Pcs",
        (
            "一次性 1#",
            "一次性 1.5#",
            "一次性 2#",
            "一次性 2.5#",
            "一次性 3#",
            "一次性 4#",
            "一次性 5#",
            "双管型 3#",
            "加强型 4#",
        ),
        (35, 120),
    ),
    Product(
        "1.01",
        "气管插管",
        "Zhi",
        (
            "普通型 ID3.0 无囊",
            "普通型 ID5.0 带囊",
            "普通型 ID6.5 带囊",
            "普通型 ID7.0 带囊",
            "普通型 ID7.5 带囊",
            "加强型 ID7.0 带囊",
            "可吸引型 ID7.5 带囊",
        ),
        (8, 65),
    ),
    Product(
        "1.01",
        "麻醉面罩",
        "Pcs",
        ("成人 大号 5#", "成人 中号 4#", "儿童型 3#", "儿童型 2#", "婴儿型 1#", "新生儿 0#"),
        (6, 18),
    ),
    Product(
        "1.01",
        "一次性使用麻醉穿刺包",
        "Set",
        ("硬膜外 AS-E 标准型", "腰麻 AS-S", "腰硬联合 AS-E/S", "神经阻滞 AS-N"),
        (45, 160),
    ),
    Product("1.01", "一次性使用可视喉镜片", "Pcs", ("Mac 2#", "Mac 3#", "Mac 4#", "Miller 1#"), (60, 150)),
    Product("1.01", "口咽通气道", "Pcs", ("60mm 1#", "70mm 2#", "80mm 3#", "90mm 4#", "100mm 5#"), (2, 8)),
    Product("1.01", "鼻咽通气道", "Zhi", ("ID6.0", "ID7.0", "ID8.0"), (6, 20)),
    Product("1.01", "气管插管导芯", "Zhi", ("成人 14Fr", "儿童 10Fr"), (10, 30)),
    Product("1.01", "牙垫", "Pcs", ("成人型", "儿童型"), (1, 3)),
    # 呼吸耗材
    Product(
        "1.02",
        "呼吸过滤器",
        "Pcs",
        ("细菌病毒过滤器 成人 22M/15F", "细菌病毒过滤器 儿童 15M/15F", "带采样口 成人"),
        (8, 25),
    ),
    Product(
        "1.02",
        "人工鼻",
        "Pcs",
        ("热湿交换器 HME 成人", "热湿交换器 HME 儿童", "气切型 带氧气接口", "HMEF 带过滤 成人"),
        (10, 35),
    ),
    Product(
        "1.02",
        "一次性使用呼吸机管路",
        "Set",
        (
            "成人 双加热丝 1.6m",
            "成人 单加热丝 1.6m",
            "成人 无加热 带集水杯",
            "婴儿 双加热丝 1.2m",
            "无创 单管 1.8m",
        ),
        (60, 260),
    ),
    Product(
        "1.02",
        "吸痰管",
        "Zhi",
        ("F8 带控制阀", "F10 带控制阀", "F12 带控制阀", "F14 带控制阀", "F16 带控制阀"),
        (0.6, 2.5),
    ),
    Product("1.02", "一次性使用吸痰管", "Box", ("F12 100支/盒", "F14 100支/盒"), (60, 120)),
    Product("1.02", "密闭式吸痰管", "Zhi", ("F12 72h 成人", "F14 72h 成人", "F6 24h 新生儿"), (45, 110)),
    Product(
        "1.02",
        "一次性使用鼻氧管",
        "Zhi",
        ("成人 双腔 2m", "成人 单腔 2m", "儿童 双腔 2m", "高流量 成人 M号"),
        (1.5, 45),
    ),
    Product(
        "1.02",
        "一次性使用雾化器",
        "Set",
        ("面罩式 成人 6ml", "面罩式 儿童 6ml", "咬嘴式 6ml", "呼吸机管路用 T型"),
        (5, 20),
    ),
    Product("1.02", "氧气面罩", "Pcs", ("成人 带储氧袋", "儿童 带储氧袋", "文丘里面罩 成人"), (5, 30)),
    Product("1.02", "简易呼吸器", "Set", ("成人 PVC 1500ml", "儿童 PVC 550ml", "婴儿 硅胶 280ml"), (60, 300)),
    Product("1.02", "湿化罐", "Pcs", ("自动加水型 成人", "自动加水型 婴儿"), (80, 180)),
    Product("1.02", "呼气末二氧化碳采样管", "Zhi", ("成人 2m 旁流", "儿童 2m 旁流"), (12, 30)),
    # 设备
    Product(
        "1.03",
        "麻醉机",
        "Tai",
        ("AX-700 三挥发罐位 电子流量计", "AX-500 双挥发罐位", "AX-300 便携式"),
        (180000, 680000),
    ),
    Product(
        "1.03",
        "呼吸机",
        "Tai",
        ("RV-600 ICU 有创/无创", "RV-300 亚重症", "RV-100 转运型", "RV-N20 无创 家用"),
        (8000, 420000),
    ),
    Product("1.03", "加温湿化器", "Tai", ("HU-80 伺服控温", "HU-60 基础型"), (6000, 28000)),
    Product("1.03", "高流量湿化氧疗仪", "Tai", ("HF-60 成人/儿童",), (28000, 60000)),
    Product("1.03", "医用空氧混合器", "Tai", ("OB-10 0-15L/min",), (2500, 6000)),
    Product("1.03", "医用雾化器", "Tai", ("压缩式 NE-C28", "网式 NE-M01"), (300, 1500)),
    # 配件
    Product("1.04", "流量传感器", "Pcs", ("成人 可重复使用", "新生儿"), (600, 1800)),
    Product("1.04", "呼气阀", "Pcs", ("RV-600 专用",), (900, 2200)),
    Product("1.04", "钠石灰吸收罐", "Pcs", ("AX 系列 1.5L",), (500, 1200)),
    Product("1.04", "氧电池", "Pcs", ("AX/RV 通用",), (300, 800)),
)

CITIES = {
    # city: (phone area code, region code of the tax id)
    "北京": ("010", "110105"),
    "上海": ("021", "310104"),
    "广州": ("020", "440104"),
    "成都": ("028", "510107"),
    "杭州": ("0571", "330106"),
    "武汉": ("027", "420103"),
    "长沙": ("0731", "430102"),
    "南京": ("025", "320106"),
    "济南": ("0531", "370102"),
    "郑州": ("0371", "410105"),
    "西安": ("029", "610113"),
    "重庆": ("023", "500103"),
    "沈阳": ("024", "210102"),
    "天津": ("022", "120101"),
    "长春": ("0431", "220104"),
    "福州": ("0591", "350102"),
    "乌鲁木齐": ("0991", "650102"),
    "昆明": ("0871", "530102"),
}

HOSPITALS = (
    # (name, short name, city)
    ("北京协和医院", "协和医院", "北京"),
    ("四川大学华西医院", "华西医院", "成都"),
    ("复旦大学附属中山医院", "中山医院", "上海"),
    ("浙江省人民医院", "浙江省人民医院", "杭州"),
    ("中国人民解放军总医院", "解放军总医院", "北京"),
    ("上海交通大学医学院附属瑞金医院", "瑞金医院", "上海"),
    ("中山大学附属第一医院", "中山一院", "广州"),
    ("华中科技大学同济医学院附属同济医院", "同济医院", "武汉"),
    ("中南大学湘雅医院", "湘雅医院", "长沙"),
    ("北京大学第三医院", "北医三院", "北京"),
    ("江苏省人民医院", "江苏省人民医院", "南京"),
    ("浙江大学医学院附属第一医院", "浙大一院", "杭州"),
    ("山东大学齐鲁医院", "齐鲁医院", "济南"),
    ("郑州大学第一附属医院", "郑大一附院", "郑州"),
    ("西安交通大学第一附属医院", "西安交大一附院", "西安"),
    ("重庆医科大学附属第一医院", "重医附一院", "重庆"),
    ("广东省人民医院", "广东省人民医院", "广州"),
    ("复旦大学附属华山医院", "华山医院", "上海"),
    ("华中科技大学同济医学院附属协和医院", "武汉协和医院", "武汉"),
    ("中国医科大学附属第一医院", "中国医大一院", "沈阳"),
    ("天津医科大学总医院", "天津医大总医院", "天津"),
    ("吉林大学第一医院", "吉大一院", "长春"),
    ("福建医科大学附属协和医院", "福建协和医院", "福州"),
    ("首都医科大学附属北京天坛医院", "天坛医院", "北京"),
    ("南方医科大学南方医院", "南方医院", "广州"),
    ("四川省人民医院", "四川省人民医院", "成都"),
    ("新疆医科大学第一附属医院", "新医大一附院", "乌鲁木齐"),
    ("昆明医科大学第一附属医院", "昆医大附一院", "昆明"),
)
_ORDINALS = "一二三四五六七八九"
_DISTRIBUTOR_WORDS = (
    "康泰",
    "瑞科",
    "华瑞",
    "恒济",
    "博远",
    "安和",
    "润德",
    "协力",
    "众康",
    "仁和",
    "天佑",
    "泽众",
)
_DISTRIBUTOR_KINDS = ("医疗器械有限公司", "医疗科技有限公司", "医药有限公司")
_ROADS = ("人民路", "解放路", "中山路", "建设路", "长江路", "和平路", "健康路", "学府路", "科技路", "新华路")
_TAX_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


# --- transactions and small utilities --------------------------------------------------------------------


@contextmanager
def _tx(bind: Connection | Engine) -> Iterator[Connection]:
    """Join the caller's transaction, or run in our own that commits on success."""
    if isinstance(bind, Engine):
        with bind.begin() as conn:
            yield conn
    elif bind.in_transaction():
        yield bind
    else:
        with bind.begin():
            yield bind


def _now(now: datetime | None) -> datetime:
    value = now or m.china_now()
    return value.replace(microsecond=value.microsecond // 1000 * 1000)  # Kingdee keeps milliseconds


def _dec(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _amounts(qty: Decimal, tax_price: Decimal, tax_rate: Decimal) -> dict[str, Decimal]:
    """Line amounts as Kingdee computes them from a tax-included price: all-amount first, tax split off."""
    all_amount = _cents(qty * tax_price)
    amount = _cents(all_amount / (1 + tax_rate / 100))
    price = (tax_price / (1 + tax_rate / 100)).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)
    return {
        "FPRICE": price,
        "FTAXPRICE": tax_price,
        "FTAXRATE": tax_rate,
        "FAMOUNT": amount,
        "FTAXAMOUNT": all_amount - amount,
        "FALLAMOUNT": all_amount,
    }


def _insert_rows(conn: Connection, rows: Mapping[str, Sequence[Mapping[str, Any]]]) -> None:
    """Insert rows table by table, headers before children; SQLAlchemy batches them as multi-row INSERTs."""
    for name in CAPTURED_TABLES:
        batch = rows.get(name)
        if not batch:
            continue
        by_keys: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
        for row in batch:
            by_keys.setdefault(tuple(row), []).append(row)
        for same_keys in by_keys.values():
            conn.execute(insert(TABLES[name]), same_keys)


def _next_bill_no(conn: Connection, table: str) -> str:
    prefix, width = BILL_PREFIX[table]
    col = TABLES[table].c.FBILLNO
    numbers = conn.execute(select(col).where(col.like(f"{prefix}%"))).scalars()
    last = max((int(n[len(prefix) :]) for n in numbers if n and n[len(prefix) :].isdigit()), default=0)
    return f"{prefix}{last + 1:0{width}d}"


def ensure_users(bind: Connection | Engine, now: datetime | None = None) -> int:
    """Insert the demo company's users that are missing (idempotent); returns how many were added."""
    with _tx(bind) as conn:
        present = set(conn.execute(select(m.T_SEC_USER.c.FUSERID)).scalars())
        rows = [{"FUSERID": uid, "FNAME": name, "FUSERACCOUNT": account, "FMODIFYDATE": _now(now)}
                for uid, (name, account) in USERS.items() if uid not in present]
        if rows:
            conn.execute(insert(m.T_SEC_USER), rows)
        return len(rows)


def count_rows(bind: Connection | Engine) -> dict[str, int]:
    """Row count of every Kingdee table."""
    with _tx(bind) as conn:
        return {
            name: conn.execute(select(func.count()).select_from(TABLES[name])).scalar_one() for name in TABLES
        }


def lookup_id(bind: Connection | Engine, table: str, number: str) -> int | None:
    """The id of the basedata row or bill with this ``FNUMBER``/``FBILLNO`` (the lowest, if several)."""
    t = TABLES[table]
    pk = next(iter(t.primary_key.columns))
    number_col = t.c.FBILLNO if "FBILLNO" in t.c else t.c.FNUMBER
    with _tx(bind) as conn:
        return conn.execute(select(func.min(pk)).where(number_col == number)).scalar()


# --- row builders ----------------------------------------------------------------------------------------
# Each returns the rows of one document as {table: [row, ...]}; the same table always gets the same keys.


def _audit(status: str, created: datetime, modified: datetime, approved: datetime | None, user: int) -> dict:
    audited = status == "C"
    return {
        "FDOCUMENTSTATUS": status,
        "FCREATORID": user,
        "FCREATEDATE": created,
        "FMODIFIERID": user,
        "FMODIFYDATE": modified,
        "FAPPROVERID": user if audited else 0,
        "FAPPROVEDATE": (approved or modified) if audited else None,
    }


def _material_rows(
    ids: tuple[int, int, int],
    number: str,
    name: str,
    spec: str,
    *,
    status: str,
    forbid: str,
    group_id: int,
    base_unit_id: int,
    description: str,
    barcode: str,
    created: datetime,
    modified: datetime,
    user: int,
) -> dict[str, list[dict[str, Any]]]:
    material_id, pkid, base_id = ids
    return {
        "T_BD_MATERIAL": [
            {
                "FMATERIALID": material_id,
                "FNUMBER": number,
                "FMASTERID": material_id,
                "FCREATEORGID": ORG_ID,
                "FUSEORGID": ORG_ID,
                **_audit(status, created, modified, None, user),
                "FFORBIDSTATUS": forbid,
                "FFORBIDDERID": user if forbid == "B" else 0,
                "FFORBIDDATE": modified if forbid == "B" else None,
                "FMATERIALGROUP": group_id,
            }
        ],
        "T_BD_MATERIAL_L": [
            {
                "FPKID": pkid,
                "FMATERIALID": material_id,
                "FLOCALEID": LOCALE_ZH_CN,
                "FNAME": name,
                "FSPECIFICATION": spec,
                "FDESCRIPTION": description,
            }
        ],
        "T_BD_MATERIALBASE": [
            {
                "FENTRYID": base_id,
                "FMATERIALID": material_id,
                "FERPCLSID": "2",  # 自制 self-made
                "FBASEUNITID": base_unit_id,
                "FBARCODE": barcode,
            }
        ],
    }


def _customer_rows(
    ids: tuple[int, int],
    number: str,
    name: str,
    short_name: str,
    *,
    status: str,
    forbid: str,
    cust_type_id: str,
    invoice_type: str,
    tel: str,
    address: str,
    tax_code: str,
    seller_id: int,
    created: datetime,
    modified: datetime,
    user: int,
) -> dict[str, list[dict[str, Any]]]:
    cust_id, pkid = ids
    return {
        "T_BD_CUSTOMER": [
            {
                "FCUSTID": cust_id,
                "FNUMBER": number,
                "FMASTERID": cust_id,
                "FCREATEORGID": ORG_ID,
                "FUSEORGID": ORG_ID,
                **_audit(status, created, modified, None, user),
                "FFORBIDSTATUS": forbid,
                "FFORBIDDERID": user if forbid == "B" else 0,
                "FFORBIDDATE": modified if forbid == "B" else None,
                "FCUSTTYPEID": cust_type_id,
                "FSELLER": seller_id,
                "FSALDEPTID": SALES_DEPT_ID,
                "FTRADINGCURRID": CURRENCY_CNY,
                "FINVOICETYPE": invoice_type,
                "FTEL": tel,
                "FADDRESS": address,
                "FTAXREGISTERCODE": tax_code,
            }
        ],
        "T_BD_CUSTOMER_L": [
            {
                "FPKID": pkid,
                "FCUSTID": cust_id,
                "FLOCALEID": LOCALE_ZH_CN,
                "FNAME": name,
                "FSHORTNAME": short_name,
            }
        ],
    }


@dataclass(frozen=True)
class OrderLine:
    """One sales order line: quantity in the material's base unit and a tax-included unit price."""

    material_id: int
    qty: Decimal | int | float | str
    tax_price: Decimal | int | float | str
    unit_id: int = 0
    tax_rate: Decimal | int | float | str = VAT_RATE
    delivery_date: datetime | None = None
    note: str = " "


@dataclass(frozen=True)
class SalesOrderRef:
    fid: int
    bill_no: str
    entry_ids: tuple[int, ...]


@dataclass(frozen=True)
class OutstockRef:
    fid: int
    bill_no: str
    entry_ids: tuple[int, ...]


def _order_rows(
    fid: int,
    fin_id: int,
    entry_ids: Sequence[int],
    bill_no: str,
    customer_id: int,
    lines: Sequence[OrderLine],
    *,
    date: datetime,
    status: str,
    close_status: str,
    cancel_status: str,
    saler_id: int,
    note: str,
    created: datetime,
    modified: datetime,
    user: int,
) -> dict[str, list[dict[str, Any]]]:
    header = {
        "FID": fid,
        "FBILLNO": bill_no,
        "FBILLTYPEID": BILL_TYPE_SALES_ORDER,
        "FDATE": date,
        **_audit(status, created, modified, None, user),
        "FCANCELSTATUS": cancel_status,
        "FCANCELLERID": user if cancel_status == "B" else 0,
        "FCANCELDATE": modified if cancel_status == "B" else None,
        "FCUSTID": customer_id,
        "FSALEORGID": ORG_ID,
        "FSALEDEPTID": SALES_DEPT_ID,
        "FSALERID": saler_id,
        "FRECEIVEID": customer_id,
        "FSETTLEID": customer_id,
        "FCHARGEID": customer_id,
        "FBUSINESSTYPE": "NORMAL",
        "FCLOSESTATUS": close_status,
        "FCLOSERID": user if close_status == "B" else 0,
        "FCLOSEDATE": modified if close_status == "B" else None,
        "FNOTE": note,
    }
    entries, fins, progress = [], [], []
    for seq, (entry_id, line) in enumerate(zip(entry_ids, lines, strict=True), start=1):
        qty = _dec(line.qty)
        entries.append(
            {
                "FENTRYID": entry_id,
                "FID": fid,
                "FSEQ": seq,
                "FMATERIALID": line.material_id,
                "FUNITID": line.unit_id,
                "FQTY": qty,
                "FBASEUNITID": line.unit_id,
                "FBASEUNITQTY": qty,
                "FDELIVERYDATE": line.delivery_date or date + timedelta(days=14),
                "FNOTE": line.note,
            }
        )
        fins.append(
            {"FENTRYID": entry_id, "FID": fid, **_amounts(qty, _dec(line.tax_price), _dec(line.tax_rate))}
        )
        progress.append(
            {
                "FENTRYID": entry_id,
                "FID": fid,
                "FSTOCKOUTQTY": Decimal(0),
                "FREMAINOUTQTY": qty,
                "FBASESTOCKOUTQTY": Decimal(0),
                "FRETURNQTY": Decimal(0),
            }
        )
    return {
        "T_SAL_ORDER": [header],
        "T_SAL_ORDERFIN": [_fin_row(fin_id, fid, fins)],
        "T_SAL_ORDERENTRY": entries,
        "T_SAL_ORDERENTRY_F": fins,
        "T_SAL_ORDERENTRY_R": progress,
    }


def _fin_row(fin_id: int, fid: int, line_amounts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {
        "FENTRYID": fin_id,
        "FID": fid,
        "FSETTLECURRID": CURRENCY_CNY,
        "FEXCHANGERATE": Decimal(1),
        "FBILLAMOUNT": sum((r["FAMOUNT"] for r in line_amounts), Decimal(0)),
        "FBILLTAXAMOUNT": sum((r["FTAXAMOUNT"] for r in line_amounts), Decimal(0)),
        "FBILLALLAMOUNT": sum((r["FALLAMOUNT"] for r in line_amounts), Decimal(0)),
    }


@dataclass(frozen=True)
class OutstockLine:
    """One outbound line: which order line it delivers, how much, from where."""

    so_entry_id: int
    qty: Decimal | int | float | str
    stock_id: int = 0
    lot_id: int = 0
    lot_text: str = " "
    produce_date: datetime | None = None
    expiry_date: datetime | None = None


def _outstock_rows(
    fid: int,
    fin_id: int,
    entry_ids: Sequence[int],
    bill_no: str,
    order_no: str,
    customer_id: int,
    lines: Sequence[OutstockLine],
    order_lines: Mapping[int, Mapping[str, Any]],
    *,
    date: datetime,
    status: str,
    salesman_id: int,
    carriage_no: str,
    created: datetime,
    modified: datetime,
    user: int,
) -> dict[str, list[dict[str, Any]]]:
    """``order_lines`` maps each order entry id to its FMATERIALID, FUNITID, FTAXPRICE and FTAXRATE."""
    header = {
        "FID": fid,
        "FBILLNO": bill_no,
        "FBILLTYPEID": BILL_TYPE_OUTSTOCK,
        "FDATE": date,
        **_audit(status, created, modified, None, user),
        "FCUSTOMERID": customer_id,
        "FSALEORGID": ORG_ID,
        "FSTOCKORGID": ORG_ID,
        "FSALESMANID": salesman_id,
        "FDELIVERYDEPTID": LOGISTICS_DEPT_ID,
        "FCARRIAGENO": carriage_no,
        "FNOTE": " ",
    }
    entries, links, fins = [], [], []
    for seq, (entry_id, line) in enumerate(zip(entry_ids, lines, strict=True), start=1):
        src = order_lines[line.so_entry_id]
        qty = _dec(line.qty)
        entries.append(
            {
                "FENTRYID": entry_id,
                "FID": fid,
                "FSEQ": seq,
                "FMATERIALID": src["FMATERIALID"],
                "FUNITID": src["FUNITID"],
                "FREALQTY": qty,
                "FBASEUNITID": src["FUNITID"],
                "FBASEUNITQTY": qty,
                "FSTOCKID": line.stock_id,
                "FSTOCKSTATUSID": STOCK_STATUS_AVAILABLE,
                "FLOT": line.lot_id,
                "FLOT_TEXT": line.lot_text,
                "FPRODUCEDATE": line.produce_date,
                "FEXPIRYDATE": line.expiry_date,
                "FNOTE": " ",
            }
        )
        links.append(
            {
                "FENTRYID": entry_id,
                "FID": fid,
                "FSRCTYPE": "SAL_SaleOrder",
                "FSRCBILLNO": order_no,
                "FSOORDERNO": order_no,
                "FSOENTRYID": line.so_entry_id,
            }
        )
        fins.append({"FENTRYID": entry_id, "FID": fid, **_amounts(qty, src["FTAXPRICE"], src["FTAXRATE"])})
    return {
        "T_SAL_OUTSTOCK": [header],
        "T_SAL_OUTSTOCKFIN": [_fin_row(fin_id, fid, fins)],
        "T_SAL_OUTSTOCKENTRY": entries,
        "T_SAL_OUTSTOCKENTRY_R": links,
        "T_SAL_OUTSTOCKENTRY_F": fins,
    }


# --- write helpers: materials ----------------------------------------------------------------------------


def insert_material(
    bind: Connection | Engine,
    number: str,
    name: str,
    spec: str = " ",
    *,
    status: str = "C",
    forbid: str = "A",
    group_id: int = 0,
    base_unit_id: int = 0,
    description: str = " ",
    barcode: str = " ",
    user_id: int = DEMO_USER_ID,
    now: datetime | None = None,
) -> int:
    """Insert one material (header, zh-CN texts, 基本 tab) in one transaction; returns its ``FMATERIALID``."""
    ts = _now(now)
    with _tx(bind) as conn:
        ids = (
            m.next_ids(conn, "T_BD_MATERIAL", 1)[0],
            m.next_ids(conn, "T_BD_MATERIAL_L", 1)[0],
            m.next_ids(conn, "T_BD_MATERIALBASE", 1)[0],
        )
        rows = _material_rows(
            ids,
            number,
            name,
            spec,
            status=status,
            forbid=forbid,
            group_id=group_id,
            base_unit_id=base_unit_id,
            description=description,
            barcode=barcode,
            created=ts,
            modified=ts,
            user=user_id,
        )
        _insert_rows(conn, rows)
        return ids[0]


def bulk_insert_materials(
    bind: Connection | Engine,
    n: int,
    prefix: str = "9.99.",
    *,
    name: str = "一次性使用麻醉呼吸回路",
    spec: str = "成人 1.8m 可伸缩",
    status: str = "C",
    group_id: int = 0,
    base_unit_id: int = 0,
    start: int = 1,
    user_id: int = DEMO_USER_ID,
    now: datetime | None = None,
) -> list[int]:
    """Insert ``n`` materials numbered ``{prefix}{start:06d}``… in one transaction, as multi-row INSERTs.

    Every material gets its header, ``_L`` and ``T_BD_MATERIALBASE`` rows. Returns the ids.
    """
    ts = _now(now)
    with _tx(bind) as conn:
        ids = list(
            zip(
                m.next_ids(conn, "T_BD_MATERIAL", n),
                m.next_ids(conn, "T_BD_MATERIAL_L", n),
                m.next_ids(conn, "T_BD_MATERIALBASE", n),
                strict=True,
            )
        )
        rows: dict[str, list[dict[str, Any]]] = {}
        for i, triple in enumerate(ids):
            one = _material_rows(
                triple,
                f"{prefix}{start + i:06d}",
                name,
                spec,
                status=status,
                forbid="A",
                group_id=group_id,
                base_unit_id=base_unit_id,
                description=" ",
                barcode=" ",
                created=ts,
                modified=ts,
                user=user_id,
            )
            for table, table_rows in one.items():
                rows.setdefault(table, []).extend(table_rows)
        _insert_rows(conn, rows)
        return [t[0] for t in ids]


def update_material(
    bind: Connection | Engine,
    material_id: int,
    *,
    number: str | None = None,
    name: str | None = None,
    spec: str | None = None,
    description: str | None = None,
    status: str | None = None,
    group_id: int | None = None,
    base_unit_id: int | None = None,
    user_id: int = DEMO_USER_ID,
    now: datetime | None = None,
) -> None:
    """Change a material as a Kingdee save does: header ``FMODIFYDATE`` always moves, texts only if given."""
    ts = _now(now)
    header: dict[str, Any] = {"FMODIFYDATE": ts, "FMODIFIERID": user_id}
    if number is not None:
        header["FNUMBER"] = number
    if group_id is not None:
        header["FMATERIALGROUP"] = group_id
    if status is not None:
        header.update(_status_change(status, ts, user_id))
    texts = {
        k: v
        for k, v in (("FNAME", name), ("FSPECIFICATION", spec), ("FDESCRIPTION", description))
        if v is not None
    }
    with _tx(bind) as conn:
        t = m.T_BD_MATERIAL
        conn.execute(update(t).where(t.c.FMATERIALID == material_id).values(header))
        if texts:
            tl = m.T_BD_MATERIAL_L
            conn.execute(
                update(tl)
                .where(tl.c.FMATERIALID == material_id, tl.c.FLOCALEID == LOCALE_ZH_CN)
                .values(texts)
            )
        if base_unit_id is not None:
            tb = m.T_BD_MATERIALBASE
            conn.execute(update(tb).where(tb.c.FMATERIALID == material_id).values(FBASEUNITID=base_unit_id))


def disable_material(
    bind: Connection | Engine, material_id: int, *, user_id: int = DEMO_USER_ID, now: datetime | None = None
) -> None:
    """禁用: ``FFORBIDSTATUS`` B with forbidder and date."""
    ts = _now(now)
    t = m.T_BD_MATERIAL
    with _tx(bind) as conn:
        conn.execute(
            update(t)
            .where(t.c.FMATERIALID == material_id)
            .values(
                FFORBIDSTATUS="B", FFORBIDDERID=user_id, FFORBIDDATE=ts, FMODIFYDATE=ts, FMODIFIERID=user_id
            )
        )


def enable_material(
    bind: Connection | Engine, material_id: int, *, user_id: int = DEMO_USER_ID, now: datetime | None = None
) -> None:
    """反禁用: ``FFORBIDSTATUS`` back to A."""
    ts = _now(now)
    t = m.T_BD_MATERIAL
    with _tx(bind) as conn:
        conn.execute(
            update(t)
            .where(t.c.FMATERIALID == material_id)
            .values(FFORBIDSTATUS="A", FFORBIDDERID=0, FFORBIDDATE=None, FMODIFYDATE=ts, FMODIFIERID=user_id)
        )


def delete_material(bind: Connection | Engine, material_id: int) -> None:
    """Delete a material's header, ``_L`` and ``T_BD_MATERIALBASE`` rows in one transaction."""
    delete_document(bind, "T_BD_MATERIAL", material_id)


# --- write helpers: customers ----------------------------------------------------------------------------


def insert_customer(
    bind: Connection | Engine,
    number: str,
    name: str,
    short_name: str = " ",
    *,
    status: str = "C",
    forbid: str = "A",
    cust_type_id: str = " ",
    invoice_type: str = "2",
    tel: str = " ",
    address: str = " ",
    tax_code: str = " ",
    seller_id: int = 0,
    user_id: int = DEMO_USER_ID,
    now: datetime | None = None,
) -> int:
    """Insert one customer (header and zh-CN texts) in one transaction; returns its ``FCUSTID``."""
    ts = _now(now)
    with _tx(bind) as conn:
        ids = (m.next_ids(conn, "T_BD_CUSTOMER", 1)[0], m.next_ids(conn, "T_BD_CUSTOMER_L", 1)[0])
        rows = _customer_rows(
            ids,
            number,
            name,
            short_name,
            status=status,
            forbid=forbid,
            cust_type_id=cust_type_id,
            invoice_type=invoice_type,
            tel=tel,
            address=address,
            tax_code=tax_code,
            seller_id=seller_id,
            created=ts,
            modified=ts,
            user=user_id,
        )
        _insert_rows(conn, rows)
        return ids[0]


# --- write helpers: sales orders and outbounds -----------------------------------------------------------


def insert_sales_order(
    bind: Connection | Engine,
    customer_id: int,
    lines: Sequence[OrderLine | Mapping[str, Any]],
    *,
    bill_no: str | None = None,
    status: str = "C",
    date: datetime | None = None,
    saler_id: int = SALESMEN[0],
    note: str = " ",
    user_id: int = DEMO_USER_ID,
    now: datetime | None = None,
) -> SalesOrderRef:
    """Insert a sales order (header, 财务 split, entries with ``_F`` and ``_R``) in one transaction.

    ``lines`` are ``OrderLine``s or mappings with the same keys (``material_id``, ``qty``, ``tax_price``, …).
    ``bill_no`` defaults to the next ``XSDD`` number.
    """
    ts = _now(now)
    order_lines = [line if isinstance(line, OrderLine) else OrderLine(**line) for line in lines]
    with _tx(bind) as conn:
        fid = m.next_ids(conn, "T_SAL_ORDER", 1)[0]
        fin_id = m.next_ids(conn, "T_SAL_ORDERFIN", 1)[0]
        entry_ids = m.next_ids(conn, "T_SAL_ORDERENTRY", len(order_lines))
        number = bill_no or _next_bill_no(conn, "T_SAL_ORDER")
        rows = _order_rows(
            fid,
            fin_id,
            entry_ids,
            number,
            customer_id,
            order_lines,
            date=date or ts.replace(hour=0, minute=0, second=0, microsecond=0),
            status=status,
            close_status="A",
            cancel_status="A",
            saler_id=saler_id,
            note=note,
            created=ts,
            modified=ts,
            user=user_id,
        )
        _insert_rows(conn, rows)
        return SalesOrderRef(fid, number, tuple(entry_ids))


def update_order_line(
    bind: Connection | Engine,
    entry_id: int,
    *,
    qty: Decimal | int | float | str | None = None,
    tax_price: Decimal | int | float | str | None = None,
    note: str | None = None,
    touch_header: bool = True,
    user_id: int = DEMO_USER_ID,
    now: datetime | None = None,
) -> None:
    """Change one order line (entry, ``_F`` amounts, ``_R`` remaining quantity) in one transaction.

    ``touch_header=True`` is a Kingdee save: header ``FMODIFYDATE`` and the 财务 totals move too.
    ``touch_header=False`` changes only entry rows, as a back-write from another bill does: the capture must
    still emit the whole order.
    """
    ts = _now(now)
    e, f, r = m.T_SAL_ORDERENTRY, m.T_SAL_ORDERENTRY_F, m.T_SAL_ORDERENTRY_R
    with _tx(bind) as conn:
        entry = conn.execute(select(e.c.FID, e.c.FQTY).where(e.c.FENTRYID == entry_id)).one()
        fin = conn.execute(select(f.c.FTAXPRICE, f.c.FTAXRATE).where(f.c.FENTRYID == entry_id)).one()
        done = conn.execute(select(r.c.FSTOCKOUTQTY).where(r.c.FENTRYID == entry_id)).scalar_one()
        new_qty = _dec(qty) if qty is not None else _dec(entry.FQTY)
        new_price = _dec(tax_price) if tax_price is not None else _dec(fin.FTAXPRICE)
        values: dict[str, Any] = {"FQTY": new_qty, "FBASEUNITQTY": new_qty}
        if note is not None:
            values["FNOTE"] = note
        conn.execute(update(e).where(e.c.FENTRYID == entry_id).values(values))
        conn.execute(
            update(f).where(f.c.FENTRYID == entry_id).values(_amounts(new_qty, new_price, _dec(fin.FTAXRATE)))
        )
        conn.execute(update(r).where(r.c.FENTRYID == entry_id).values(FREMAINOUTQTY=new_qty - _dec(done)))
        if touch_header:
            _refresh_fin(conn, "T_SAL_ORDER", entry.FID)
            h = m.T_SAL_ORDER
            conn.execute(update(h).where(h.c.FID == entry.FID).values(FMODIFYDATE=ts, FMODIFIERID=user_id))


def _refresh_fin(conn: Connection, header: str, fid: int) -> None:
    split, fin = TABLES[f"{header}ENTRY_F"], TABLES[f"{header}FIN"]
    sums = conn.execute(
        select(func.sum(split.c.FAMOUNT), func.sum(split.c.FTAXAMOUNT), func.sum(split.c.FALLAMOUNT)).where(
            split.c.FID == fid
        )
    ).one()
    conn.execute(
        update(fin)
        .where(fin.c.FID == fid)
        .values(FBILLAMOUNT=sums[0] or 0, FBILLTAXAMOUNT=sums[1] or 0, FBILLALLAMOUNT=sums[2] or 0)
    )


def insert_outstock(
    bind: Connection | Engine,
    order: SalesOrderRef | int,
    lines: Sequence[OutstockLine | Mapping[str, Any]] | None = None,
    *,
    bill_no: str | None = None,
    status: str = "C",
    stock_id: int = 0,
    date: datetime | None = None,
    carriage_no: str = " ",
    back_write: bool = True,
    user_id: int = DEMO_USER_ID,
    now: datetime | None = None,
) -> OutstockRef:
    """Insert a 销售出库单 delivering lines of ``order``, each line linked by ``FSOORDERNO``/``FSOENTRYID``.

    ``lines`` default to the remaining quantity of every order line, from ``stock_id``. When the outbound is
    audited (``status='C'``) and ``back_write`` is on, the order's ``_R`` progress is updated in the same
    transaction and a fully delivered order is closed, as Kingdee does.
    """
    ts = _now(now)
    order_fid = order.fid if isinstance(order, SalesOrderRef) else order
    h, e, f, r = m.T_SAL_ORDER, m.T_SAL_ORDERENTRY, m.T_SAL_ORDERENTRY_F, m.T_SAL_ORDERENTRY_R
    with _tx(bind) as conn:
        head = conn.execute(select(h.c.FBILLNO, h.c.FCUSTID, h.c.FSALERID).where(h.c.FID == order_fid)).one()
        src_rows = conn.execute(
            select(e.c.FENTRYID, e.c.FMATERIALID, e.c.FUNITID, f.c.FTAXPRICE, f.c.FTAXRATE, r.c.FREMAINOUTQTY)
            .join(f, f.c.FENTRYID == e.c.FENTRYID)
            .join(r, r.c.FENTRYID == e.c.FENTRYID)
            .where(e.c.FID == order_fid)
            .order_by(e.c.FSEQ)
        ).mappings()
        order_lines = {row["FENTRYID"]: dict(row) for row in src_rows}
        if lines is None:
            out_lines = [
                OutstockLine(entry_id, src["FREMAINOUTQTY"], stock_id=stock_id)
                for entry_id, src in order_lines.items()
                if _dec(src["FREMAINOUTQTY"]) > 0
            ]
        else:
            out_lines = [ln if isinstance(ln, OutstockLine) else OutstockLine(**ln) for ln in lines]
        fid = m.next_ids(conn, "T_SAL_OUTSTOCK", 1)[0]
        fin_id = m.next_ids(conn, "T_SAL_OUTSTOCKFIN", 1)[0]
        entry_ids = m.next_ids(conn, "T_SAL_OUTSTOCKENTRY", len(out_lines))
        number = bill_no or _next_bill_no(conn, "T_SAL_OUTSTOCK")
        rows = _outstock_rows(
            fid,
            fin_id,
            entry_ids,
            number,
            head.FBILLNO,
            head.FCUSTID,
            out_lines,
            order_lines,
            date=date or ts.replace(hour=0, minute=0, second=0, microsecond=0),
            status=status,
            salesman_id=head.FSALERID,
            carriage_no=carriage_no,
            created=ts,
            modified=ts,
            user=user_id,
        )
        _insert_rows(conn, rows)
        if status == "C" and back_write:
            _back_write(conn, order_fid, [(ln.so_entry_id, _dec(ln.qty)) for ln in out_lines], ts, user_id)
        return OutstockRef(fid, number, tuple(entry_ids))


def _back_write(
    conn: Connection, order_fid: int, deliveries: Sequence[tuple[int, Decimal]], ts: datetime, user_id: int
) -> None:
    """反写 (back-write): add delivered quantities to the order's ``_R`` rows; close or reopen the order."""
    r, h = m.T_SAL_ORDERENTRY_R, m.T_SAL_ORDER
    for entry_id, qty in deliveries:
        conn.execute(
            update(r)
            .where(r.c.FENTRYID == entry_id)
            .values(
                FSTOCKOUTQTY=r.c.FSTOCKOUTQTY + qty,
                FBASESTOCKOUTQTY=r.c.FBASESTOCKOUTQTY + qty,
                FREMAINOUTQTY=r.c.FREMAINOUTQTY - qty,
            )
        )
    open_lines = conn.execute(
        select(func.count()).select_from(r).where(r.c.FID == order_fid, r.c.FREMAINOUTQTY > 0)
    ).scalar_one()
    closed = conn.execute(select(h.c.FCLOSESTATUS).where(h.c.FID == order_fid)).scalar_one() == "B"
    if open_lines == 0 and not closed:
        conn.execute(
            update(h).where(h.c.FID == order_fid).values(FCLOSESTATUS="B", FCLOSERID=user_id, FCLOSEDATE=ts)
        )
    elif open_lines > 0 and closed:
        conn.execute(
            update(h).where(h.c.FID == order_fid).values(FCLOSESTATUS="A", FCLOSERID=0, FCLOSEDATE=None)
        )


def delete_outstock(bind: Connection | Engine, fid: int, *, user_id: int = DEMO_USER_ID) -> None:
    """Delete an outbound and all its rows in one transaction.

    Kingdee only deletes unaudited bills; if this one was audited, its back-write on the order is reversed in
    the same transaction (as an un-audit then delete would).
    """
    o, oe, link = m.T_SAL_OUTSTOCK, m.T_SAL_OUTSTOCKENTRY, m.T_SAL_OUTSTOCKENTRY_R
    with _tx(bind) as conn:
        status = conn.execute(select(o.c.FDOCUMENTSTATUS).where(o.c.FID == fid)).scalar()
        if status == "C":
            delivered = conn.execute(
                select(link.c.FSOENTRYID, oe.c.FREALQTY)
                .join(oe, oe.c.FENTRYID == link.c.FENTRYID)
                .where(link.c.FID == fid)
            ).all()
            e = m.T_SAL_ORDERENTRY
            by_order: dict[int, list[tuple[int, Decimal]]] = {}
            for so_entry_id, qty in delivered:
                order_fid = conn.execute(select(e.c.FID).where(e.c.FENTRYID == so_entry_id)).scalar()
                if order_fid is not None:
                    by_order.setdefault(order_fid, []).append((so_entry_id, -_dec(qty)))
            for order_fid, deliveries in by_order.items():
                _back_write(conn, order_fid, deliveries, _now(None), user_id)
        delete_document(conn, "T_SAL_OUTSTOCK", fid)


def delete_sales_order(bind: Connection | Engine, fid: int) -> None:
    """Delete a sales order and all its rows (header, 财务, entries, ``_F``, ``_R``) in one transaction."""
    delete_document(bind, "T_SAL_ORDER", fid)


# --- write helpers: any document -------------------------------------------------------------------------


INVOICE_TABLES = {"special": "T_IV_SALESIC", "ordinary": "T_IV_SALESOC"}


def insert_invoice(bind: Connection | Engine, kind: str, customer: int, order_no: str,
                   lines: Sequence[tuple[int, int, str]], bill_no: str,
                   from_outbound: tuple[str, Sequence[int]] | None = None) -> int:
    """An audited invoice of ``kind`` whose entries (material, qty, tax-included price; 13 % VAT) come from the
    sales order ``order_no`` — or, with ``from_outbound`` (bill number, entry ids), from an outbound's lines, as
    Kingdee's push-down from 销售出库单 makes them."""
    table = INVOICE_TABLES[kind]
    with _tx(bind) as conn:
        fid = m.next_ids(conn, table, 1)[0]
        entry_ids = m.next_ids(conn, f"{table}ENTRY", len(lines))
        total = Decimal(0)
        entries = []
        for seq, (entry_id, (material, qty, tax_price)) in enumerate(zip(entry_ids, lines, strict=True), start=1):
            all_amount = Decimal(tax_price) * qty
            amount = (all_amount / Decimal("1.13")).quantize(Decimal("0.01"))
            total += all_amount
            entries.append({"FENTRYID": entry_id, "FID": fid, "FSEQ": seq, "FMATERIALID": material,
                            "FPRICEQTY": qty, "FPRICE": (amount / qty).quantize(Decimal("0.000001")),
                            "FTAXPRICE": Decimal(tax_price), "FTAXRATE": Decimal(13), "FAMOUNTFOR": amount,
                            "FALLAMOUNTFOR": all_amount, "FSRCBILLTYPEID": "SAL_SaleOrder",
                            "FSRCBILLNO": order_no, "FSRCROWID": 0})
            if from_outbound is not None:
                entries[-1].update(FSRCBILLTYPEID="SAL_OUTSTOCK", FSRCBILLNO=from_outbound[0],
                                   FSRCROWID=from_outbound[1][seq - 1])
        conn.execute(insert(TABLES[table]).values(
            FID=fid, FBILLNO=bill_no, FDOCUMENTSTATUS="C", FCANCELSTATUS="A", FCUSTOMERID=customer,
            FINVOICENO=f"{fid:08d}", FAFTERTOTALTAXFOR=total))
        conn.execute(insert(TABLES[f"{table}ENTRY"]), entries)
    return fid


def insert_receipt(bind: Connection | Engine, customer: int, order_no: str, amount: str, bill_no: str) -> int:
    """An audited receipt of ``amount`` from ``customer`` for the sales order ``order_no``, pushed down from it (one
    source entry naming the order)."""
    with _tx(bind) as conn:
        fid = m.next_ids(conn, "T_AR_RECEIVEBILL", 1)[0]
        conn.execute(insert(TABLES["T_AR_RECEIVEBILL"]).values(
            FID=fid, FBILLNO=bill_no, FDOCUMENTSTATUS="C", FCANCELSTATUS="A", FCONTACTUNITTYPE="BD_Customer",
            FAPPROVERID=DEMO_USER_ID, FAPPROVEDATE=m.china_now(),
            FCONTACTUNIT=customer, FRECEIVEAMOUNTFOR=Decimal(amount), FRECEIVEAMOUNT=Decimal(amount)))
        conn.execute(insert(TABLES["T_AR_RECEIVEBILLENTRY"]).values(
            FENTRYID=m.next_ids(conn, "T_AR_RECEIVEBILLENTRY", 1)[0], FID=fid, FSEQ=1,
            FREALRECAMOUNTFOR=Decimal(amount), FREALRECAMOUNT=Decimal(amount), FSALEORDERNO=order_no))
        conn.execute(insert(TABLES["T_AR_RECEIVEBILLSRCENTRY"]).values(
            FENTRYID=m.next_ids(conn, "T_AR_RECEIVEBILLSRCENTRY", 1)[0], FID=fid, FSEQ=1,
            FSRCBILLTYPEID="SAL_SaleOrder", FSRCBILLNO=order_no, FORDERBILLNO=order_no,
            FREALRECAMOUNT=Decimal(amount)))
    return fid


def _status_change(status: str, ts: datetime, user_id: int) -> dict[str, Any]:
    if status not in m.DOCUMENT_STATUS:
        raise ValueError(f"unknown FDOCUMENTSTATUS {status!r}; expected one of {sorted(m.DOCUMENT_STATUS)}")
    audited = status == "C"
    return {
        "FDOCUMENTSTATUS": status,
        "FAPPROVERID": user_id if audited else 0,
        "FAPPROVEDATE": ts if audited else None,
    }


def set_document_status(
    bind: Connection | Engine,
    header: str,
    doc_id: int | str,
    status: str,
    *,
    user_id: int = DEMO_USER_ID,
    now: datetime | None = None,
) -> None:
    """Submit (B), audit (C), un-audit (D) … any document by its header table: status, approver, FMODIFYDATE.

    Only the header changes (no back-writes): use the specific helpers for bills that write back.
    """
    ts = _now(now)
    spec = DOCUMENT_TABLES[header]
    t = TABLES[header]
    values = _status_change(status, ts, user_id)
    if "FMODIFYDATE" in t.c:
        values.update(FMODIFYDATE=ts)
    if "FMODIFIERID" in t.c:
        values.update(FMODIFIERID=user_id)
    with _tx(bind) as conn:
        conn.execute(update(t).where(t.c[spec.key] == doc_id).values(values))


def delete_document(bind: Connection | Engine, header: str, doc_id: int | str) -> None:
    """Delete a document: the child rows carrying ``doc_id``, then the header, in one transaction."""
    spec = DOCUMENT_TABLES[header]
    with _tx(bind) as conn:
        for name in (*reversed(spec.children), spec.header):
            t = TABLES[name]
            conn.execute(delete(t).where(t.c[spec.key] == doc_id))


def adjust_inventory(
    bind: Connection | Engine,
    material_id: int,
    stock_id: int,
    delta: Decimal | int | float | str,
    *,
    lot_id: int = 0,
    unit_id: int = 0,
    now: datetime | None = None,
) -> str:
    """Add ``delta`` to the 即时库存 row of material, warehouse and lot (created if missing); returns FID."""
    ts = _now(now)
    t = m.T_STK_INVENTORY
    with _tx(bind) as conn:
        where = (t.c.FMATERIALID == material_id, t.c.FSTOCKID == stock_id, t.c.FLOT == lot_id)
        fid = conn.execute(select(t.c.FID).where(*where).order_by(t.c.FID).limit(1)).scalar()
        if fid is None:
            fid = uuid.uuid4().hex
            conn.execute(
                insert(t), [_inventory_row(fid, material_id, stock_id, lot_id, unit_id, _dec(delta), ts)]
            )
        else:
            conn.execute(
                update(t)
                .where(t.c.FID == fid)
                .values(FBASEQTY=t.c.FBASEQTY + _dec(delta), FQTY=t.c.FQTY + _dec(delta), FUPDATETIME=ts)
            )
        return str(fid)


def _inventory_row(
    fid: str,
    material_id: int,
    stock_id: int,
    lot_id: int,
    unit_id: int,
    qty: Decimal,
    ts: datetime,
    produce: datetime | None = None,
    expiry: datetime | None = None,
) -> dict[str, Any]:
    return {
        "FID": fid,
        "FSTOCKORGID": ORG_ID,
        "FKEEPERTYPEID": "BD_KeeperOrg",
        "FKEEPERID": ORG_ID,
        "FOWNERTYPEID": "BD_OwnerOrg",
        "FOWNERID": ORG_ID,
        "FSTOCKID": stock_id,
        "FSTOCKLOCID": 0,
        "FSTOCKSTATUSID": STOCK_STATUS_AVAILABLE,
        "FMATERIALID": material_id,
        "FLOT": lot_id,
        "FBASEUNITID": unit_id,
        "FBASEQTY": qty,
        "FBASELOCKQTY": Decimal(0),
        "FSTOCKUNITID": unit_id,
        "FQTY": qty,
        "FPRODUCEDATE": produce,
        "FEXPIRYDATE": expiry,
        "FUPDATETIME": ts,
    }


# --- the seed --------------------------------------------------------------------------------------------


class _IdPool:
    """Hands out ids per table from blocks reserved with ``next_ids`` (few round trips for large seeds)."""

    BLOCK = 500

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.free: dict[str, list[int]] = {}

    def take(self, table: str, n: int = 1) -> list[int]:
        free = self.free.setdefault(table, [])
        if len(free) < n:
            free.extend(m.next_ids(self.conn, table, max(self.BLOCK, n - len(free))))
        taken, self.free[table] = free[:n], free[n:]
        return taken

    def one(self, table: str) -> int:
        return self.take(table, 1)[0]


class _Rows(dict[str, list[dict[str, Any]]]):
    def add(self, rows: Mapping[str, Sequence[dict[str, Any]]]) -> None:
        for table, table_rows in rows.items():
            self.setdefault(table, []).extend(table_rows)


def _pick_status(rng: random.Random, weights: Mapping[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _guid(rng: random.Random) -> str:
    return uuid.UUID(int=rng.getrandbits(128), version=4).hex


def _price(rng: random.Random, low: float, high: float) -> Decimal:
    value = rng.uniform(low, high)
    step = Decimal("100") if value > 10000 else Decimal("0.5") if value > 20 else Decimal("0.01")
    return (Decimal(str(value)) / step).quantize(Decimal(1)) * step


def _material_catalogue(n: int) -> list[tuple[Product, str]]:
    """``n`` (product, specification) pairs, taking one specification of every product in turn."""
    pairs: list[tuple[Product, str]] = []
    depth = max(len(p.specs) for p in PRODUCTS)
    for i in range(depth):
        pairs.extend((p, p.specs[i]) for p in PRODUCTS if i < len(p.specs))
    if n <= len(pairs):
        return pairs[:n]
    extra = [(p, f"{spec} 定制{k}") for k in range(2, 2 + n // len(pairs) + 1) for p, spec in pairs]
    return (pairs + extra)[:n]


def _customer_profiles(rng: random.Random, n: int) -> list[dict[str, Any]]:
    """Hospitals (70 %) and distributors (30 %): name, short name, city, kind."""
    profiles: list[dict[str, Any]] = []
    cities = list(CITIES)
    hospitals = iter(HOSPITALS)
    generated = 0
    used_names: set[str] = set()
    for i in range(n):
        if i % 10 in (3, 6, 9):
            city = cities[i % len(cities)]
            for attempt in range(1000):
                word = _DISTRIBUTOR_WORDS[(i + attempt) % len(_DISTRIBUTOR_WORDS)]
                kind = _DISTRIBUTOR_KINDS[(i // len(cities) + attempt) % len(_DISTRIBUTOR_KINDS)]
                name = f"{city}{word}{kind}" if attempt < 100 else f"{city}{word}{attempt}{kind}"
                if name not in used_names:
                    break
            profiles.append({"name": name, "short": f"{city}{word}", "city": city, "kind": "KHLB003"})
        else:
            hospital = next(hospitals, None)
            if hospital is None:
                city = cities[generated % len(cities)]
                k = generated // len(cities)
                ordinal = _ORDINALS[k % 9] + ("" if k < 9 else str(k // 9 + 1))
                hospital = (f"{city}市第{ordinal}人民医院", f"{city}{ordinal}院", city)
                generated += 1
            kind = "KHLB002" if hospital[0].endswith("人民医院") and rng.random() < 0.1 else "KHLB001"
            name, short, city = hospital
            profiles.append({"name": name, "short": short, "city": city, "kind": kind})
        used_names.add(profiles[-1]["name"])
    return profiles


def _tax_code(rng: random.Random, kind: str, region: str) -> str:
    head = "12" if kind != "KHLB003" else "91"  # 事业单位 public institution vs. enterprise
    return head + region + "".join(rng.choice(_TAX_ALPHABET) for _ in range(10))


def seed(
    engine: Engine,
    *,
    materials: int = 50,
    customers: int = 20,
    orders: int = 30,
    seed: int = 42,
    lines_per_order: tuple[int, int] = (1, 5),
    outbound_share: float = 0.7,
    invoice_share: float = 0.6,
    receipt_share: float = 0.5,
    lots_per_material: tuple[int, int] = (1, 3),
    reset: bool = False,
) -> dict[str, Any]:
    """Create the schema if needed and fill it with a deterministic demo data set; returns a summary.

    Safe to call twice: when any Kingdee table already holds rows it inserts nothing and returns
    ``{"skipped": True, ...}`` with the current row counts, unless ``reset`` (empty every table with DELETE,
    restart ids, then seed). Shares: of audited orders, ``outbound_share`` get outbounds and ``receipt_share``
    receipts; of audited outbounds, ``invoice_share`` get an invoice (special or ordinary by the customer's
    invoice type). Volumes beyond the catalogue reuse names with 定制 variants and generated hospitals.
    """
    if materials < 1 or customers < 1 or orders < 0:
        raise ValueError("seed needs at least one material and one customer, and orders >= 0")
    if not 1 <= lines_per_order[0] <= lines_per_order[1]:
        raise ValueError("lines_per_order must be (low, high) with 1 <= low <= high")
    create_schema(engine)
    with engine.begin() as conn:
        existing = count_rows(conn)
        if any(n for name, n in existing.items() if name != m.T_SEC_USER.name):  # users: reference data
            if not reset:
                return {"skipped": True, "rows": existing}
            for name in reversed(CAPTURED_TABLES):
                conn.execute(delete(TABLES[name]))
            m.restart_ids(conn)
        ensure_users(conn, SEED_NOW)
        summary = _DemoSet(conn, random.Random(seed), lots_per_material).build(
            materials, customers, orders, lines_per_order, outbound_share, invoice_share, receipt_share
        )
        summary["rows"] = count_rows(conn)
    return {"skipped": False, "seed": seed, **summary}


class _DemoSet:
    """Builds the demo rows in memory (ids reserved up front), then inserts them table by table."""

    def __init__(self, conn: Connection, rng: random.Random, lots_per_material: tuple[int, int]) -> None:
        self.conn = conn
        self.rng = rng
        self.ids = _IdPool(conn)
        self.rows = _Rows()
        self.lots_per_material = lots_per_material
        self.unit_ids: dict[str, int] = {}
        self.group_ids: dict[str, int] = {}
        self.stock_ids: list[int] = []
        self.cust_type_ids: dict[str, str] = {}
        self.materials: list[dict[str, Any]] = []
        self.customers: list[dict[str, Any]] = []
        self.stock_by_material: dict[int, list[dict[str, Any]]] = {}
        self.bill_seq = {table: 0 for table in BILL_PREFIX}

    def _bill_no(self, table: str) -> str:
        prefix, width = BILL_PREFIX[table]
        self.bill_seq[table] += 1
        return f"{prefix}{self.bill_seq[table]:0{width}d}"

    def _days_ago(self, low: int, high: int) -> datetime:
        return SEED_NOW - timedelta(days=self.rng.randint(low, high), minutes=self.rng.randint(0, 600))

    def build(
        self,
        materials: int,
        customers: int,
        orders: int,
        lines_per_order: tuple[int, int],
        outbound_share: float,
        invoice_share: float,
        receipt_share: float,
    ) -> dict[str, Any]:
        self._basedata()
        self._materials(materials)
        self._customers(customers)
        self._lots_and_inventory()
        order_docs = self._orders(orders, lines_per_order)
        outbounds = self._outbounds(order_docs, outbound_share)
        invoices = self._invoices(outbounds, invoice_share)
        receipts = self._receipts(order_docs, receipt_share)
        _insert_rows(self.conn, self.rows)
        return {
            "materials": len(self.materials),
            "customers": len(self.customers),
            "orders": len(order_docs),
            "order_lines": sum(len(o["lines"]) for o in order_docs),
            "outbounds": len(outbounds),
            "outbound_lines": sum(len(o["lines"]) for o in outbounds),
            "invoices_special": invoices["T_IV_SALESIC"],
            "invoices_ordinary": invoices["T_IV_SALESOC"],
            "receipts": receipts,
            "lots": len(self.rows.get("T_BD_LOTMASTER", [])),
            "inventory_rows": len(self.rows.get("T_STK_INVENTORY", [])),
        }

    # basedata ---------------------------------------------------------------------------------------------
    def _basedata(self) -> None:
        created = SEED_NOW - timedelta(days=400)
        common = {
            "FCREATEORGID": ORG_ID,
            "FUSEORGID": ORG_ID,
            **_audit("C", created, created, None, DEMO_USER_ID),
        }
        for number, name, precision in UNITS:
            unit_id = self.ids.one("T_BD_UNIT")
            self.unit_ids[number] = unit_id
            self.rows.add(
                {
                    "T_BD_UNIT": [
                        {
                            "FUNITID": unit_id,
                            "FNUMBER": number,
                            "FMASTERID": unit_id,
                            **common,
                            "FPRECISION": precision,
                        }
                    ],
                    "T_BD_UNIT_L": [
                        {
                            "FPKID": self.ids.one("T_BD_UNIT_L"),
                            "FUNITID": unit_id,
                            "FLOCALEID": LOCALE_ZH_CN,
                            "FNAME": name,
                        }
                    ],
                }
            )
        for number, name, parent in MATERIAL_GROUPS:
            group_id = self.ids.one("T_BD_MATERIALGROUP")
            self.group_ids[number] = group_id
            self.rows.add(
                {
                    "T_BD_MATERIALGROUP": [
                        {
                            "FID": group_id,
                            "FNUMBER": number,
                            "FPARENTID": self.group_ids[parent] if parent else 0,
                            "FCREATEDATE": created,
                            "FMODIFYDATE": created,
                        }
                    ],
                    "T_BD_MATERIALGROUP_L": [
                        {
                            "FPKID": self.ids.one("T_BD_MATERIALGROUP_L"),
                            "FID": group_id,
                            "FLOCALEID": LOCALE_ZH_CN,
                            "FNAME": name,
                            "FDESCRIPTION": " ",
                        }
                    ],
                }
            )
        for number, name in WAREHOUSES:
            stock_id = self.ids.one("T_BD_STOCK")
            self.stock_ids.append(stock_id)
            self.rows.add(
                {
                    "T_BD_STOCK": [
                        {
                            "FSTOCKID": stock_id,
                            "FNUMBER": number,
                            "FMASTERID": stock_id,
                            **common,
                            "FSTOCKPROPERTY": "1",
                        }
                    ],
                    "T_BD_STOCK_L": [
                        {
                            "FPKID": self.ids.one("T_BD_STOCK_L"),
                            "FSTOCKID": stock_id,
                            "FLOCALEID": LOCALE_ZH_CN,
                            "FNAME": name,
                            "FDESCRIPTION": " ",
                        }
                    ],
                }
            )
        for seq, (number, name) in enumerate(CUSTOMER_TYPES, start=1):
            entry_id = _guid(self.rng)
            self.cust_type_ids[number] = entry_id
            self.rows.add(
                {
                    "T_BAS_ASSISTANTDATAENTRY": [
                        {
                            "FENTRYID": entry_id,
                            "FID": CUSTOMER_TYPE_LIST_ID,
                            "FNUMBER": number,
                            "FSEQ": seq,
                            "FDOCUMENTSTATUS": "C",
                            "FFORBIDSTATUS": "A",
                            "FCREATEDATE": created,
                            "FMODIFYDATE": created,
                        }
                    ],
                    "T_BAS_ASSISTANTDATAENTRY_L": [
                        {
                            "FPKID": _guid(self.rng),
                            "FENTRYID": entry_id,
                            "FLOCALEID": LOCALE_ZH_CN,
                            "FDATAVALUE": name,
                            "FDESCRIPTION": " ",
                        }
                    ],
                }
            )

    def _materials(self, n: int) -> None:
        per_group: dict[str, int] = {}
        for i, (product, spec) in enumerate(_material_catalogue(n)):
            per_group[product.group] = per_group.get(product.group, 0) + 1
            number = f"{product.group}.{per_group[product.group]:04d}"
            status = _pick_status(self.rng, {"C": 0.86, "A": 0.06, "B": 0.04, "D": 0.02, "Z": 0.02})
            forbid = "B" if status == "C" and self.rng.random() < 0.05 else "A"
            if n >= 10:  # a few in each other state whatever the random draw
                status, forbid = {3: ("A", "A"), 7: ("B", "A"), 8: ("C", "B")}.get(i, (status, forbid))
            created = self._days_ago(200, 380)
            modified = created + timedelta(days=self.rng.randint(0, 150), minutes=self.rng.randint(0, 600))
            unit_id = self.unit_ids[product.unit]
            material_id = self.ids.one("T_BD_MATERIAL")
            self.rows.add(
                _material_rows(
                    (material_id, self.ids.one("T_BD_MATERIAL_L"), self.ids.one("T_BD_MATERIALBASE")),
                    number,
                    product.name,
                    spec,
                    status=status,
                    forbid=forbid,
                    group_id=self.group_ids[product.group],
                    base_unit_id=unit_id,
                    description=f"{product.name}，{spec}",
                    barcode=f"0697{self.rng.randrange(10**10):010d}",
                    created=created,
                    modified=modified,
                    user=DEMO_USER_ID,
                )
            )
            self.materials.append(
                {
                    "id": material_id,
                    "product": product,
                    "unit_id": unit_id,
                    "price": _price(self.rng, *product.price),
                    "sellable": status == "C" and forbid == "A",
                }
            )

    def _customers(self, n: int) -> None:
        for i, profile in enumerate(_customer_profiles(self.rng, n)):
            area, region = CITIES[profile["city"]]
            status = _pick_status(self.rng, {"C": 0.9, "A": 0.06, "B": 0.04})
            forbid = "B" if status == "C" and self.rng.random() < 0.04 else "A"
            if n >= 10:
                status, forbid = {5: ("A", "A"), 8: ("C", "B")}.get(i, (status, forbid))
            distributor = profile["kind"] == "KHLB003"
            invoice_type = "1" if distributor else "2"
            created = self._days_ago(250, 390)
            cust_id = self.ids.one("T_BD_CUSTOMER")
            phone = f"{area}-{self.rng.randrange(2 * 10**7, 9 * 10**7)}"
            address = f"{profile['city']}市{self.rng.choice(_ROADS)}{self.rng.randint(1, 399)}号"
            self.rows.add(
                _customer_rows(
                    (cust_id, self.ids.one("T_BD_CUSTOMER_L")),
                    f"CUST{i + 1:04d}",
                    profile["name"],
                    profile["short"],
                    status=status,
                    forbid=forbid,
                    cust_type_id=self.cust_type_ids[profile["kind"]],
                    invoice_type=invoice_type,
                    tel=phone,
                    address=address,
                    tax_code=_tax_code(self.rng, profile["kind"], region),
                    seller_id=self.rng.choice(SALESMEN),
                    created=created,
                    modified=created + timedelta(days=self.rng.randint(0, 200)),
                    user=DEMO_USER_ID,
                )
            )
            self.customers.append(
                {"id": cust_id, "invoice_type": invoice_type, "active": status == "C" and forbid == "A"}
            )

    def _lots_and_inventory(self) -> None:
        for mat in self.materials:
            equipment = mat["product"].is_equipment
            warehouses = self.rng.sample(self.stock_ids, k=self.rng.randint(1, min(3, len(self.stock_ids))))
            lots: list[tuple[int, str, datetime | None, datetime | None]] = []
            if equipment:
                lots.append((0, " ", None, None))  # equipment is serial-numbered, not lot-managed
            else:
                for k in range(self.rng.randint(*self.lots_per_material)):
                    produced = (SEED_NOW - timedelta(days=self.rng.randint(20, 500))).replace(
                        hour=0, minute=0
                    )
                    expiry = produced + timedelta(days=3 * 365)  # 3-year shelf life of sterile consumables
                    lot_id = self.ids.one("T_BD_LOTMASTER")
                    lot_no = f"{produced:%y%m%d}{k + 1:02d}"
                    self.rows.add(
                        {
                            "T_BD_LOTMASTER": [
                                {
                                    "FLOTID": lot_id,
                                    "FNUMBER": lot_no,
                                    "FMATERIALID": mat["id"],
                                    "FCREATEORGID": ORG_ID,
                                    "FUSEORGID": ORG_ID,
                                    "FDOCUMENTSTATUS": "C",
                                    "FFORBIDSTATUS": "A",
                                    "FPRODUCEDATE": produced,
                                    "FEXPIRYDATE": expiry,
                                    "FCREATEDATE": produced,
                                    "FMODIFYDATE": produced,
                                }
                            ]
                        }
                    )
                    lots.append((lot_id, lot_no, produced, expiry))
            places = []
            for stock_id in warehouses:
                for lot_id, lot_no, made, expires in lots:
                    qty = Decimal(self.rng.randint(0, 8) if equipment else self.rng.randrange(0, 5000, 10))
                    updated = self._days_ago(0, 60)
                    row = _inventory_row(
                        _guid(self.rng),
                        mat["id"],
                        stock_id,
                        lot_id,
                        mat["unit_id"],
                        qty,
                        updated,
                        made,
                        expires,
                    )
                    self.rows.add({"T_STK_INVENTORY": [row]})
                    places.append(
                        {
                            "stock_id": stock_id,
                            "lot_id": lot_id,
                            "lot_no": lot_no,
                            "produced": made,
                            "expiry": expires,
                        }
                    )
            self.stock_by_material[mat["id"]] = places

    # bills ------------------------------------------------------------------------------------------------
    def _orders(self, n: int, lines_per_order: tuple[int, int]) -> list[dict[str, Any]]:
        sellable = [mat for mat in self.materials if mat["sellable"]] or self.materials
        buyers = [c for c in self.customers if c["active"]] or self.customers
        # consumables sell six times as often as equipment
        cum_weights = list(accumulate(1 if mat["product"].is_equipment else 6 for mat in sellable))
        docs = []
        for _ in range(n):
            customer = self.rng.choice(buyers)
            k = min(self.rng.randint(*lines_per_order), len(sellable))
            chosen: dict[int, dict[str, Any]] = {}
            while len(chosen) < k:
                mat = self.rng.choices(sellable, cum_weights=cum_weights)[0]
                chosen.setdefault(mat["id"], mat)
            date = self._days_ago(5, 120).replace(hour=0, minute=0, second=0)
            lines = []
            for mat in chosen.values():
                equipment = mat["product"].is_equipment
                qty = self.rng.randint(1, 3) if equipment else self.rng.randrange(20, 2001, 10)
                discount = Decimal(self.rng.choice(("1", "1", "0.98", "0.95", "0.9")))
                lines.append(
                    OrderLine(
                        mat["id"],
                        Decimal(qty),
                        _cents(mat["price"] * discount),
                        unit_id=mat["unit_id"],
                        delivery_date=date + timedelta(days=self.rng.randint(3, 30)),
                    )
                )
            status = _pick_status(self.rng, {"C": 0.78, "A": 0.08, "B": 0.06, "D": 0.04, "Z": 0.04})
            cancel = "B" if status in ("A", "Z") and self.rng.random() < 0.2 else "A"
            created = date + timedelta(hours=self.rng.randint(8, 18), minutes=self.rng.randint(0, 59))
            modified = created + timedelta(hours=self.rng.randint(0, 30))
            fid, entry_ids = self.ids.one("T_SAL_ORDER"), self.ids.take("T_SAL_ORDERENTRY", len(lines))
            bill_no = self._bill_no("T_SAL_ORDER")
            rows = _order_rows(
                fid,
                self.ids.one("T_SAL_ORDERFIN"),
                entry_ids,
                bill_no,
                customer["id"],
                lines,
                date=date,
                status=status,
                close_status="A",
                cancel_status=cancel,
                saler_id=self.rng.choice(SALESMEN),
                note=" ",
                created=created,
                modified=modified,
                user=DEMO_USER_ID,
            )
            self.rows.add(rows)
            docs.append(
                {
                    "fid": fid,
                    "bill_no": bill_no,
                    "customer": customer,
                    "date": date,
                    "status": status,
                    "cancel": cancel,
                    "modified": modified,
                    "header": rows["T_SAL_ORDER"][0],
                    "fin": rows["T_SAL_ORDERFIN"][0],
                    "lines": [
                        {"entry": e, "f": f, "r": r}
                        for e, f, r in zip(
                            rows["T_SAL_ORDERENTRY"],
                            rows["T_SAL_ORDERENTRY_F"],
                            rows["T_SAL_ORDERENTRY_R"],
                            strict=True,
                        )
                    ],
                }
            )
        return docs

    def _outbounds(self, order_docs: list[dict[str, Any]], share: float) -> list[dict[str, Any]]:
        docs = []
        for order in order_docs:
            if order["status"] != "C" or order["cancel"] != "A" or self.rng.random() >= share:
                continue
            rounds = 2 if self.rng.random() < 0.3 else 1
            for round_no in range(rounds):
                last = round_no == rounds - 1
                out_lines = []
                for line in order["lines"]:
                    remain = line["r"]["FREMAINOUTQTY"]
                    if remain <= 0:
                        continue
                    qty = remain if last else max(Decimal(1), (remain * Decimal("0.5")).to_integral_value())
                    place = self.rng.choice(self.stock_by_material[line["entry"]["FMATERIALID"]])
                    out_lines.append(
                        OutstockLine(
                            line["entry"]["FENTRYID"],
                            qty,
                            stock_id=place["stock_id"],
                            lot_id=place["lot_id"],
                            lot_text=place["lot_no"],
                            produce_date=place["produced"],
                            expiry_date=place["expiry"],
                        )
                    )
                if not out_lines:
                    break
                date = min(order["date"] + timedelta(days=self.rng.randint(1, 10) + 7 * round_no), SEED_NOW)
                date = date.replace(hour=0, minute=0, second=0)
                status = _pick_status(self.rng, {"C": 0.86, "A": 0.08, "B": 0.06})
                created = date + timedelta(hours=self.rng.randint(8, 18), minutes=self.rng.randint(0, 59))
                modified = created + timedelta(hours=self.rng.randint(0, 6))
                fid = self.ids.one("T_SAL_OUTSTOCK")
                src = {ln["entry"]["FENTRYID"]: {**ln["entry"], **ln["f"]} for ln in order["lines"]}
                rows = _outstock_rows(
                    fid,
                    self.ids.one("T_SAL_OUTSTOCKFIN"),
                    self.ids.take("T_SAL_OUTSTOCKENTRY", len(out_lines)),
                    self._bill_no("T_SAL_OUTSTOCK"),
                    order["bill_no"],
                    order["customer"]["id"],
                    out_lines,
                    src,
                    date=date,
                    status=status,
                    salesman_id=order["header"]["FSALERID"],
                    carriage_no=f"SF{self.rng.randrange(10**12, 10**13)}",
                    created=created,
                    modified=modified,
                    user=DEMO_USER_ID,
                )
                self.rows.add(rows)
                if status == "C":  # 反写 to the order's progress
                    by_entry = {ln["entry"]["FENTRYID"]: ln["r"] for ln in order["lines"]}
                    for out in out_lines:
                        progress = by_entry[out.so_entry_id]
                        qty = _dec(out.qty)
                        progress["FSTOCKOUTQTY"] += qty
                        progress["FBASESTOCKOUTQTY"] += qty
                        progress["FREMAINOUTQTY"] -= qty
                    if all(ln["r"]["FREMAINOUTQTY"] <= 0 for ln in order["lines"]):
                        order["header"].update(FCLOSESTATUS="B", FCLOSERID=DEMO_USER_ID, FCLOSEDATE=modified)
                docs.append(
                    {
                        "fid": fid,
                        "status": status,
                        "date": date,
                        "customer": order["customer"],
                        "header": rows["T_SAL_OUTSTOCK"][0],
                        "lines": list(
                            zip(rows["T_SAL_OUTSTOCKENTRY"], rows["T_SAL_OUTSTOCKENTRY_F"], strict=True)
                        ),
                    }
                )
                if status != "C":
                    break  # an unaudited outbound wrote nothing back; do not deliver the same lines twice
        return docs

    def _invoices(self, outbounds: list[dict[str, Any]], share: float) -> dict[str, int]:
        counts = {"T_IV_SALESIC": 0, "T_IV_SALESOC": 0}
        chosen = [o for o in outbounds if o["status"] == "C" and self.rng.random() < share]
        kinds = []
        for out in chosen:
            special = out["customer"]["invoice_type"] == "1"
            if self.rng.random() < 0.15:
                special = not special  # a hospital that asks for a special invoice, or the reverse
            kinds.append("T_IV_SALESIC" if special else "T_IV_SALESOC")
        if len(kinds) >= 2 and len(set(kinds)) == 1:  # show both kinds whenever there are two invoices
            kinds[-1] = "T_IV_SALESOC" if kinds[-1] == "T_IV_SALESIC" else "T_IV_SALESIC"
        for out, table in zip(chosen, kinds, strict=True):
            date = min(out["date"] + timedelta(days=self.rng.randint(0, 15)), SEED_NOW).replace(
                hour=0, minute=0
            )
            created = date + timedelta(hours=self.rng.randint(9, 17))
            fid = self.ids.one(table)
            entry_ids = self.ids.take(f"{table}ENTRY", len(out["lines"]))
            entries, total = [], Decimal(0)
            for seq, (entry_id, (entry, fin)) in enumerate(
                zip(entry_ids, out["lines"], strict=True), start=1
            ):
                total += fin["FALLAMOUNT"]
                entries.append(
                    {
                        "FENTRYID": entry_id,
                        "FID": fid,
                        "FSEQ": seq,
                        "FMATERIALID": entry["FMATERIALID"],
                        "FPRICEUNITID": entry["FUNITID"],
                        "FPRICEQTY": entry["FREALQTY"],
                        "FPRICE": fin["FPRICE"],
                        "FTAXPRICE": fin["FTAXPRICE"],
                        "FTAXRATE": fin["FTAXRATE"],
                        "FAMOUNTFOR": fin["FAMOUNT"],
                        "FALLAMOUNTFOR": fin["FALLAMOUNT"],
                        "FSRCBILLTYPEID": "SAL_OUTSTOCK",
                        "FSRCBILLNO": out["header"]["FBILLNO"],
                        "FSRCROWID": entry["FENTRYID"],
                    }
                )
            status = _pick_status(self.rng, {"C": 0.9, "A": 0.1})
            self.rows.add(
                {
                    table: [
                        {
                            "FID": fid,
                            "FBILLNO": self._bill_no(table),
                            "FBILLTYPEID": " ",
                            "FDATE": date,
                            **_audit(status, created, created, None, DEMO_USER_ID),
                            "FCANCELSTATUS": "A",
                            "FCUSTOMERID": out["customer"]["id"],
                            "FSETTLEORGID": ORG_ID,
                            "FSALEORGID": ORG_ID,
                            "FCURRENCYID": CURRENCY_CNY,
                            "FINVOICENO": f"{self.rng.randrange(10**8):08d}",
                            "FINVOICECODE": str(self.rng.randrange(10**9, 10**10))
                            if table == "T_IV_SALESIC"
                            else str(self.rng.randrange(10**11, 10**12)),
                            "FAFTERTOTALTAXFOR": total,
                        }
                    ],
                    f"{table}ENTRY": entries,
                }
            )
            counts[table] += 1
        return counts

    def _receipts(self, order_docs: list[dict[str, Any]], share: float) -> int:
        count = 0
        for order in order_docs:
            if order["status"] != "C" or order["cancel"] != "A" or self.rng.random() >= share:
                continue
            total = order["fin"]["FBILLALLAMOUNT"]
            ratio = Decimal(1) if self.rng.random() < 0.6 else Decimal(self.rng.choice(("0.3", "0.5", "0.8")))
            amount = _cents(total * ratio)
            date = min(order["date"] + timedelta(days=self.rng.randint(3, 60)), SEED_NOW)
            date = date.replace(hour=0, minute=0, second=0)
            created = date + timedelta(hours=self.rng.randint(9, 17))
            status = _pick_status(self.rng, {"C": 0.85, "A": 0.1, "B": 0.05})
            fid = self.ids.one("T_AR_RECEIVEBILL")
            cust = order["customer"]["id"]
            self.rows.add(
                {
                    "T_AR_RECEIVEBILL": [
                        {
                            "FID": fid,
                            "FBILLNO": self._bill_no("T_AR_RECEIVEBILL"),
                            "FBILLTYPEID": BILL_TYPE_RECEIPT,
                            "FDATE": date,
                            **_audit(status, created, created, None, DEMO_USER_ID),
                            "FCANCELSTATUS": "A",
                            "FCONTACTUNITTYPE": "BD_Customer",
                            "FCONTACTUNIT": cust,
                            "FPAYUNITTYPE": "BD_Customer",
                            "FPAYUNIT": cust,
                            "FCURRENCYID": CURRENCY_CNY,
                            "FSETTLEORGID": ORG_ID,
                            "FPAYORGID": ORG_ID,
                            "FSALEORGID": ORG_ID,
                            "FSALEDEPTID": SALES_DEPT_ID,
                            "FRECEIVEAMOUNTFOR": amount,
                            "FRECEIVEAMOUNT": amount,
                        }
                    ],
                    "T_AR_RECEIVEBILLENTRY": [
                        {
                            "FENTRYID": self.ids.one("T_AR_RECEIVEBILLENTRY"),
                            "FID": fid,
                            "FSEQ": 1,
                            "FSETTLETYPEID": SETTLE_TYPE_WIRE,
                            "FPURPOSEID": PURPOSE_SALES,
                            "FACCOUNTID": 0,
                            "FRECTOTALAMOUNTFOR": amount,
                            "FREALRECAMOUNTFOR": amount,
                            "FREALRECAMOUNT": amount,
                            "FSALEORDERNO": order["bill_no"],
                            "FSALEORDERID": order["fid"],
                        }
                    ],
                    "T_AR_RECEIVEBILLSRCENTRY": [
                        {
                            "FENTRYID": self.ids.one("T_AR_RECEIVEBILLSRCENTRY"),
                            "FID": fid,
                            "FSEQ": 1,
                            "FSRCBILLTYPEID": "SAL_SaleOrder",
                            "FSRCBILLNO": order["bill_no"],
                            "FSRCBILLID": order["fid"],
                            "FSRCROWID": 0,
                            "FORDERBILLNO": order["bill_no"],
                            "FAFTTAXTOTALAMOUNT": total,
                            "FREALRECAMOUNT": amount,
                        }
                    ],
                }
            )
            count += 1
        return count
