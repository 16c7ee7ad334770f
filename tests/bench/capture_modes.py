"""Benchmark of the three capture modes side by side on one Kingdee database; prints figures, asserts nothing.

The log capture (the baseline), the query capture (1 s polls) and the WebAPI capture (5 s polls, through the
Kingdee WebAPI simulator on the same database) run at once, each into topics of its own:

1. Latency, Kingdee commit → event in Kafka, p50/p95/p99, while ``--rate`` materials a second are saved (each a
   different material, so no poll merges two versions of one).
2. A deletion: seconds until each mode's delete event (the polled modes' key-set cycle stated).
3. Load on the source: statements or API calls per second under load and per minute at idle, rows read per
   changed document (the captures' own counters).
4. Correctness: a seeded random workload over materials, customers and sales orders (inserts, edits, entry edits,
   status changes, deletions) while every capture is killed -9 twice; then the last event of every key of each
   mode is compared with the log capture's: missing, extra and different documents.

    python -m tests.bench.capture_modes [--rate 100] [--duration 30] [--workload 600] [--keyset 10]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from connectors.common.avro import AvroDecoder, registry_client
from connectors.kingdee.documents import DocumentCatalog
from connectors.settings import get_settings
from infra.simulators.common.process import SimulatorProcess
from infra.simulators.kingdee.demo_seed import seed
from infra.simulators.kingdee.erp import (
    OrderLine,
    bulk_insert_materials,
    delete_material,
    delete_sales_order,
    insert_customer,
    insert_material,
    insert_sales_order,
    set_document_status,
    update_material,
    update_order_line,
)
from tests.bench.bench_materials import percentiles
from tests.integration.harness import ChildProcess, IsolatedEnv, ZohoSim, isolated_env, wait_for

MODES = ("log", "query", "webapi")
#: What the WebAPI cannot return; left out of the comparison of the webapi mode's documents.
DOCUMENTS = ("material", "customer", "sales_order")


class Capture:
    """One mode's capture process and its topics."""

    def __init__(self, env: IsolatedEnv, mode: str, interval: float | None, keyset: float) -> None:
        self.mode = mode
        self.state = env.tmp / f"state-{mode}"
        prefix = f"{env.settings.kafka.topic_prefix}{mode}."
        self.env = {**env.env, "CDCHUB_STATE_DIR": str(self.state), "CDCHUB_KAFKA__TOPIC_PREFIX": prefix,
                    "CDCHUB_CAPTURE__MODE": mode, "CDCHUB_CAPTURE__KEYSET_INTERVAL_S": str(keyset)}
        if interval:
            self.env["CDCHUB_CAPTURE__INTERVAL_S"] = str(interval)
        self.view = dataclasses.replace(env, settings=env.settings.model_copy(update={
            "kafka": env.settings.kafka.model_copy(update={"topic_prefix": prefix}), "state_dir": self.state}),
            env=self.env, children=[], simulators=[])
        self.log_path = env.tmp / f"capture-{mode}.log"
        self.child: ChildProcess | None = None

    def start(self) -> None:
        self.child = ChildProcess(f"capture-{self.mode}", ["capture"], self.env, self.log_path).start()

    def kill(self) -> None:
        assert self.child is not None
        self.child.kill()

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop(30)

    def stats(self) -> dict[str, Any]:
        path = self.state / "capture-stats.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def topic(self, document: str) -> str:
        return self.view.topic(f"kingdee.{document}")


class Arrivals(threading.Thread):
    """When each (material, name) first reached a mode's material topic; and when each deletion did."""

    def __init__(self, capture: Capture, registry_url: str) -> None:
        super().__init__(daemon=True)
        self.capture = capture
        self.decoder = AvroDecoder(registry_client(registry_url))
        self.seen: dict[tuple[str, str], float] = {}
        self.deleted: dict[str, float] = {}
        self.stop_event = threading.Event()
        self.consumer = Consumer({"bootstrap.servers": capture.view.settings.kafka.bootstrap_servers,
                                  "group.id": f"bench-{capture.mode}-{time.time_ns()}", "fetch.wait.max.ms": "10"})
        topic = capture.topic("material")
        meta = self.consumer.list_topics(topic, timeout=10).topics[topic]
        self.consumer.assign([TopicPartition(topic, p, self.consumer.get_watermark_offsets(
            TopicPartition(topic, p), timeout=10)[1]) for p in meta.partitions])

    def run(self) -> None:
        while not self.stop_event.is_set():
            for msg in self.consumer.consume(500, 0.1):
                if msg.error() or msg.value() is None:
                    continue
                now = time.time()
                event = self.decoder.decode(msg.value())
                key = msg.key().decode()
                if event["op"] == "d":
                    self.deleted.setdefault(key, now)
                    continue
                for text in (event["after"] or {}).get("texts") or []:
                    self.seen.setdefault((key, str(text.get("FNAME"))), now)
        self.consumer.close()


def final_documents(capture: Capture, document: str, decoder: AvroDecoder) -> dict[str, Any]:
    """The last event of every key on a mode's topic: its document, or None after a deletion."""
    out: dict[str, Any] = {}
    for key, value in capture.view.read_topic(f"kingdee.{document}", 120):
        if value is None:
            out[(key or b"").decode()] = None
            continue
        event = decoder.decode(value)
        out[(key or b"").decode()] = event["after"]
    return out


def comparable(doc: Any, leave_out: set[str], top: bool = True) -> Any:
    """``doc`` without the fields left out: a name anywhere, a ``.name`` only at the document's top level."""
    if isinstance(doc, dict):
        return {k: comparable(v, leave_out, False) for k, v in doc.items()
                if k not in leave_out and not (top and f".{k}" in leave_out)}
    if isinstance(doc, list):
        return [comparable(v, leave_out, False) for v in doc]
    return doc


def first_difference(reference: dict[str, Any], other: dict[str, Any], leave_out: set[str]) -> str:
    """The first document that differs, and where (for the printout)."""
    for key, doc in reference.items():
        theirs = other.get(key)
        if doc is None or theirs is None:
            continue
        where = _leaf_difference(comparable(doc, leave_out), comparable(theirs, leave_out), key)
        if where:
            return where
    return ""


def _leaf_difference(mine: Any, theirs: Any, path: str) -> str:
    if isinstance(mine, dict) and isinstance(theirs, dict):
        for k in sorted(set(mine) | set(theirs)):
            if (found := _leaf_difference(mine.get(k), theirs.get(k), f"{path}.{k}")):
                return found
        return ""
    if isinstance(mine, list) and isinstance(theirs, list) and len(mine) == len(theirs):
        for i, (a, b) in enumerate(zip(mine, theirs, strict=True)):
            if (found := _leaf_difference(a, b, f"{path}[{i}]")):
                return found
        return ""
    return "" if mine == theirs else f"{path}: log {str(mine)[:200]} · this mode {str(theirs)[:200]}"


def differences(reference: dict[str, Any], other: dict[str, Any], leave_out: set[str]) -> dict[str, int]:
    missing = sum(1 for k, v in reference.items() if v is not None and other.get(k) is None)
    extra = sum(1 for k, v in other.items() if v is not None and reference.get(k) is None)
    different = sum(1 for k, v in reference.items() if v is not None and other.get(k) is not None
                    and comparable(v, leave_out) != comparable(other[k], leave_out))
    return {"missing": missing, "extra": extra, "different": different}


def random_workload(env: IsolatedEnv, n: int, rng: random.Random, kill: Any) -> None:
    """``n`` random saves of materials, customers and sales orders as Kingdee makes them; ``kill`` at 1/3 and 2/3."""
    materials = [insert_material(env.kingdee, f"7.01.{i:04d}", f"负载物料 {i}", "成人") for i in range(20)]
    customers = [insert_customer(env.kingdee, f"CUST7{i:03d}", f"负载客户 {i}") for i in range(5)]
    orders = []
    for step in range(n):
        if step in (n // 3, 2 * n // 3):
            kill()
        roll = rng.random()
        if roll < 0.25:
            materials.append(insert_material(env.kingdee, f"7.02.{step:05d}", f"新物料 {step}", "F12"))
        elif roll < 0.45 and materials:
            update_material(env.kingdee, rng.choice(materials), name=f"改名物料 {step}")
        elif roll < 0.5 and len(materials) > 5:
            delete_material(env.kingdee, materials.pop(rng.randrange(len(materials))))
        elif roll < 0.6:
            customers.append(insert_customer(env.kingdee, f"CUST8{step:05d}", f"新客户 {step}"))
        elif roll < 0.8:
            lines = [OrderLine(rng.choice(materials), rng.randint(1, 20), str(rng.randint(10, 500)))
                     for _ in range(rng.randint(1, 4))]
            orders.append(insert_sales_order(env.kingdee, rng.choice(customers), lines))
        elif roll < 0.9 and orders:
            order = rng.choice(orders)
            update_order_line(env.kingdee, rng.choice(order.entry_ids), qty=Decimal(rng.randint(1, 30)))
        elif roll < 0.95 and orders:
            set_document_status(env.kingdee, "T_SAL_ORDER", rng.choice(orders).fid, rng.choice("DC"))
        elif orders:
            delete_sales_order(env.kingdee, orders.pop(rng.randrange(len(orders))).fid)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=100.0, help="materials saved per second in the latency phase")
    ap.add_argument("--duration", type=float, default=30.0, help="seconds of the latency phase")
    ap.add_argument("--workload", type=int, default=600, help="random saves in the correctness phase")
    ap.add_argument("--keyset", type=float, default=10.0, help="the polled modes' key-set cycle, seconds")
    ap.add_argument("--idle", type=float, default=60.0, help="seconds of the idle window")
    ap.add_argument("--modes", default=",".join(MODES), help="log (always, the baseline) and the polled modes")
    args = ap.parse_args()
    polled = [m for m in args.modes.split(",") if m in MODES and m != "log"]

    from infra.stack.manager import up

    up(get_settings(), ["postgres", "kafka", "registry"])
    get_settings.cache_clear()
    settings = get_settings()
    tmp = Path(tempfile.mkdtemp(prefix="cdchub-bench-modes-"))
    zoho = SimulatorProcess("infra.simulators.zoho", args=["--state-dir", str(tmp / "zoho")],
                            log_path=tmp / "zoho.log").start()
    try:
        with isolated_env(settings, ZohoSim(zoho.base_url), zoho.base_url, tmp) as env:
            webapi = env.start_kingdee_api()
            seed(env.kingdee, materials=200, customers=40, orders=60)
            pool = bulk_insert_materials(env.kingdee, int(args.rate * args.duration) + 100, prefix="6.01.")
            intervals = {"query": 1.0, "webapi": 5.0}
            captures = {"log": Capture(env, "log", None, args.keyset),
                        **{m: Capture(env, m, intervals[m], args.keyset) for m in polled}}
            t0 = time.monotonic()
            for c in captures.values():
                c.start()
            for c in captures.values():
                wait_for(lambda c=c: c.stats().get("snapshot_events", 0) > 0 or c.stats().get("acked_lsn", 0) > 0,
                         600, f"the {c.mode} capture's snapshot", 0.5)
                print(f"{c.mode:<7} snapshot sent {time.monotonic() - t0:6.1f} s after start "
                      f"({c.stats().get('snapshot_events', 0)} documents)")
            arrivals = {m: Arrivals(c, settings.registry.url) for m, c in captures.items()}
            for a in arrivals.values():
                a.start()

            n = int(args.rate * args.duration)
            print(f"== latency, commit → Kafka: {n} materials saved at {args.rate:g}/s, each once")
            load0 = {m: c.stats() for m, c in captures.items()}
            calls0 = len(webapi.requests())
            committed: dict[tuple[str, str], float] = {}
            start = time.monotonic()
            for i in range(n):
                time.sleep(max(0.0, start + i / args.rate - time.monotonic()))  # pacing the load generator
                mid, name = pool[i], f"负载 {i} 号"
                update_material(env.kingdee, mid, name=name)
                committed[(str(mid), name)] = time.time()
            load_s = time.monotonic() - start
            for m, a in arrivals.items():
                wait_for(lambda a=a: all(k in a.seen for k in committed), 120, f"{m} to carry every save", 0.5)
            load1 = {m: c.stats() for m, c in captures.items()}
            calls1 = len(webapi.requests())
            for m, a in arrivals.items():
                lat = percentiles([(a.seen[k] - t) * 1000 for k, t in committed.items()])
                print(f"{m:<7} p50 {lat['p50']:7.0f} ms  p95 {lat['p95']:7.0f} ms  p99 {lat['p99']:7.0f} ms  "
                      f"max {lat['max']:7.0f} ms")
            for m in polled:
                calls = load1[m].get("source_calls", 0) - load0[m].get("source_calls", 0)
                rows = load1[m].get("source_rows", 0) - load0[m].get("source_rows", 0)
                print(f"{m:<7} under load: {calls / load_s:6.1f} {'statements' if m == 'query' else 'API calls'}/s, "
                      f"{rows / n:5.1f} rows read per changed document")
            if "webapi" in polled:
                print(f"webapi  under load, as the simulator logged them: {(calls1 - calls0) / load_s * 60:6.0f} "
                      "calls/min")

            print(f"== a deletion (key-set cycle {args.keyset:g} s)")
            doomed = pool[-5:]
            deleted_at = time.time()
            for mid in doomed:
                delete_material(env.kingdee, mid)
            for m, a in arrivals.items():
                wait_for(lambda a=a: all(str(d) in a.deleted for d in doomed), args.keyset * 3 + 30,
                         f"{m} to carry the deletions", 0.2)
                seen = [a.deleted[str(d)] - deleted_at for d in doomed]
                print(f"{m:<7} deletion seen after {min(seen):5.2f}–{max(seen):5.2f} s")

            print(f"== idle, {args.idle:g} s")
            idle0 = {m: c.stats() for m, c in captures.items()}
            idle_calls0 = len(webapi.requests())
            time.sleep(args.idle)  # the idle window being measured
            idle1 = {m: c.stats() for m, c in captures.items()}
            for m in polled:
                calls = idle1[m].get("source_calls", 0) - idle0[m].get("source_calls", 0)
                print(f"{m:<7} idle: {calls / args.idle * 60:6.0f} {'statements' if m == 'query' else 'API calls'}"
                      "/min")
            if "webapi" in polled:
                print(f"webapi  idle, as the simulator logged them: "
                      f"{(len(webapi.requests()) - idle_calls0) / args.idle * 60:6.0f} calls/min")
            for a in arrivals.values():
                a.stop_event.set()

            print(f"== correctness: {args.workload} random saves, every capture killed -9 twice")
            kills = {"n": 0}

            def kill_all() -> None:
                for c in captures.values():
                    c.kill()
                    c.start()
                kills["n"] += 1

            random_workload(env, args.workload, random.Random(7), kill_all)
            done = time.monotonic()
            decoder = AvroDecoder(registry_client(settings.registry.url))
            # what a document shows of a reference declared not to be re-sent is as of the document's last build,
            # which differs by mode (the log builds an order when it changes, a poll when it reads it): left out
            frozen = {f"{ref.name}_{what}" for spec in DocumentCatalog().specs if spec.name in DOCUMENTS
                      for ref in spec.references if not ref.resend for what in ("number", "name")}
            leave_out: dict[str, set[str]] = {m: set(frozen) for m in polled}
            if "webapi" in polled:  # keys the WebAPI cannot give, stood in by the document id (webapi_reader.py)
                leave_out["webapi"] |= {"FPKID", ".FENTRYID"}

            def converged() -> dict[str, dict[str, dict[str, int]]] | None:
                reference = {d: final_documents(captures["log"], d, decoder) for d in DOCUMENTS}
                table = {m: {d: differences(reference[d], final_documents(captures[m], d, decoder),
                                            leave_out.get(m, set())) for d in DOCUMENTS} for m in polled}
                return table if all(v == 0 for t in table.values() for c in t.values() for v in c.values()) else None

            try:
                wait_for(converged, args.keyset * 3 + 120, "the modes to agree", 2.0)
                print(f"all modes agree {time.monotonic() - done:.1f} s after the last save")
            except AssertionError:
                print("the modes do not agree:")
            reference = {d: final_documents(captures["log"], d, decoder) for d in DOCUMENTS}
            for m in polled:
                for d in DOCUMENTS:
                    diff = differences(reference[d], final_documents(captures[m], d, decoder),
                                       leave_out.get(m, set()))
                    live = sum(1 for v in reference[d].values() if v is not None)
                    print(f"{m:<7} {d:<12} {live:5d} live in log mode · missing {diff['missing']} · extra "
                          f"{diff['extra']} · different {diff['different']}")
                    if diff["different"]:
                        print("        e.g. " + first_difference(reference[d], final_documents(captures[m], d,
                                                                                                decoder),
                                                                   leave_out.get(m, set())))
            for c in captures.values():
                c.stop()
    finally:
        zoho.stop()


if __name__ == "__main__":
    main()
