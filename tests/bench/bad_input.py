"""Bad input, one kind at a time, each with the outcome a user of the system expects — run by ``make chaos`` after
its campaign, against the same running installation, and printed as a table.

Outcomes: **synced** (it reaches the target, as shown), **dead-lettered** (on the flow's dead-letter topic with a
reason naming the problem; the rest flows), **not sent** (a rule keeps it out of the target: a draft, a deletion
in the CRM), **put back** (a person's edit of a field Kingdee owns is undone).  Every write goes where the real
system would take it: Kingdee's tables (as Kingdee saves them) or the CRM's API as a sales rep.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, text

from infra.simulators.kingdee import erp as kd
from tests.integration.harness import IsolatedEnv

Check = Callable[[], str | None]  # what the target shows now, or None while it shows nothing yet


@dataclass
class Kind:
    name: str
    expected: str
    make: Callable[[Ctx], Check]


class Ctx:
    """The installation as a bad-input writer sees it: the Kingdee database, the CRM, the dead-letter topics."""

    def __init__(self, env: IsolatedEnv, seq: int) -> None:
        self.env = env
        self.db: Engine = env.kingdee
        self.crm = env.zoho
        self.seq = seq
        self._letters: dict[str, tuple[float, list[dict[str, Any]]]] = {}
        with self.db.connect() as conn:
            self.group = conn.execute(text('SELECT min("FID") FROM "T_BD_MATERIALGROUP"')).scalar_one()
            self.unit = conn.execute(text('SELECT min("FUNITID") FROM "T_BD_UNIT"')).scalar_one()
            self.ctype = conn.execute(text(
                'SELECT min("FENTRYID") FROM "T_BAS_ASSISTANTDATAENTRY" WHERE "FNUMBER" LIKE \'KHLB%\'')).scalar_one()

    def number(self, prefix: str) -> str:
        self.seq += 1
        return f"{prefix}{self.seq:05d}"

    def sql(self, statement: str, **params: Any) -> None:
        with self.db.begin() as conn:
            conn.execute(text(statement), params)

    def material(self, name: str = "坏输入物料", spec: str = "规格", **kw: Any) -> int:
        kw.setdefault("group_id", self.group)
        kw.setdefault("base_unit_id", self.unit)
        return kd.insert_material(self.db, self.number("6.66."), name, spec, **kw)

    def customer(self, name: str = "坏输入医院", **kw: Any) -> int:
        kw.setdefault("cust_type_id", str(self.ctype))
        return kd.insert_customer(self.db, self.number("BAD"), name, **kw)

    def letters(self, flow: str) -> list[dict[str, Any]]:
        cached = self._letters.get(flow)
        if cached is None or time.monotonic() - cached[0] > 2:
            cached = (time.monotonic(), self.env.dead_letters(flow))
            self._letters[flow] = cached
        return cached[1]

    def product(self, key: int | str) -> dict[str, Any] | None:
        return self.crm.by_kingdee_id("Products").get(str(key))

    def record(self, module: str, key_field: str, key: str) -> dict[str, Any] | None:
        return next((r for r in self.crm.records(module) if str(r.get(key_field)) == key), None)

    def wait_product(self, key: int, timeout_s: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if (found := self.product(key)) is not None:
                return found
            time.sleep(0.5)  # waiting for the product a CRM-side kind edits, in a test driver
        raise TimeoutError(f"material {key} never reached the CRM")


# --- checks ------------------------------------------------------------------------------------------------------
def dead_letter(ctx: Ctx, flow: str, key: int | str) -> Check:
    def check() -> str | None:
        found = [x for x in ctx.letters(flow) if str((x.get("source") or {}).get("key")) == str(key)]
        return f"dead-lettered: {found[-1]['error']}" if found else None
    return check


def product_shows(ctx: Ctx, key: int, **fields: Any) -> Check:
    def check() -> str | None:
        record = ctx.product(key)
        if record is None:
            return dead_letter(ctx, "materials", key)()
        return "synced: " + ", ".join(f"{f}={record.get(f)!r}" for f in fields)
    return check


def absent(ctx: Ctx, key: int, flow: str = "materials") -> Check:
    def check() -> str | None:
        return "synced (should not be)" if ctx.product(key) else (dead_letter(ctx, flow, key)() or "not sent")
    return check


def account_shows(ctx: Ctx, key: int, **fields: Any) -> Check:
    def check() -> str | None:
        record = ctx.record("Accounts", "Kingdee_Customer_ID", str(key))
        if record is None:
            return dead_letter(ctx, "customers", key)()
        return "synced: " + ", ".join(f"{f}={record.get(f)!r}" for f in fields)
    return check


# --- the kinds --------------------------------------------------------------------------------------------------
def _material_kinds() -> list[Kind]:
    def field_value(name: str, value: Any, field: str = "Product_Name") -> Callable[[Ctx], Check]:
        def make(ctx: Ctx) -> Check:
            return product_shows(ctx, ctx.material(value) if name == "name" else ctx.material(**{name: value}),
                                 **{field: None})
        return make

    def raw(update: str, expected_flow: str = "materials") -> Callable[[Ctx], Check]:
        def make(ctx: Ctx) -> Check:
            mid = ctx.material()
            ctx.sql(update, id=mid)
            return dead_letter(ctx, expected_flow, mid)
        return make

    def then(action: Callable[[Ctx, int], None], **fields: Any) -> Callable[[Ctx], Check]:
        def make(ctx: Ctx) -> Check:
            mid = ctx.material()
            action(ctx, mid)
            return product_shows(ctx, mid, **fields)
        return make

    def group_later(ctx: Ctx) -> Check:
        gid = 990_000 + ctx.seq
        mid = ctx.material(group_id=gid)
        time.sleep(1.0)  # the material is captured first, naming a group that does not exist yet
        ctx.sql('INSERT INTO "T_BD_MATERIALGROUP" ("FID", "FNUMBER") VALUES (:g, :n)', g=gid, n=f"G{gid}")
        ctx.sql('INSERT INTO "T_BD_MATERIALGROUP_L" ("FPKID", "FID", "FLOCALEID", "FNAME") VALUES (:g, :g, 2052, '
                "'后建的分组')", g=gid)
        return product_shows(ctx, mid, Product_Category=None)

    def group_renamed(ctx: Ctx) -> Check:
        gid = 980_000 + ctx.seq
        ctx.sql('INSERT INTO "T_BD_MATERIALGROUP" ("FID", "FNUMBER") VALUES (:g, :n)', g=gid, n=f"G{gid}")
        ctx.sql('INSERT INTO "T_BD_MATERIALGROUP_L" ("FPKID", "FID", "FLOCALEID", "FNAME") VALUES (:g, :g, 2052, '
                "'旧名分组')", g=gid)
        mid = ctx.material(group_id=gid)
        ctx.wait_product(mid)
        ctx.sql('UPDATE "T_BD_MATERIALGROUP_L" SET "FNAME" = \'新名分组\' WHERE "FID" = :g', g=gid)
        return product_shows(ctx, mid, Product_Category=None)

    def deleted(ctx: Ctx) -> Check:
        mid = ctx.material()
        ctx.wait_product(mid)
        kd.delete_material(ctx.db, mid)
        return product_shows(ctx, mid, Kingdee_Deleted=None, Product_Active=None)

    def renumbered(ctx: Ctx) -> Check:
        mid = ctx.material()
        ctx.wait_product(mid)
        kd.update_material(ctx.db, mid, number=ctx.number("6.67."))
        return product_shows(ctx, mid, Product_Code=None)

    def audited_later(ctx: Ctx) -> Check:
        mid = ctx.material(status="A")
        time.sleep(1.0)  # captured as a draft first
        kd.update_material(ctx.db, mid, status="C")
        return product_shows(ctx, mid, Product_Name=None)

    def draft(ctx: Ctx) -> Check:
        return absent(ctx, ctx.material(status="A"))

    def big_description(megabytes: int) -> Callable[[Ctx], Check]:
        def make(ctx: Ctx) -> Check:
            ctx.sql('ALTER TABLE "T_BD_MATERIAL_L" ALTER COLUMN "FDESCRIPTION" TYPE text')
            mid = ctx.material(description="说明" * (megabytes * 1024 * 1024 // 6))
            if megabytes < 8:
                return product_shows(ctx, mid, Product_Name=None)

            def check() -> str | None:
                found = [x for x in ctx.letters("capture") if str((x.get("source") or {}).get("key")) == str(mid)]
                return f"dead-lettered: {found[-1]['error_class']}: {found[-1]['error'][:80]}" if found else None
            return check
        return make

    return [
        Kind("material name of 120 characters (the limit)", "synced", field_value("name", "长" * 120)),
        Kind("material name of 121 characters", "dead-lettered: Product_Name: 121 characters",
             field_value("name", "长" * 121)),
        Kind("material name of spaces only", "dead-lettered: Product_Name: required", field_value("name", "   ")),
        Kind("material name with a tab", "dead-lettered: control character '\\t'", field_value("name", "喉罩\t4#")),
        Kind("material name with a line break", "dead-lettered: control character '\\n'",
             field_value("name", "喉罩\n4#")),
        Kind("material name with a bell character", "dead-lettered: control character '\\x07'",
             field_value("name", "喉罩\x07")),
        Kind("material name with DEL", "dead-lettered: control character '\\x7f'", field_value("name", "喉罩\x7f")),
        Kind("material name with emoji", "synced: Product_Name='喉罩😷'", field_value("name", "喉罩😷")),
        Kind("material name in CJK Extension B", "synced: Product_Name='𠀀𠀁喉罩'", field_value("name", "𠀀𠀁喉罩")),
        Kind("material name with full-width and mixed scripts", "synced: Product_Name='ＡＢＣ 喉罩 Larynx'",
             field_value("name", "ＡＢＣ 喉罩 Larynx")),
        Kind("material name with leading/trailing spaces", "synced: Product_Name='喉罩'",
             field_value("name", "  喉罩  ")),
        Kind("material specification with a tab", "dead-lettered: Specification: control character",
             field_value("spec", "成人\t4#")),
        Kind("material description with line breaks (the CRM's field)", "synced: Product_Name='坏输入物料'",
             field_value("description", "第一行\n第二行")),
        Kind("material number with a space and Chinese", "dead-lettered: does not match",
             raw('UPDATE "T_BD_MATERIAL" SET "FNUMBER" = \'1.01 坏\' WHERE "FMATERIALID" = :id')),
        Kind("material number empty", "dead-lettered: required",
             raw('UPDATE "T_BD_MATERIAL" SET "FNUMBER" = \' \' WHERE "FMATERIALID" = :id')),
        Kind("material number starting with a dot", "dead-lettered: does not match",
             raw('UPDATE "T_BD_MATERIAL" SET "FNUMBER" = \'.1.01\' WHERE "FMATERIALID" = :id')),
        Kind("material with an unknown forbid status code", "dead-lettered: unknown code 'X'",
             raw('UPDATE "T_BD_MATERIAL" SET "FFORBIDSTATUS" = \'X\' WHERE "FMATERIALID" = :id')),
        Kind("material with a group id that names nothing", "dead-lettered: FMATERIALGROUP",
             raw('UPDATE "T_BD_MATERIAL" SET "FMATERIALGROUP" = 987654321 WHERE "FMATERIALID" = :id')),
        Kind("material with a unit id that names nothing", "dead-lettered: FBASEUNITID",
             raw('UPDATE "T_BD_MATERIALBASE" SET "FBASEUNITID" = 987654321 WHERE "FMATERIALID" = :id')),
        Kind("material without a group (0)", "synced: Product_Category=None", lambda ctx: product_shows(
            ctx, ctx.material(group_id=0), Product_Category=None)),
        Kind("material whose group is saved after it", "synced: Product_Category='后建的分组'", group_later),
        Kind("material group renamed after its material synced", "synced: Product_Category='新名分组'",
             group_renamed),
        Kind("material disabled", "synced: Product_Active=False",
             then(lambda ctx, mid: kd.disable_material(ctx.db, mid), Product_Active=None)),
        Kind("material deleted after it synced", "synced: Kingdee_Deleted=True, Product_Active=False", deleted),
        Kind("material renumbered after it synced (the key is the id)", "synced: Product_Code='6.67.", renumbered),
        Kind("material name with a zero-width space and a right-to-left mark", "synced",
             field_value("name", "喉\u200b罩\u200f")),
        Kind("material with a 2 MB description (a widened large-text column)", "synced: Product_Name='坏输入物料'",
             big_description(2)),
        Kind("material with a 9 MB description: bigger than Kafka takes", "dead-lettered: DocumentTooLarge",
             big_description(9)),
        Kind("material saved as a draft", "not sent", draft),
        Kind("material audited after it was a draft", "synced: Product_Name='坏输入物料'", audited_later),
    ]


def _customer_kinds() -> list[Kind]:
    def named(name: str, field: str = "Account_Name") -> Callable[[Ctx], Check]:
        return lambda ctx: account_shows(ctx, ctx.customer(name), **{field: None})

    def with_type(type_id: str) -> Callable[[Ctx], Check]:
        def make(ctx: Ctx) -> Check:
            cid = ctx.customer(cust_type_id=type_id)
            return dead_letter(ctx, "customers", cid)
        return make

    def unknown_code(ctx: Ctx) -> Check:
        eid = f"bad{ctx.seq}"
        ctx.sql('INSERT INTO "T_BAS_ASSISTANTDATAENTRY" ("FENTRYID", "FID", "FNUMBER", "FSEQ", "FDOCUMENTSTATUS", '
                '"FFORBIDSTATUS") VALUES (:e, \'CUSTTYPE\', \'KHLB999\', 9, \'C\', \'A\')', e=eid)
        ctx.sql('INSERT INTO "T_BAS_ASSISTANTDATAENTRY_L" ("FPKID", "FENTRYID", "FLOCALEID", "FDATAVALUE") '
                "VALUES (:e, :e, 2052, '未知类别')", e=eid)
        return with_type(eid)(ctx)

    def disabled(ctx: Ctx) -> Check:
        cid = ctx.customer()
        ctx.sql('UPDATE "T_BD_CUSTOMER" SET "FFORBIDSTATUS" = \'B\', "FMODIFYDATE" = now() WHERE "FCUSTID" = :c',
                c=cid)
        return account_shows(ctx, cid, Kingdee_Active=None)

    def draft(ctx: Ctx) -> Check:
        cid = ctx.customer(status="A")

        def check() -> str:
            found = ctx.record("Accounts", "Kingdee_Customer_ID", str(cid))
            return "synced (should not be)" if found else "not sent"
        return check

    return [
        Kind("customer name of 200 characters (the limit)", "synced", named("院" * 200)),
        Kind("customer name of 201 characters", "dead-lettered: Account_Name: 201 characters", named("院" * 201)),
        Kind("customer name with emoji", "synced: Account_Name='阳光医院🏥'", named("阳光医院🏥")),
        Kind("customer short name of 81 characters", "dead-lettered: Short_Name: 81 characters",
             lambda ctx: dead_letter(ctx, "customers", ctx.customer(short_name="简" * 81))),
        Kind("customer name with a line break", "dead-lettered: control character '\\n'", named("阳光\n医院")),
        Kind("customer type id that names nothing", "dead-lettered: FCUSTTYPEID", with_type("no-such-type")),
        Kind("customer type with an unknown code", "dead-lettered: unknown code 'KHLB999'", unknown_code),
        Kind("customer disabled", "synced: Kingdee_Active=False", disabled),
        Kind("customer saved as a draft", "not sent", draft),
    ]


def _document_kinds() -> list[Kind]:
    def order_of(ctx: Ctx, customer: int, material: int, note: str = " ") -> kd.SalesOrderRef:
        return kd.insert_sales_order(ctx.db, customer, [kd.OrderLine(material, 3, "18.00")], note=note)

    def order_shows(ctx: Ctx, order: kd.SalesOrderRef, flow: str = "sales_orders") -> Check:
        def check() -> str | None:
            found = ctx.record("Sales_Orders", "Kingdee_Order_ID", str(order.fid))
            if found is None:
                return dead_letter(ctx, flow, order.fid)()
            return f"synced: {len(found.get('Ordered_Items') or [])} lines"
        return check

    def good_order(note: str = " ", lines: int = 1) -> Callable[[Ctx], Check]:
        def make(ctx: Ctx) -> Check:
            customer, material = ctx.customer(), ctx.material()
            ctx.wait_product(material)
            order = kd.insert_sales_order(ctx.db, customer, [kd.OrderLine(material, i + 1, "18.00")
                                                             for i in range(lines)], note=note)
            return order_shows(ctx, order)
        return make

    def draft_customer(ctx: Ctx) -> Check:
        return order_shows(ctx, order_of(ctx, ctx.customer(status="A"), ctx.material()))

    def draft_material(ctx: Ctx) -> Check:
        return order_shows(ctx, order_of(ctx, ctx.customer(), ctx.material(status="A")))

    def bell_note(ctx: Ctx) -> Check:
        return order_shows(ctx, order_of(ctx, ctx.customer(), ctx.material(), note="备注\x07"))

    def draft_order(ctx: Ctx) -> Check:
        order = kd.insert_sales_order(ctx.db, ctx.customer(), [kd.OrderLine(ctx.material(), 1, "1")], status="A")

        def check() -> str:
            found = ctx.record("Sales_Orders", "Kingdee_Order_ID", str(order.fid))
            return "synced (should not be)" if found else "not sent"
        return check

    def receipt_unknown_order(ctx: Ctx) -> Check:
        customer = ctx.customer()
        fid = kd.insert_receipt(ctx.db, customer, "XSDD-NO-SUCH", "80", ctx.number("BADSK"))

        def check() -> str | None:
            found = ctx.record("Payments", "Kingdee_Receipt_ID", str(fid))
            if found is None:
                return dead_letter(ctx, "receipts", fid)()
            return f"synced: Sales_Order={found.get('Sales_Order')!r}"
        return check

    def invoice_draft_customer(ctx: Ctx) -> Check:
        fid = kd.insert_invoice(ctx.db, "ordinary", ctx.customer(status="A"), "XSDD-NONE",
                                [(ctx.material(), 1, "113")], ctx.number("BADFP"))
        return _invoice_letter(ctx, fid)

    return [
        Kind("sales order with a line break in its note (a textarea)", "synced: 1 lines", good_order("第一行\n第二行")),
        Kind("sales order with a bell character in its note", "dead-lettered: control character '\\x07'",
             bell_note),
        Kind("sales order of 200 lines", "synced: 200 lines", good_order(lines=200)),
        Kind("sales order whose customer never reaches the CRM", "dead-lettered: customers", draft_customer),
        Kind("sales order whose material never reaches the CRM", "dead-lettered: materials", draft_material),
        Kind("sales order saved as a draft", "not sent", draft_order),
        Kind("receipt for an order number that does not exist", "synced: Sales_Order=None", receipt_unknown_order),
        Kind("invoice whose customer never reaches the CRM", "dead-lettered: customers", invoice_draft_customer),
    ]


def _invoice_letter(ctx: Ctx, fid: int) -> Check:
    def check() -> str | None:
        found = [x for x in ctx.letters("invoices") if str((x.get("source") or {}).get("key")) == str(fid)
                 or str(fid) in str((x.get("source") or {}).get("key"))]
        return f"dead-lettered: {found[-1]['error']}" if found else None
    return check


def _crm_kinds() -> list[Kind]:
    def crm_edit(change: dict[str, Any], show: str, flow: str = "products_to_kingdee") -> Callable[[Ctx], Check]:
        def make(ctx: Ctx) -> Check:
            mid = ctx.material()
            record = ctx.wait_product(mid)
            ctx.crm.human_edit("Products", str(record["id"]), change)
            if show == "letter":
                return dead_letter(ctx, flow, record["id"])

            def check() -> str | None:
                now = ctx.product(mid) or {}
                with ctx.db.connect() as conn:
                    row = conn.execute(text(
                        'SELECT m."FNUMBER", l."FDESCRIPTION", l."FSPECIFICATION" FROM "T_BD_MATERIAL" m JOIN '
                        '"T_BD_MATERIAL_L" l ON l."FMATERIALID" = m."FMATERIALID" WHERE m."FMATERIALID" = :m'),
                        {"m": mid}).one()
                if show == "Product_Code":
                    return f"put back: Product_Code={now.get('Product_Code')!r}" \
                        if now.get("Product_Code") == row[0] else None
                value = row[1] if show == "Description" else row[2]
                return f"saved in Kingdee: {show}={value.strip()!r}" if value.strip() == change[show] else None
            return check
        return make

    def crm_delete(ctx: Ctx) -> Check:
        mid = ctx.material()
        record = ctx.wait_product(mid)
        ctx.crm.human_delete("Products", str(record["id"]))
        return dead_letter(ctx, "products_to_kingdee", record["id"])

    def crm_created(ctx: Ctx) -> Check:
        rid = ctx.crm.human_create("Products", {"Product_Name": f"CRM 手建 {ctx.seq}"})

        def check() -> str:
            with ctx.db.connect() as conn:
                n = conn.execute(text('SELECT count(*) FROM "T_BD_MATERIAL_L" WHERE "FNAME" = :n'),
                                 {"n": f"CRM 手建 {ctx.seq}"}).scalar_one()
            letters = dead_letter(ctx, "products_to_kingdee", rid)()
            return letters or ("not sent" if n == 0 else "created in Kingdee (should not be)")
        return check

    return [
        Kind("CRM: a sales rep rewrites a product description", "saved in Kingdee: Description='销售写的说明'",
             crm_edit({"Description": "销售写的说明"}, "Description")),
        Kind("CRM: a sales rep changes the specification (shared)", "saved in Kingdee: Specification='销售改规格'",
             crm_edit({"Specification": "销售改规格"}, "Specification")),
        Kind("CRM: a sales rep edits the product code (Kingdee's field)", "put back: Product_Code",
             crm_edit({"Product_Code": "HAND-EDIT"}, "Product_Code")),
        Kind("CRM: a description of 256 characters", "dead-lettered: Description: 256 characters",
             crm_edit({"Description": "说" * 256}, "letter")),
        Kind("CRM: a specification with a tab", "dead-lettered: control character '\\t'",
             crm_edit({"Specification": "成人\t4#"}, "letter")),
        Kind("CRM: a product deleted by a sales rep", "dead-lettered: disable it there", crm_delete),
        Kind("CRM: a product created by hand (no Kingdee id)", "not sent", crm_created),
    ]


KINDS: list[Kind] = [*_material_kinds(), *_customer_kinds(), *_document_kinds(), *_crm_kinds()]


@dataclass
class Outcome:
    kind: Kind
    seen: str

    @property
    def ok(self) -> bool:
        head, _, detail = self.kind.expected.partition(":")
        return self.seen.startswith(head) and "should not" not in self.seen and detail.strip() in self.seen


def run_kinds(env: IsolatedEnv, timeout_s: float = 240.0) -> list[Outcome]:
    """Every kind written, then watched until each shows its expected outcome (or the timeout); the "not sent"
    ones are judged after the others have arrived, so their absence means something."""
    ctx = Ctx(env, int(time.time()) % 10_000 * 10)
    checks: list[tuple[Kind, Check]] = []
    for kind in KINDS:
        try:
            checks.append((kind, kind.make(ctx)))
        except Exception as exc:  # noqa: BLE001 - a kind that could not even be written is reported as such
            checks.append((kind, lambda exc=exc: f"could not write it: {type(exc).__name__}: {exc}"))  # type: ignore[misc]
    seen: dict[str, str] = {}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for kind, check in checks:
            if kind.expected == "not sent" or Outcome(kind, seen.get(kind.name, "")).ok:
                continue
            seen[kind.name] = check() or "nothing yet"
        if all(Outcome(k, seen.get(k.name, "")).ok for k, _ in checks if k.expected != "not sent"):
            break
        time.sleep(2)  # polling the targets, in a test driver
    for kind, check in checks:
        if kind.expected == "not sent":
            seen[kind.name] = check() or "not sent"
    return [Outcome(kind, seen.get(kind.name, "nothing yet")) for kind, _ in checks]


def table(outcomes: list[Outcome]) -> str:
    lines = ["| # | bad input | expected | seen | |", "|---|---|---|---|---|"]
    for i, o in enumerate(outcomes, start=1):
        seen = o.seen.replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {i} | {o.kind.name} | {o.kind.expected.replace('|', '/')} | {seen[:140]} | "
                     f"{'✓' if o.ok else '✗'} |")
    return "\n".join(lines)
