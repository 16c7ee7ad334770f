"""``make chaos``: a repeatable fault campaign against the real runtime on the local stack; prints what it finds.

Not part of ``make test`` (it takes ~15 minutes and restarts the shared Kafka, registry and PostgreSQL).

1. An isolated demo installation (its own database, simulators, topics and state) run by ``cdchub run``.
2. A mixed workload, as Kingdee writes it (materials, customers, sales orders and their lines, outbounds, invoices,
   receipts, stock) plus sales reps' edits of products in the CRM — ``--operations`` of them, seeded, paced over
   ``--minutes``.
3. Meanwhile faults: ``--kills`` kill -9 of runtime processes at random moments (capture, pollers, dataflows);
   Kafka, the registry and PostgreSQL each restarted once; the CRM answering 30 % 5xx/429, then down for two
   minutes, then slow; the Kingdee WebAPI answering 30 % errors, then down for two minutes.
4. Then the faults stop and every target is compared with its source until they agree: materials and customers
   field by field (the mapping's own rules, then the shared and CRM-owned fields both ways), orders, invoices and
   receipts by their keys; then ``cdchub reconcile`` for every flow that can read its target back.  Printed: lost,
   duplicated, mismatched, dead-lettered, and the convergence time after the last fault.
5. Bad input (``tests/bench/bad_input.py``): more than fifty kinds, each with the outcome users expect, written into
   the same installation (restarted with a 20 s reference wait), printed as a table.

With ``--brokers 3`` the installation's topics live on a three-node KRaft cluster of their own
(``tests/bench/kafka_cluster.py``; three replicas, ``min.insync.replicas`` 2) and one node is killed (-9) in the
middle of the run and started again a minute later, instead of the single broker's restart.

    python -m tests.bench.chaos [--operations 5000] [--kills 20] [--minutes 5] [--seed 7] [--brokers 1|3]
                                [--only campaign|bad-input]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, create_engine, text

from connectors.common.drift import differing_fields
from connectors.settings import Settings, get_settings
from core.mapping import Ref
from core.process import interruptible
from core.settings import PROJECT_ROOT
from flows.specs import load_mapping
from infra.simulators.kingdee import erp as kd
from tests.bench import bad_input
from tests.bench.installation import Installation, SupervisedRun, cli
from tests.bench.kafka_cluster import KafkaCluster
from tests.integration.harness import IsolatedEnv, wait_for

RECONCILED_FLOWS = ("materials", "customers", "sales_orders", "invoices", "receipts", "deliveries", "inventory")


# --- the workload -----------------------------------------------------------------------------------------------
@dataclass
class Made:
    """What the workload created, to pick the targets of later operations."""

    materials: list[int] = field(default_factory=list)
    deleted_materials: set[int] = field(default_factory=set)
    customers: list[int] = field(default_factory=list)
    orders: list[kd.SalesOrderRef] = field(default_factory=list)
    outbounds: list[int] = field(default_factory=list)
    ordered: set[int] = field(default_factory=set)
    delivered: Counter[int] = field(default_factory=Counter)


class Workload(threading.Thread):
    """``operations`` business operations over ``duration_s``; a database that is restarting is waited for."""

    def __init__(self, engine: Engine, crm_url: str, operations: int, duration_s: float, seed: int) -> None:
        super().__init__(daemon=True, name="workload")
        self.engine = engine
        self.crm = httpx.Client(base_url=crm_url, timeout=30)
        self.operations = operations
        self.duration_s = duration_s
        self.rng = random.Random(seed)
        self.made = Made()
        self.done: Counter[str] = Counter()
        self.retried = 0
        self.finished_at: float | None = None
        with engine.connect() as conn:
            self.groups = [r[0] for r in conn.execute(text('SELECT "FID" FROM "T_BD_MATERIALGROUP"'))]
            self.units = [r[0] for r in conn.execute(text('SELECT "FUNITID" FROM "T_BD_UNIT"'))]
            self.types = [r[0] for r in conn.execute(text(
                'SELECT "FENTRYID" FROM "T_BAS_ASSISTANTDATAENTRY" WHERE "FNUMBER" LIKE \'KHLB%\''))]
            self.stocks = [r[0] for r in conn.execute(text('SELECT "FSTOCKID" FROM "T_BD_STOCK"'))]
            self.made.customers = [r[0] for r in conn.execute(text(
                'SELECT "FCUSTID" FROM "T_BD_CUSTOMER" WHERE "FDOCUMENTSTATUS" = \'C\''))]
        self.mix: list[tuple[str, int, Callable[[int], None]]] = [
            ("material created", 16, self.new_material), ("material edited", 16, self.edit_material),
            ("material disabled or enabled", 4, self.toggle_material), ("material deleted", 2, self.delete_material),
            ("customer created", 6, self.new_customer), ("sales order created", 12, self.new_order),
            ("order line changed", 6, self.change_line), ("outbound created", 8, self.new_outbound),
            ("outbound deleted", 2, self.delete_outbound), ("invoice created", 5, self.new_invoice),
            ("receipt created", 5, self.new_receipt), ("stock adjusted", 6, self.adjust_stock),
            ("product edited in the CRM", 6, self.crm_edit),
        ]

    def run(self) -> None:
        started = time.monotonic()
        weights = [w for _, w, _ in self.mix]
        for i in range(self.operations):
            name, _, operation = self.rng.choices(self.mix, weights)[0]
            for attempt in range(120):
                try:
                    operation(i)
                    self.done[name] += 1
                    break
                except Exception:  # noqa: BLE001 - PostgreSQL or the CRM restarting: the same operation again
                    self.retried += 1
                    time.sleep(min(5.0, 0.2 * (attempt + 1)))
            due = started + self.duration_s * (i + 1) / self.operations
            time.sleep(max(0.0, due - time.monotonic()))  # pacing of a load generator, not a dataflow
        self.finished_at = time.monotonic()

    # operations; ``i`` makes numbers unique
    def new_material(self, i: int) -> None:
        self.made.materials.append(kd.insert_material(
            self.engine, f"7.{i // 1000:02d}.{i % 1000:04d}", f"混沌物料 {i}", f"规格 {i % 7}",
            group_id=self.rng.choice(self.groups), base_unit_id=self.rng.choice(self.units)))

    def _material(self) -> int | None:
        live = [m for m in self.made.materials[-300:] if m not in self.made.deleted_materials]
        return self.rng.choice(live) if live else None

    def _editable(self, mid: int) -> bool:
        """Kingdee lets nobody edit a material in review (submitted, not yet audited)."""
        with self.engine.connect() as conn:
            status = conn.execute(text('SELECT "FDOCUMENTSTATUS" FROM "T_BD_MATERIAL" WHERE "FMATERIALID" = :m'),
                                  {"m": mid}).scalar()
        return status not in (None, "B")

    def edit_material(self, i: int) -> None:
        if (mid := self._material()) is not None and self._editable(mid):
            kd.update_material(self.engine, mid, name=f"混沌物料 {mid} 第{i}版", spec=f"规格 {i % 11}")

    def toggle_material(self, i: int) -> None:
        if (mid := self._material()) is not None and self._editable(mid):
            (kd.disable_material if i % 2 else kd.enable_material)(self.engine, mid)

    def delete_material(self, i: int) -> None:
        candidates = [m for m in self.made.materials[-300:] if m not in self.made.ordered
                      and m not in self.made.deleted_materials]
        if candidates:
            mid = self.rng.choice(candidates)
            kd.delete_material(self.engine, mid)
            self.made.deleted_materials.add(mid)

    def new_customer(self, i: int) -> None:
        self.made.customers.append(kd.insert_customer(
            self.engine, f"CHAOS{i:05d}", f"混沌医院 {i}", cust_type_id=str(self.rng.choice(self.types))))

    def new_order(self, i: int) -> None:
        materials = [m for m in self.made.materials[-200:] if m not in self.made.deleted_materials]
        if len(materials) < 4 or not self.made.customers:
            return self.new_material(i)
        lines = [kd.OrderLine(m, self.rng.randint(10, 50), f"{self.rng.randint(5, 500)}.00")
                 for m in self.rng.sample(materials, self.rng.randint(1, 4))]
        self.made.ordered.update(line.material_id for line in lines)
        self.made.orders.append(kd.insert_sales_order(self.engine, self.rng.choice(self.made.customers[-50:]),
                                                      lines))
        return None

    def change_line(self, i: int) -> None:
        if self.made.orders:
            order = self.rng.choice(self.made.orders[-100:])
            kd.update_order_line(self.engine, self.rng.choice(order.entry_ids), qty=self.rng.randint(51, 80))

    def new_outbound(self, i: int) -> None:
        """One unit of an order's first line (an order gets at most five: never more than was ordered)."""
        orders = [o for o in self.made.orders[-100:] if self.made.delivered[o.fid] < 5]
        if orders:
            order = self.rng.choice(orders)
            self.made.outbounds.append(kd.insert_outstock(
                self.engine, order, [kd.OutstockLine(order.entry_ids[0], 1)]).fid)
            self.made.delivered[order.fid] += 1

    def delete_outbound(self, i: int) -> None:
        if self.made.outbounds:
            kd.delete_outstock(self.engine, self.made.outbounds.pop(self.rng.randrange(len(self.made.outbounds))))

    def _order_parts(self) -> tuple[kd.SalesOrderRef, int, int] | None:
        if not self.made.orders:
            return None
        order = self.rng.choice(self.made.orders[-100:])
        with self.engine.connect() as conn:
            customer, material = conn.execute(text(
                'SELECT o."FCUSTID", e."FMATERIALID" FROM "T_SAL_ORDER" o JOIN "T_SAL_ORDERENTRY" e '
                'ON e."FID" = o."FID" WHERE o."FID" = :fid LIMIT 1'), {"fid": order.fid}).one()
        return order, customer, material

    def new_invoice(self, i: int) -> None:
        if (parts := self._order_parts()) is not None:
            order, customer, material = parts
            kd.insert_invoice(self.engine, "ordinary" if i % 2 else "special", customer, order.bill_no,
                              [(material, 1, "113")], f"CHFP{i:06d}")

    def new_receipt(self, i: int) -> None:
        if (parts := self._order_parts()) is not None:
            order, customer, _ = parts
            kd.insert_receipt(self.engine, customer, order.bill_no, f"{self.rng.randint(10, 900)}", f"CHSK{i:06d}")

    def adjust_stock(self, i: int) -> None:
        if (mid := self._material()) is not None and self.stocks:
            kd.adjust_inventory(self.engine, mid, self.rng.choice(self.stocks), self.rng.randint(1, 40))

    def crm_edit(self, i: int) -> None:
        """A sales rep edits a synced product in the CRM: its specification (shared) or description (the CRM's)."""
        mid = self._material()
        if mid is None:
            return
        found = self.crm.get("/__sim/records/Products").json()
        records = found["records"] if isinstance(found, dict) else found
        record = next((r for r in records if r.get("Kingdee_ID") == str(mid)), None)
        if record is None:
            return
        change = {"Specification": f"销售改 {i}"} if i % 2 else {"Description": f"销售说明 {i}"}
        self.crm.patch(f"/__sim/records/Products/{record['id']}", json={"data": change}).raise_for_status()


# --- the faults -------------------------------------------------------------------------------------------------
@dataclass
class Fault:
    at_s: float
    what: str
    action: Callable[[], None]
    done_at: float | None = None


class Faults(threading.Thread):
    """The campaign's faults at their times; every one is logged with when it happened."""

    def __init__(self, plan: list[Fault]) -> None:
        super().__init__(daemon=True, name="faults")
        self.plan = sorted(plan, key=lambda f: f.at_s)
        self.log: list[str] = []
        self.last_fault_end: float | None = None

    def run(self) -> None:
        started = time.monotonic()
        for fault in self.plan:
            time.sleep(max(0.0, started + fault.at_s - time.monotonic()))  # the schedule of a fault injector
            try:
                fault.action()
                self.log.append(f"{time.monotonic() - started:6.1f}s {fault.what}")
            except Exception as exc:  # noqa: BLE001 - a fault that could not be injected is reported, not fatal
                self.log.append(f"{time.monotonic() - started:6.1f}s {fault.what} FAILED: {exc}")
            fault.done_at = time.monotonic()
        self.last_fault_end = time.monotonic()


def restart(component: str) -> Callable[[], None]:
    def action() -> None:
        from infra.stack.kafka import Kafka
        from infra.stack.postgres import Postgres
        from infra.stack.registry import Registry

        settings = get_settings()
        comp: Any = {"kafka": Kafka, "registry": Registry, "postgres": Postgres}[component](settings)
        comp.down()
        comp.up()
    return action


def sim_fault(url: str, rule: dict[str, Any] | None) -> Callable[[], None]:
    """Set one fault rule on a simulator (replacing what it had), or clear its rules (``None``)."""
    def action() -> None:
        httpx.delete(f"{url}/__sim/faults", timeout=10).raise_for_status()
        if rule is not None:
            httpx.post(f"{url}/__sim/faults", json=rule, timeout=10).raise_for_status()
    return action


def kill_one(state_dir: Path, rng: random.Random, killed: Counter[str]) -> Callable[[], None]:
    """kill -9 of a runtime process chosen at random among those running (one being restarted is skipped)."""
    def action() -> None:
        for _ in range(100):
            children = json.loads((state_dir / "run.pids").read_text())["children"]
            name = rng.choice(sorted(children))
            try:
                os.kill(int(children[name]), signal.SIGKILL)
            except ProcessLookupError:
                time.sleep(0.2)  # it is being restarted: pick again
                continue
            killed[name] += 1
            return
        raise RuntimeError("no runtime process to kill")
    return action


def plan_faults(minutes: float, kills: int, inst: Installation, rng: random.Random,
                killed: Counter[str], cluster: KafkaCluster | None = None) -> list[Fault]:
    span = minutes * 60
    crm, kingdee = inst.urls["zoho"], inst.urls["kingdee"]
    plan = [
        Fault(0.05 * span, "CRM: 30 % of calls 500", sim_fault(crm, {"path_regex": "/crm/", "status": 500,
                                                                      "rate": 0.3})),
        Fault(0.10 * span, "Kingdee WebAPI: 30 % of calls 500", sim_fault(kingdee, {"path_regex": "/K3Cloud/",
                                                                                     "status": 500, "rate": 0.3})),
        *([Fault(0.15 * span, "Kafka restarted", restart("kafka"))] if cluster is None else [
            Fault(0.15 * span, "Kafka node 2 of 3 killed (-9)", lambda: cluster.kill(2)),
            Fault(0.15 * span + 60, "Kafka node 2 started again", lambda: cluster.restart(2))]),
        Fault(0.20 * span, "CRM: 30 % of calls 429", sim_fault(crm, {"path_regex": "/crm/", "status": 429,
                                                                      "rate": 0.3, "headers": {"Retry-After": "2"}})),
        Fault(0.25 * span, "Kingdee WebAPI: down (503) for 2 minutes", sim_fault(kingdee, {"path_regex": "/K3Cloud/",
                                                                                          "status": 503})),
        Fault(0.30 * span, "CRM: down (503) for 2 minutes", sim_fault(crm, {"path_regex": "/crm/", "status": 503})),
        Fault(0.35 * span, "registry restarted", restart("registry")),
        Fault(0.25 * span + 120, "Kingdee WebAPI: back", sim_fault(kingdee, None)),
        Fault(0.30 * span + 120, "CRM: back, slow (3 s per call) for a minute",
              sim_fault(crm, {"path_regex": "/crm/", "latency_ms": 3000})),
        Fault(0.30 * span + 180, "CRM: back to normal", sim_fault(crm, None)),
        Fault(0.55 * span, "PostgreSQL restarted", restart("postgres")),
    ]
    for k in range(kills):
        plan.append(Fault(rng.uniform(0.03, 0.9) * span, f"kill -9 (#{k + 1})",
                          kill_one(inst.settings().state_dir, rng, killed)))
    return plan


# --- comparing targets with their sources --------------------------------------------------------------------------
MATERIALS_SQL = '''
SELECT m."FMATERIALID", m."FNUMBER", m."FDOCUMENTSTATUS", m."FFORBIDSTATUS", m."FMATERIALGROUP", b."FBASEUNITID",
       l."FNAME", l."FSPECIFICATION", l."FDESCRIPTION", gl."FNAME" AS group_name, ul."FNAME" AS unit_name
FROM "T_BD_MATERIAL" m
LEFT JOIN "T_BD_MATERIAL_L" l ON l."FMATERIALID" = m."FMATERIALID" AND l."FLOCALEID" = 2052
LEFT JOIN "T_BD_MATERIALBASE" b ON b."FMATERIALID" = m."FMATERIALID"
LEFT JOIN "T_BD_MATERIALGROUP_L" gl ON gl."FID" = m."FMATERIALGROUP" AND gl."FLOCALEID" = 2052
LEFT JOIN "T_BD_UNIT_L" ul ON ul."FUNITID" = b."FBASEUNITID" AND ul."FLOCALEID" = 2052'''
CUSTOMERS_SQL = '''
SELECT c."FCUSTID", c."FNUMBER", c."FDOCUMENTSTATUS", c."FFORBIDSTATUS", c."FCUSTTYPEID", l."FNAME",
       l."FSHORTNAME", t."FNUMBER" AS type_number, c."FTEL", c."FADDRESS"
FROM "T_BD_CUSTOMER" c
LEFT JOIN "T_BD_CUSTOMER_L" l ON l."FCUSTID" = c."FCUSTID" AND l."FLOCALEID" = 2052
LEFT JOIN "T_BAS_ASSISTANTDATAENTRY" t ON t."FENTRYID" = c."FCUSTTYPEID"'''


@dataclass
class Findings:
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.lost or self.duplicated or self.mismatched)


def _records(crm_url: str, module: str) -> list[dict[str, Any]]:
    body = httpx.get(f"{crm_url}/__sim/records/{module}", timeout=60).json()
    return list(body["records"] if isinstance(body, dict) else body)


def _by_key(records: list[dict[str, Any]], key: str, what: str, found: Findings) -> dict[str, dict[str, Any]]:
    counts = Counter(str(r[key]) for r in records if r.get(key))
    found.duplicated += [f"{what} {k} ×{n}" for k, n in counts.items() if n > 1]
    return {str(r[key]): r for r in records if r.get(key)}


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def compare(engine: Engine, crm_url: str, deleted: set[int]) -> Findings:
    found = Findings()
    materials, customers = load_mapping("materials"), load_mapping("customers")
    products = _by_key(_records(crm_url, "Products"), "Kingdee_ID", "product", found)
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(text(MATERIALS_SQL))]
    for row in rows:
        key = str(row["FMATERIALID"])
        record = products.get(key)
        if row["FDOCUMENTSTATUS"] != "C":
            continue  # not sent, or kept as it was when it was last audited
        if record is None:
            found.lost.append(f"material {key} {row['FNUMBER']}")
            continue
        doc = {**row, "texts": [{"FLOCALEID": 2052, "FNAME": row["FNAME"], "FSPECIFICATION": row["FSPECIFICATION"],
                                 "FDESCRIPTION": row["FDESCRIPTION"]}],
               "group_name": row["group_name"], "base_unit_name": row["unit_name"]}
        expected = {k: v for k, v in materials.to_target(doc).items() if not isinstance(v, Ref)}
        differ = differing_fields(expected, record, {"Kingdee_ID"})
        if _text(record.get("Description")) and _text(row["FDESCRIPTION"]) != _text(record.get("Description")):
            # the CRM's field: what a sales rep wrote there is saved into Kingdee (Kingdee's own is never sent)
            differ["Description"] = {"target": record.get("Description"), "replay": row["FDESCRIPTION"]}
        if differ:
            found.mismatched.append(f"material {key}: {sorted(differ)}")
    for mid in deleted:
        record = products.get(str(mid))
        if record is not None and not (record.get("Kingdee_Deleted") is True and record.get("Product_Active") is False):
            found.mismatched.append(f"material {mid}: deleted in Kingdee, not marked in the CRM")
    accounts = _by_key(_records(crm_url, "Accounts"), "Kingdee_Customer_ID", "account", found)
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(text(CUSTOMERS_SQL))]
    for row in rows:
        if row["FDOCUMENTSTATUS"] != "C":
            continue
        key = str(row["FCUSTID"])
        record = accounts.get(key)
        if record is None:
            found.lost.append(f"customer {key} {row['FNUMBER']}")
            continue
        doc = {**row, "texts": [{"FLOCALEID": 2052, "FNAME": row["FNAME"], "FSHORTNAME": row["FSHORTNAME"]}]}
        expected = {k: v for k, v in customers.to_target(doc).items() if not isinstance(v, Ref)}
        differ = differing_fields(expected, record, {"Kingdee_Customer_ID"})
        if differ:
            found.mismatched.append(f"customer {key}: {sorted(differ)}")
    for table, module, key, prefix in (("T_SAL_ORDER", "Sales_Orders", "Kingdee_Order_ID", ""),
                                       ("T_IV_SALESIC", "Invoices", "Kingdee_Invoice_ID", "IC-"),
                                       ("T_IV_SALESOC", "Invoices", "Kingdee_Invoice_ID", "OC-"),
                                       ("T_AR_RECEIVEBILL", "Payments", "Kingdee_Receipt_ID", "")):
        targets = _by_key(_records(crm_url, module), key, module, found)
        with engine.connect() as conn:
            for fid, bill_no in conn.execute(text(
                    f'SELECT "FID", "FBILLNO" FROM "{table}" WHERE "FDOCUMENTSTATUS" IN (\'C\', \'D\')')):
                if f"{prefix}{fid}" not in targets:
                    found.lost.append(f"{module} {prefix}{fid} {bill_no}")
    found.duplicated = sorted(set(found.duplicated))
    return found


def dead_letters(settings: Settings) -> dict[str, int]:
    from confluent_kafka import Consumer, TopicPartition

    from connectors.common.kafka import admin_client

    admin = admin_client(settings.kafka)
    prefix = settings.kafka.topic("cdchub.dlq.")
    consumer = Consumer({**settings.kafka.client_config(), "group.id": "chaos-count"})
    counts: dict[str, int] = {}
    for topic, meta in admin.list_topics(timeout=10).topics.items():
        if topic.startswith(prefix):
            n = sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in meta.partitions)
            if n:
                counts[topic.removeprefix(prefix)] = n
    consumer.close()
    return counts


def dead_letter_reasons(settings: Settings, letters: dict[str, int]) -> Counter[tuple[str, str]]:
    """How many dead letters of each flow have each reason (its first words, ids left out)."""
    import re

    reader = IsolatedEnv(settings, {}, Path(tempfile.gettempdir()), create_engine("sqlite://"), None)  # type: ignore[arg-type]
    reasons: Counter[tuple[str, str]] = Counter()
    for flow in letters:
        for letter in reader.dead_letters(flow):
            reasons[(flow, re.sub(r"[0-9]{3,}|“[^”]*”", "…", f"{letter['error_class']}: {letter['error']}")[:110])] += 1
    return reasons


def reconcile(env: dict[str, str], flow: str) -> dict[str, Any]:
    done = subprocess.run([*cli("reconcile", flow, "--json")], cwd=PROJECT_ROOT, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=600)
    try:
        return dict(json.loads(done.stdout))
    except ValueError:
        return {"error": (done.stderr or done.stdout)[-500:]}


# --- the campaign -----------------------------------------------------------------------------------------------
def main() -> None:
    interruptible()  # Ctrl-C (SIGINT) reaches us and our finally blocks even when started with `&` from a script
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--operations", type=int, default=5000)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--converge-timeout", type=float, default=900.0)
    parser.add_argument("--only", choices=("campaign", "bad-input"))
    parser.add_argument("--brokers", type=int, choices=(1, 3), default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="cdchub-chaos-"))
    print(f"== fault campaign (seed {args.seed}); logs in {tmp}", flush=True)
    base = get_settings()
    cluster = KafkaCluster(tmp / "kafka") if args.brokers > 1 else None
    if cluster is not None:
        cluster.start()
        base = base.model_copy(update={"kafka": base.kafka.model_copy(update={
            "bootstrap_servers": cluster.bootstrap, "replication_factor": 3, "min_insync_replicas": 2})})
        print(f"   topics on a {args.brokers}-node cluster: {cluster.bootstrap}", flush=True)
    inst = Installation(base, tmp, own_sims=False).start()
    run = SupervisedRun(inst.env, tmp / "logs")
    try:
        run.start()
        settings = inst.settings()
        engine = create_engine(settings.kingdee_db.sqlalchemy_url(), pool_pre_ping=True)
        with engine.connect() as conn:
            audited = {str(r[0]) for r in conn.execute(text(
                'SELECT "FMATERIALID" FROM "T_BD_MATERIAL" WHERE "FDOCUMENTSTATUS" = \'C\''))}
        wait_for(lambda: audited <= {r.get("Kingdee_ID") for r in _records(inst.urls["zoho"], "Products")}, 600,
                 "the demo data in the CRM", 1)
        if args.only != "bad-input":
            campaign(args, inst, engine, rng, cluster)
        if args.only != "campaign":
            run.stop()
            inst.env["CDCHUB_REFERENCE_WAIT_S"] = "20"  # a reference that never comes is reported within the run
            run = SupervisedRun(inst.env, tmp / "logs")
            run.start()
            outcomes = bad_input.run_kinds(IsolatedEnv(settings, inst.env, tmp, engine, inst.crm))
            print(f"\n{sum(o.ok for o in outcomes)} of {len(outcomes)} kinds of bad input as expected\n")
            print(bad_input.table(outcomes))
    finally:
        run.stop()
        inst.stop()
        if cluster is not None:
            cluster.stop()


def campaign(args: argparse.Namespace, inst: Installation, engine: Engine, rng: random.Random,
             cluster: KafkaCluster | None) -> None:
    settings = inst.settings()
    killed: Counter[str] = Counter()
    workload = Workload(engine, inst.urls["zoho"], args.operations, args.minutes * 60, args.seed)
    faults = Faults(plan_faults(args.minutes, args.kills, inst, rng, killed, cluster))
    started = time.monotonic()
    workload.start()
    faults.start()
    workload.join()
    faults.join()
    quiet_from = max(faults.last_fault_end or 0.0, workload.finished_at or 0.0)
    took = (workload.finished_at or started) - started
    print(f"   workload: {sum(workload.done.values()):,} operations in {took:.0f} s "
          f"({workload.retried} retried while something restarted): "
          + ", ".join(f"{n} {k}" for k, n in workload.done.most_common()), flush=True)
    print("   faults:\n" + "\n".join(f"     {line}" for line in faults.log), flush=True)
    findings = compare(engine, inst.urls["zoho"], workload.made.deleted_materials)
    deadline = time.monotonic() + args.converge_timeout
    while not findings.clean and time.monotonic() < deadline:
        time.sleep(5)  # a poll of the outcome, outside the product
        findings = compare(engine, inst.urls["zoho"], workload.made.deleted_materials)
    converged_s = time.monotonic() - quiet_from
    letters = dead_letters(settings)
    reasons = dead_letter_reasons(settings, letters)
    reconciled = {flow: reconcile(inst.env, flow) for flow in RECONCILED_FLOWS}
    drift = {flow: r.get("differ", r.get("error")) for flow, r in reconciled.items()}
    print("\n| what | figure |\n|---|---|")
    print(f"| operations | {sum(workload.done.values()):,} over {args.minutes:.0f} min |")
    print(f"| kill -9 of runtime processes | {sum(killed.values())} ("
          + ", ".join(f"{n} {k}" for k, n in killed.most_common()) + ") |")
    print("| infrastructure restarted | " + ("Kafka" if cluster is None else "one of 3 Kafka nodes killed (-9)")
          + ", registry, PostgreSQL (once each) |")
    print("| target faults | CRM 30 % 500, 30 % 429, 2 min down, 1 min slow; Kingdee 30 % 500, 2 min down |")
    print(f"| lost | {len(findings.lost)} |")
    print(f"| duplicated | {len(findings.duplicated)} |")
    print(f"| mismatched (compared with the Kingdee database) | {len(findings.mismatched)} |")
    print("| drift found by `cdchub reconcile` | " + ", ".join(f"{f} {d}" for f, d in drift.items()) + " |")
    print(f"| dead-lettered | {sum(letters.values())} " + (f"({letters})" if letters else "") + " |")
    print(f"| converged after the last fault | {converged_s:.0f} s"
          + ("" if findings.clean else f" (NOT converged within {args.converge_timeout:.0f} s)") + " |")
    for what, items in (("lost", findings.lost), ("duplicated", findings.duplicated),
                        ("mismatched", findings.mismatched)):
        for item in items[:20]:
            print(f"   {what}: {item}")
    for (flow, reason), n in reasons.most_common():
        print(f"   dead letters of {flow}: {n} × {reason}")
    for flow, result in reconciled.items():
        for d in (result.get("drift") or [])[:5]:
            print(f"   reconcile {flow}: {d['action']} {d['module']} {d['key']} {d['number']}: "
                  + json.dumps(d["fields"], ensure_ascii=False, default=str)[:300])


if __name__ == "__main__":
    main()
