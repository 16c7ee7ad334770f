"""The demo database: ``seed`` fills an empty Kingdee database with a deterministic demo data set.

A medical-device maker of anaesthesia and respiratory products (the catalogue: ``catalogue/*.toml``). The same
``seed``, volumes and catalogue give the same rows and, on a fresh database, the same ids: units, material groups,
warehouses, customer types, materials with lots and inventory, hospital and distributor customers, sales orders,
outbounds linked line by line to their orders (``FSOORDERNO``/``FSOENTRYID``), VAT special and ordinary invoices
linked to outbound lines, and receipts naming their source orders. Names are Chinese, as a Chinese ERP holds them.
The hospitals are real institutions (names only); distributors, addresses, phone numbers, tax codes and product
models are invented. The rows follow the ERP's rules (``infra.simulators.kingdee.erp``).

Pitfalls: the seed commits as **one transaction** (atomic: a failed seed leaves nothing); a replication slot
that exists before the seed sees one large transaction. ``reset=True`` empties the tables with DELETE
(captured as deletes) and restarts the ids. Inventory rows are a separate snapshot: outbounds do not
decrement them.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import accumulate
from typing import Any

from sqlalchemy import Connection, Engine, delete

from connectors.kingdee import models as m
from connectors.kingdee.models import CAPTURED_TABLES, LOCALE_ZH_CN, TABLES, create_schema
from infra.simulators.kingdee.catalogue import Catalogue, Product, demo_catalogue
from infra.simulators.kingdee.erp.amounts import cents, to_decimal
from infra.simulators.kingdee.erp.bill_numbers import BILL_PREFIX, format_bill_no
from infra.simulators.kingdee.erp.company import (
    BILL_TYPE_RECEIPT,
    CURRENCY_CNY,
    CUSTOMER_TYPE_LIST_ID,
    DEMO_USER_ID,
    ORG_ID,
    PURPOSE_SALES,
    SALES_DEPT_ID,
    SALESMEN,
    SETTLE_TYPE_WIRE,
)
from infra.simulators.kingdee.erp.customers import customer_rows
from infra.simulators.kingdee.erp.documents import count_rows
from infra.simulators.kingdee.erp.inventory import inventory_row
from infra.simulators.kingdee.erp.materials import material_rows
from infra.simulators.kingdee.erp.outstocks import OutstockLine, outstock_rows
from infra.simulators.kingdee.erp.sales_orders import OrderLine, order_rows
from infra.simulators.kingdee.erp.status import audit_columns
from infra.simulators.kingdee.erp.transaction import insert_rows
from infra.simulators.kingdee.erp.users import ensure_users

SEED_NOW = datetime(2025, 6, 30, 18, 0, 0)
"""The wall clock of the seeded data set: all seeded dates lie before it (Kingdee stores China local time)."""
TAX_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
"""The characters of a 统一社会信用代码 (unified social credit code, the tax id)."""


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
    catalogue: Catalogue | None = None,
) -> dict[str, Any]:
    """Create the schema if needed and fill it with a deterministic demo data set; returns a summary.

    Safe to call twice: when any Kingdee table already holds rows it inserts nothing and returns
    ``{"skipped": True, ...}`` with the current row counts, unless ``reset`` (empty every table with DELETE,
    restart ids, then seed). Shares: of audited orders, ``outbound_share`` get outbounds and ``receipt_share``
    receipts; of audited outbounds, ``invoice_share`` get an invoice (special or ordinary by the customer's
    invoice type). Volumes beyond the catalogue reuse names with 定制 variants and generated hospitals.
    ``catalogue`` defaults to the installed one (``catalogue/*.toml``).
    """
    if materials < 1 or customers < 1 or orders < 0:
        raise ValueError("seed needs at least one material and one customer, and orders >= 0")
    if not 1 <= lines_per_order[0] <= lines_per_order[1]:
        raise ValueError("lines_per_order must be (low, high) with 1 <= low <= high")
    catalogue = catalogue or demo_catalogue()
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
        summary = _DemoSet(conn, random.Random(seed), lots_per_material, catalogue).build(
            materials, customers, orders, lines_per_order, outbound_share, invoice_share, receipt_share
        )
        summary["rows"] = count_rows(conn)
    return {"skipped": False, "seed": seed, **summary}


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


def _material_catalogue(products: Sequence[Product], n: int) -> list[tuple[Product, str]]:
    """``n`` (product, specification) pairs, taking one specification of every product in turn."""
    pairs: list[tuple[Product, str]] = []
    depth = max(len(p.specs) for p in products)
    for i in range(depth):
        pairs.extend((p, p.specs[i]) for p in products if i < len(p.specs))
    if n <= len(pairs):
        return pairs[:n]
    extra = [(p, f"{spec} 定制{k}") for k in range(2, 2 + n // len(pairs) + 1) for p, spec in pairs]
    return (pairs + extra)[:n]


def _customer_profiles(rng: random.Random, n: int, catalogue: Catalogue) -> list[dict[str, Any]]:
    """Hospitals (70 %) and distributors (30 %): name, short name, city, kind (the customer type's number)."""
    people = catalogue.customers
    words, kinds = people.distributors.words, people.distributors.kinds
    ordinals = people.generated_hospitals.ordinals
    distributor = catalogue.customer_type("distributor")
    private, public = catalogue.customer_type("private_hospital"), catalogue.customer_type("public_hospital")
    profiles: list[dict[str, Any]] = []
    cities = [c.name for c in people.city]
    hospitals = iter((h.name, h.short_name, h.city) for h in people.hospital)
    generated = 0
    used_names: set[str] = set()
    for i in range(n):
        if i % 10 in (3, 6, 9):
            city = cities[i % len(cities)]
            for attempt in range(1000):
                word = words[(i + attempt) % len(words)]
                kind = kinds[(i // len(cities) + attempt) % len(kinds)]
                name = f"{city}{word}{kind}" if attempt < 100 else f"{city}{word}{attempt}{kind}"
                if name not in used_names:
                    break
            profiles.append({"name": name, "short": f"{city}{word}", "city": city, "kind": distributor})
        else:
            hospital = next(hospitals, None)
            if hospital is None:
                city = cities[generated % len(cities)]
                k = generated // len(cities)
                ordinal = ordinals[k % 9] + ("" if k < 9 else str(k // 9 + 1))
                hospital = (f"{city}市第{ordinal}人民医院", f"{city}{ordinal}院", city)
                generated += 1
            kind = private if hospital[0].endswith("人民医院") and rng.random() < 0.1 else public
            name, short, city = hospital
            profiles.append({"name": name, "short": short, "city": city, "kind": kind})
        used_names.add(profiles[-1]["name"])
    return profiles


def _tax_code(rng: random.Random, enterprise: bool, region: str) -> str:
    head = "91" if enterprise else "12"  # enterprise vs. 事业单位 public institution
    return head + region + "".join(rng.choice(TAX_ALPHABET) for _ in range(10))


class _DemoSet:
    """Builds the demo rows in memory (ids reserved up front), then inserts them table by table."""

    def __init__(
        self, conn: Connection, rng: random.Random, lots_per_material: tuple[int, int], catalogue: Catalogue
    ) -> None:
        self.conn = conn
        self.rng = rng
        self.catalogue = catalogue
        self.equipment_groups = catalogue.equipment_groups()
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
        self.bill_seq[table] += 1
        return format_bill_no(table, self.bill_seq[table])

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
        insert_rows(self.conn, self.rows)
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
        basedata = self.catalogue.basedata
        created = SEED_NOW - timedelta(days=400)
        common = {
            "FCREATEORGID": ORG_ID,
            "FUSEORGID": ORG_ID,
            **audit_columns("C", created, created, None, DEMO_USER_ID),
        }
        for unit in basedata.unit:
            unit_id = self.ids.one("T_BD_UNIT")
            self.unit_ids[unit.number] = unit_id
            self.rows.add(
                {
                    "T_BD_UNIT": [
                        {
                            "FUNITID": unit_id,
                            "FNUMBER": unit.number,
                            "FMASTERID": unit_id,
                            **common,
                            "FPRECISION": unit.precision,
                        }
                    ],
                    "T_BD_UNIT_L": [
                        {
                            "FPKID": self.ids.one("T_BD_UNIT_L"),
                            "FUNITID": unit_id,
                            "FLOCALEID": LOCALE_ZH_CN,
                            "FNAME": unit.name,
                        }
                    ],
                }
            )
        for group in basedata.material_group:
            group_id = self.ids.one("T_BD_MATERIALGROUP")
            self.group_ids[group.number] = group_id
            self.rows.add(
                {
                    "T_BD_MATERIALGROUP": [
                        {
                            "FID": group_id,
                            "FNUMBER": group.number,
                            "FPARENTID": self.group_ids[group.parent] if group.parent else 0,
                            "FCREATEDATE": created,
                            "FMODIFYDATE": created,
                        }
                    ],
                    "T_BD_MATERIALGROUP_L": [
                        {
                            "FPKID": self.ids.one("T_BD_MATERIALGROUP_L"),
                            "FID": group_id,
                            "FLOCALEID": LOCALE_ZH_CN,
                            "FNAME": group.name,
                            "FDESCRIPTION": " ",
                        }
                    ],
                }
            )
        for warehouse in basedata.warehouse:
            stock_id = self.ids.one("T_BD_STOCK")
            self.stock_ids.append(stock_id)
            self.rows.add(
                {
                    "T_BD_STOCK": [
                        {
                            "FSTOCKID": stock_id,
                            "FNUMBER": warehouse.number,
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
                            "FNAME": warehouse.name,
                            "FDESCRIPTION": " ",
                        }
                    ],
                }
            )
        for seq, cust_type in enumerate(basedata.customer_type, start=1):
            entry_id = _guid(self.rng)
            self.cust_type_ids[cust_type.number] = entry_id
            self.rows.add(
                {
                    "T_BAS_ASSISTANTDATAENTRY": [
                        {
                            "FENTRYID": entry_id,
                            "FID": CUSTOMER_TYPE_LIST_ID,
                            "FNUMBER": cust_type.number,
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
                            "FDATAVALUE": cust_type.name,
                            "FDESCRIPTION": " ",
                        }
                    ],
                }
            )

    def _materials(self, n: int) -> None:
        per_group: dict[str, int] = {}
        for i, (product, spec) in enumerate(_material_catalogue(self.catalogue.products.product, n)):
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
                material_rows(
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
                    "equipment": product.group in self.equipment_groups,
                    "unit_id": unit_id,
                    "price": _price(self.rng, *product.price),
                    "sellable": status == "C" and forbid == "A",
                }
            )

    def _customers(self, n: int) -> None:
        cities = {c.name: (c.phone_area, c.tax_region) for c in self.catalogue.customers.city}
        roads = self.catalogue.customers.addresses.roads
        distributor_type = self.catalogue.customer_type("distributor")
        for i, profile in enumerate(_customer_profiles(self.rng, n, self.catalogue)):
            area, region = cities[profile["city"]]
            status = _pick_status(self.rng, {"C": 0.9, "A": 0.06, "B": 0.04})
            forbid = "B" if status == "C" and self.rng.random() < 0.04 else "A"
            if n >= 10:
                status, forbid = {5: ("A", "A"), 8: ("C", "B")}.get(i, (status, forbid))
            distributor = profile["kind"] == distributor_type
            invoice_type = "1" if distributor else "2"
            created = self._days_ago(250, 390)
            cust_id = self.ids.one("T_BD_CUSTOMER")
            phone = f"{area}-{self.rng.randrange(2 * 10**7, 9 * 10**7)}"
            address = f"{profile['city']}市{self.rng.choice(roads)}{self.rng.randint(1, 399)}号"
            self.rows.add(
                customer_rows(
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
                    tax_code=_tax_code(self.rng, distributor, region),
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
            equipment = mat["equipment"]
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
                    row = inventory_row(
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
        cum_weights = list(accumulate(1 if mat["equipment"] else 6 for mat in sellable))
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
                qty = self.rng.randint(1, 3) if mat["equipment"] else self.rng.randrange(20, 2001, 10)
                discount = Decimal(self.rng.choice(("1", "1", "0.98", "0.95", "0.9")))
                lines.append(
                    OrderLine(
                        mat["id"],
                        Decimal(qty),
                        cents(mat["price"] * discount),
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
            rows = order_rows(
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
                rows = outstock_rows(
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
                        qty = to_decimal(out.qty)
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
                            **audit_columns(status, created, created, None, DEMO_USER_ID),
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
            amount = cents(total * ratio)
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
                            **audit_columns(status, created, created, None, DEMO_USER_ID),
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
