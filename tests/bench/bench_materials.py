"""Benchmark of the materials path on the real local stack; prints figures, asserts nothing about time.

1. Capture throughput: documents/s from the replication slot into Kafka (Avro), for a bulk insert in one
   transaction and for a burst of single-material transactions.
2. Flow throughput: records/s from Kafka into the ZOHO CRM simulator (upserts of 100).
3. End-to-end latency, Kingdee commit → record applied in the CRM simulator (p50/p95/p99/max), at a steady rate of
   single-material transactions — for cdchub and, in the same run on the same changes, for the polling baseline
   (ExecuteBillQuery-style query every ``--poll-interval`` seconds, 60 like the case's platform), with the ratio.
4. Peak RSS (VmHWM) of every process involved.

    python -m tests.bench.bench_materials [--bulk 20000] [--burst 2000] [--rate 10] [--duration 60] [--poll-interval 60]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from connectors.settings import get_settings
from connectors.zoho.client import ZohoClient
from core.settings import CACHE_DIR
from infra.simulators.common.process import SimulatorProcess
from infra.simulators.kingdee.erp import bulk_insert_materials, insert_material
from tests.bench.polling_baseline import PollingBaseline
from tests.integration.harness import IsolatedEnv, ZohoSim, isolated_env, wait_for


def topic_size(env: IsolatedEnv, name: str) -> int:
    consumer = Consumer({"bootstrap.servers": env.settings.kafka.bootstrap_servers, "group.id": "bench"})
    topic = env.topic(name)
    meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
    total = 0
    if meta is not None and not meta.error:
        for p in meta.partitions:
            total += consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
    consumer.close()
    return total


def vm_hwm_mb(pid: int | None) -> float | None:
    if not pid:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def stack_pid(name: str) -> int | None:
    path = CACHE_DIR / "run" / f"{name}.pid"
    return int(path.read_text().strip()) if path.exists() else None


def percentiles(values: list[float]) -> dict[str, float]:
    qs = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": qs[49], "p95": qs[94], "p99": qs[98], "max": max(values), "n": len(values)}


def fmt(stats: dict[str, float]) -> str:
    return "  ".join(f"{k} {v:>8.0f} ms" if k != "n" else f"n {v:.0f}" for k, v in stats.items())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bulk", type=int, default=20000)
    ap.add_argument("--burst", type=int, default=2000)
    ap.add_argument("--rate", type=float, default=10.0, help="steady-state changes per second")
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of steady-state load")
    ap.add_argument("--poll-interval", type=float, default=60.0, help="the baseline's schedule")
    args = ap.parse_args()

    from infra.stack.manager import up

    up(get_settings(), ["postgres", "kafka", "registry"])
    get_settings.cache_clear()
    settings = get_settings()
    tmp = Path(tempfile.mkdtemp(prefix="cdchub-bench-"))
    sim = SimulatorProcess("infra.simulators.zoho", args=["--state-dir", str(tmp / "sim")],
                           log_path=tmp / "sim.log").start()
    poll_sim = SimulatorProcess("infra.simulators.zoho", args=["--state-dir", str(tmp / "poll-sim")],
                                log_path=tmp / "poll-sim.log").start()
    rss: dict[str, float | None] = {}
    try:
        with isolated_env(settings, ZohoSim(sim.base_url), sim.base_url, tmp) as env:
            capture = env.capture()
            wait_for(lambda: (env.settings.state_dir / "capture-stats.json").exists(), 60, "the capture to start")

            print(f"== capture throughput (slot → Kafka, Avro), 2 cores, PostgreSQL {settings.kingdee_db.port}")
            bulk_insert_materials(env.kingdee, args.bulk, prefix="8.01.")
            t0 = time.monotonic()
            wait_for(lambda: topic_size(env, "kingdee.material") >= args.bulk, 600, "bulk capture", 0.02)
            bulk_s = time.monotonic() - t0
            print(f"bulk insert, {args.bulk} materials in one transaction: {args.bulk / bulk_s:>9.0f} documents/s "
                  f"({bulk_s:.2f} s after commit)")
            t0 = time.monotonic()
            for i in range(args.burst):
                insert_material(env.kingdee, f"8.02.{i:06d}", f"呼吸过滤器 {i}", "成人型")
            write_s = time.monotonic() - t0
            wait_for(lambda: topic_size(env, "kingdee.material") >= args.bulk + args.burst, 600, "burst", 0.02)
            burst_s = time.monotonic() - t0
            print(f"burst of {args.burst} single-material transactions: written in {write_s:.2f} s "
                  f"({args.burst / write_s:.0f} tx/s), all in Kafka {burst_s - write_s:.2f} s after the last commit")

            print("== flow throughput (Kafka → CRM simulator, upserts of 100)")
            t0 = time.monotonic()
            flow = env.flow()
            total = args.bulk + args.burst
            wait_for(lambda: len(env.zoho.records()) >= total, 900, "the backlog in the CRM", 0.5)
            flow_s = time.monotonic() - t0
            print(f"{total} records into the CRM in {flow_s:.1f} s from flow start: {total / flow_s:.0f} records/s")

            crm_b = ZohoClient(env.settings.zoho.model_copy(update={"accounts_url": poll_sim.base_url,
                                                                    "api_domain": poll_sim.base_url}))
            baseline = PollingBaseline(env.kingdee, crm_b, args.poll_interval)
            baseline.start()
            wait_for(lambda: baseline.polls >= 1, 600, "the baseline's initial sync", 0.5)

            n = int(args.rate * args.duration)
            print(f"== end-to-end latency, commit → applied in the CRM: {n} single-material transactions at "
                  f"{args.rate:g}/s; baseline polls every {args.poll_interval:g} s")
            committed: dict[str, float] = {}
            start = time.monotonic()
            for i in range(n):
                due = start + i / args.rate
                time.sleep(max(0.0, due - time.monotonic()))  # pacing the load generator, not a test wait
                mid = insert_material(env.kingdee, f"8.03.{i:06d}", f"麻醉面罩 {i}", "成人 4#")
                committed[str(mid)] = time.time() * 1000
            polls_at_end = baseline.polls
            wait_for(lambda: set(committed) <= set(env.zoho.by_kingdee_id()), 120, "cdchub to apply all", 0.2)
            poll_view = ZohoSim(poll_sim.base_url)
            wait_for(lambda: baseline.polls > polls_at_end and set(committed) <= set(poll_view.by_kingdee_id()),
                     args.poll_interval * 3 + 60, "the baseline to apply all", 0.5)
            baseline.stop_event.set()
            ours = env.zoho.by_kingdee_id()
            theirs = poll_view.by_kingdee_id()
            lat = percentiles([ours[k]["$applied_at_ms"] - t for k, t in committed.items()])
            base = percentiles([theirs[k]["$applied_at_ms"] - t for k, t in committed.items()])
            print(f"cdchub            {fmt(lat)}")
            print(f"polling baseline  {fmt(base)}")
            print(f"baseline / cdchub: p50 {base['p50'] / lat['p50']:.0f}x, p95 {base['p95'] / lat['p95']:.0f}x, "
                  f"p99 {base['p99'] / lat['p99']:.0f}x")

            rss = {
                "capture": vm_hwm_mb(capture.proc.pid if capture.proc else None),
                "flow": vm_hwm_mb(flow.proc.pid if flow.proc else None),
                "zoho simulator": vm_hwm_mb(sim._proc.pid if sim._proc else None),
                "kafka": vm_hwm_mb(stack_pid("kafka")),
                "registry": vm_hwm_mb(stack_pid("registry")),
                "bench (incl. baseline poller)": vm_hwm_mb(os.getpid()),
            }
    finally:
        sim.stop()
        poll_sim.stop()
    print("== peak RSS (VmHWM)")
    for name, mb in rss.items():
        print(f"{name:<30} {'-' if mb is None else f'{mb:.0f} MB'}")


if __name__ == "__main__":
    main()
