"""Benchmark of the runtime (docs/runtime.md) on the real local stack; prints figures, asserts nothing about time.

1. **Idle footprint, before and after, in one run.**  The same demo installation (its own database, simulators,
   topics and state) run twice: *before* — the runtime as it was until issue 12: one process per flow and poller
   (the code of commit ``--before``, checked out in a temporary worktree; with today's capture, since the old one
   decoded with a plugin PostgreSQL no longer loads) — and *after* — capture, pollers and three dataflows.  Once the
   demo data is in the CRM and things are quiet, CPU of all cdchub processes and of the Kafka broker over
   ``--idle`` seconds, RSS, broker connections, and ZOHO tokens minted / refused.
2. **Restarts.**  The new runtime stopped and started ten times in a row (with a change each time): tokens minted
   and refused, and the longest time a change waited for the CRM.
3. **Scale-out.**  ``--changes`` materials captured once; the materials path run with 1 worker, 2 workers and 2
   processes (``-i/-a``), each into a fresh CRM: throughput, and whether the CRM ends the same; then 2 processes
   again with one of them killed (-9) halfway and the pair restarted: lost / duplicated / different records.

    python -m tests.bench.bench_runtime [--idle 60] [--changes 20000] [--restarts 10] [--before 999333a]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, func, select, text

from connectors.kingdee import models as m
from connectors.settings import Settings, get_settings
from core.process import interruptible
from core.settings import CACHE_DIR, PROJECT_ROOT
from infra.simulators.common.process import SimulatorProcess
from infra.simulators.kingdee.erp import bulk_insert_materials, insert_material
from tests.bench.installation import (
    Installation,
    Processes,
    SupervisedRun,
    broker_connections,
    broker_pid,
    cli,
    cpu_seconds,
    rss_mb,
)
from tests.integration.harness import ZohoSim, wait_for

BEFORE_FLOWS = ("materials", "products_to_kingdee", "customers", "accounts_to_kingdee", "converted_leads",
                "sales_orders", "crm_orders_to_kingdee", "deliveries", "invoices", "receipts", "inventory",
                "campaign_approvals", "approval_status", "expenses_to_kingdee", "campaign_costs")
def start_after(inst: Installation, procs: Processes) -> None:
    from cdchub.runtime import dataflow_commands
    from flows.dataflows import DATAFLOWS

    settings = inst.settings()
    procs.start("capture", cli("capture"))
    procs.start("pollers", cli("pollers"))
    for name in DATAFLOWS:
        for i, command in enumerate(dataflow_commands(name, settings)):
            procs.start(f"{name}-{i}", command)


def start_before(inst: Installation, procs: Processes, worktree: Path) -> None:
    procs.start("capture", cli("capture"))  # today's capture: the old one's decoder is refused by PostgreSQL
    # The old flows fail when a topic they read is a moment old (fixed since in ensure_topics): start them once the
    # capture's snapshot, and so its topics, are there.
    stats = inst.settings().state_dir / "capture-stats.json"
    wait_for(lambda: stats.exists() and json.loads(stats.read_text()).get("snapshot_events", 0) > 0, 120,
             "the capture's snapshot", 0.2)
    for poller in ("poll-zoho", "poll-weaver", "poll-huilianyi"):
        procs.start(poller, cli(poller), cwd=worktree)
    for flow in BEFORE_FLOWS:
        procs.start(f"flow-{flow}", cli("flow", flow), cwd=worktree)


@contextmanager
def before_worktree(commit: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="cdchub-before-"))
    subprocess.run(["git", "worktree", "add", "--detach", str(path), commit], cwd=PROJECT_ROOT, check=True,
                   capture_output=True)
    (path / ".cache").mkdir()
    (path / ".cache" / "secrets").symlink_to(CACHE_DIR / "secrets")
    try:
        yield path
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=PROJECT_ROOT, capture_output=True)
        shutil.rmtree(path, ignore_errors=True)


def audited_materials(inst: Installation) -> set[str]:
    engine = create_engine(inst.settings().kingdee_db.sqlalchemy_url())
    with engine.connect() as conn:
        ids = {str(r[0]) for r in conn.execute(text(
            'SELECT "FMATERIALID" FROM "T_BD_MATERIAL" WHERE "FDOCUMENTSTATUS" = \'C\''))}
    engine.dispose()
    return ids


def idle_footprint(label: str, inst: Installation, procs: Processes | SupervisedRun, idle_s: float) -> dict[str, Any]:
    audited = audited_materials(inst)
    started = time.monotonic()
    wait_for(lambda: audited <= set(inst.crm.by_kingdee_id()), 600, f"{label}: the demo materials in the CRM", 1)
    synced_s = time.monotonic() - started
    time.sleep(20)  # let the start-up work (snapshot, first polls) finish before measuring what idling costs
    pids, broker = procs.pids(), broker_pid()
    cpu0 = {p: cpu_seconds(p) for p in pids}
    broker0 = cpu_seconds(broker)
    time.sleep(idle_s)  # the measurement window
    per_process = {name: (cpu_seconds(proc.pid) - cpu0.get(proc.pid, 0.0)) / idle_s
                   for name, proc in procs.procs.items()}
    cpu = sum(per_process.values())
    print(f"   {label}: CPU (cores) and RSS (MB) per process over {idle_s:.0f} s: "
          + ", ".join(f"{n} {c:.3f}/{rss_mb(procs.procs[n].pid):.0f}"
                      for n, c in sorted(per_process.items(), key=lambda kv: -kv[1])))
    broker_cpu = (cpu_seconds(broker) - broker0) / idle_s
    minted, refused = inst.token_requests()
    return {"label": label, "processes": len(pids), "cpu": cpu, "broker_cpu": broker_cpu,
            "rss": sum(rss_mb(p) for p in pids), "connections": broker_connections(19092), "minted": minted,
            "refused": refused, "synced_s": synced_s}


def restarts(inst: Installation, procs: SupervisedRun, count: int) -> dict[str, Any]:
    settings = inst.settings()
    engine = create_engine(settings.kingdee_db.sqlalchemy_url())
    minted0, refused0 = inst.token_requests()
    stalls = []
    started = time.monotonic()
    for i in range(count):
        procs.stop()
        procs.start()
        committed = time.monotonic()
        mid = insert_material(engine, f"7.77.{i:04d}", f"重启后的物料 {i}", "成人")
        wait_for(lambda mid=mid: str(mid) in inst.crm.by_kingdee_id(), 300, "a change after a restart", 0.1)
        stalls.append(time.monotonic() - committed)
    minted, refused = inst.token_requests()
    # an hour of traffic in short: the token expires three times (the simulator ends it), a change after each
    for i in range(3):
        httpx.post(inst.urls["zoho"] + "/__sim/expire-tokens", timeout=10).raise_for_status()
        mid = insert_material(engine, f"7.78.{i:04d}", f"令牌过期后的物料 {i}", "成人")
        wait_for(lambda mid=mid: str(mid) in inst.crm.by_kingdee_id(), 300, "a change after a token expiry", 0.1)
    after_expiry, refused_expiry = inst.token_requests()
    engine.dispose()
    return {"restarts": count, "minutes": (time.monotonic() - started) / 60, "minted": minted - minted0,
            "refused": refused - refused0, "longest_s": max(stalls), "median_s": sorted(stalls)[len(stalls) // 2],
            "expiry_mints": after_expiry - minted, "expiry_refused": refused_expiry - refused}


def crm_state(sim: ZohoSim) -> dict[str, tuple[Any, ...]]:
    records = sim.records()
    state: dict[str, tuple[Any, ...]] = {}
    for r in records:
        state.setdefault(str(r.get("Kingdee_ID")), ())
        state[str(r.get("Kingdee_ID"))] += ((r.get("Product_Name"), r.get("Product_Code")),)
    return state


def scale_run(label: str, inst: Installation, settings: Settings, workers: int, processes: int, n: int,
              kill_halfway: bool = False) -> dict[str, Any]:
    """The materials flow alone over the captured topic into a fresh CRM simulator and state."""
    from cdchub.runtime import bytewax_command, recovery_dir

    run_dir = inst.tmp / f"scale-{label.replace(' ', '-').replace(',', '')}"
    run_dir.mkdir(parents=True, exist_ok=True)
    sim = SimulatorProcess("infra.simulators.zoho", args=["--state-dir", str(run_dir / "sim")],
                           log_path=run_dir / "sim.log").start()
    env = {**inst.env, "CDCHUB_STATE_DIR": str(run_dir / "state"), "CDCHUB_ZOHO__ACCOUNTS_URL": sim.base_url,
           "CDCHUB_ZOHO__API_DOMAIN": sim.base_url}
    local = settings.model_copy(update={"state_dir": run_dir / "state"})
    recovery = recovery_dir(local, "materials", workers * processes)
    ports = [str(20100 + i + 10 * workers) for i in range(processes)]
    addresses = [f"127.0.0.1:{p}" for p in ports] if processes > 1 else None
    commands = [bytewax_command("flows.dataflows:single('materials')", recovery, workers,
                                i if addresses else None, addresses) for i in range(processes)]
    procs = Processes(env, run_dir / "logs")
    crm = ZohoSim(sim.base_url)
    try:
        started = time.monotonic()
        for i, command in enumerate(commands):
            procs.start(f"materials-{i}", command)
        killed = None
        if kill_halfway:
            wait_for(lambda: len(crm.records()) >= n // 2, 900, "half of the materials", 0.5)
            killed = len(crm.records())
            victim = list(procs.procs.values())[-1]
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            procs.stop(30)  # a Bytewax cluster member gone: its peers stop too; both start again
            for i, command in enumerate(commands):
                procs.start(f"materials-{i}-again", command)
        wait_for(lambda: len(crm.records()) >= n, 1800, f"{label}: all materials in the CRM", 0.5)
        took = time.monotonic() - started
        state = crm_state(crm)
        writes = httpx.get(sim.base_url + "/__sim/requests", params={"path_regex": "upsert"},
                           timeout=30).json()["count"]
    finally:
        procs.stop()
        sim.stop()
    return {"label": label, "seconds": took, "rate": n / took, "state": state, "killed_at": killed,
            "upsert_calls": writes}


def main() -> None:
    interruptible()  # Ctrl-C (SIGINT) reaches us and our finally blocks even when started with `&` from a script
    ap = argparse.ArgumentParser()
    ap.add_argument("--idle", type=float, default=60.0, help="seconds of idle measured")
    ap.add_argument("--changes", type=int, default=20000, help="materials of the scale-out workload")
    ap.add_argument("--restarts", type=int, default=10)
    ap.add_argument("--before", default="999333a", help="the commit whose runtime is 'before'")
    ap.add_argument("--skip", default="", help="comma-separated: before, restarts, scale")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))

    from infra.stack.manager import up

    up(get_settings(), ["postgres", "kafka", "registry"])
    get_settings.cache_clear()
    base = get_settings()
    tmp = Path(tempfile.mkdtemp(prefix="cdchub-bench-runtime-"))
    print(f"== runtime benchmark ({os.cpu_count()} cores); logs in {tmp}")

    footprints = []
    if "before" not in skip:
        inst = Installation(base, tmp / "before").start()
        procs = Processes(inst.env, inst.tmp / "logs")
        try:
            with before_worktree(args.before) as worktree:
                start_before(inst, procs, worktree)
                footprints.append(idle_footprint(f"before ({args.before}: a process per flow)", inst, procs,
                                                 args.idle))
        finally:
            procs.stop()
            inst.stop()
    inst = Installation(base, tmp / "after", own_sims=False).start()
    run = SupervisedRun(inst.env, inst.tmp / "logs")
    restart_figures = None
    try:
        run.start()
        footprints.append(idle_footprint("after (cdchub run: supervisor + 5 processes)", inst, run, args.idle))
        if "restarts" not in skip:
            restart_figures = restarts(inst, run, args.restarts)
    finally:
        run.stop()
        inst.stop()

    print(f"== idle, everything running, {args.idle:.0f} s after the demo data synced")
    print(f"{'':<44} {'procs':>5} {'cdchub CPU':>10} {'broker CPU':>10} {'cdchub RSS':>10} {'conns':>6} "
          f"{'tokens':>6} {'refused':>7} {'synced in':>9}")
    for f in footprints:
        print(f"{f['label']:<44} {f['processes']:>5} {f['cpu']:>9.3f}c {f['broker_cpu']:>9.3f}c "
              f"{f['rss']:>8.0f}MB {f['connections']:>6} {f['minted']:>6} {f['refused']:>7} {f['synced_s']:>8.1f}s")
    if restart_figures:
        r = restart_figures
        print(f"== {r['restarts']} restarts of the runtime in {r['minutes']:.1f} min, a change after each: "
              f"{r['minted']} tokens minted, {r['refused']} refused; change → CRM after a restart: median "
              f"{r['median_s']:.1f} s, longest {r['longest_s']:.1f} s; then 3 token expiries: {r['expiry_mints']} "
              f"tokens minted, {r['expiry_refused']} refused")

    if "scale" in skip:
        return
    inst = Installation(base, tmp / "scale").start(demo=False)
    try:
        settings = inst.settings()
        engine = create_engine(settings.kingdee_db.sqlalchemy_url())
        bulk_insert_materials(engine, args.changes, prefix="6.01.")
        with engine.connect() as conn:
            n = conn.execute(select(func.count()).select_from(m.T_BD_MATERIAL).where(
                m.T_BD_MATERIAL.c.FDOCUMENTSTATUS == "C")).scalar_one()
        engine.dispose()
        capture = Processes(inst.env, inst.tmp / "logs")
        capture.start("capture", cli("capture"))
        wait_for(lambda: captured(settings) >= args.changes, 900, "the materials captured", 0.5)
        capture.stop()
        runs = [scale_run("1 worker", inst, settings, 1, 1, n),
                scale_run("2 workers", inst, settings, 2, 1, n),
                scale_run("2 processes", inst, settings, 1, 2, n),
                scale_run("2 processes, one killed", inst, settings, 1, 2, n, kill_halfway=True)]
    finally:
        inst.stop()
    reference = runs[0]["state"]
    print(f"== scale-out: the materials path, {n} materials captured once, each run into a fresh CRM")
    for r in runs:
        state = r["state"]
        lost = len(set(reference) - set(state))
        duplicated = sum(1 for v in state.values() if len(v) > 1)
        differ = sum(1 for k, v in state.items() if k in reference and v[:1] != reference[k][:1])
        extra = f", killed at {r['killed_at']}" if r["killed_at"] is not None else ""
        print(f"{r['label']:<26} {r['seconds']:>7.1f} s {r['rate']:>7.0f} records/s  {r['upsert_calls']:>5} upsert "
              f"calls  lost {lost}  duplicated {duplicated}  different {differ}{extra}")
    print(json.dumps({"footprints": footprints, "restarts": restart_figures,
                      "scale": [{k: v for k, v in r.items() if k != "state"} for r in runs]}, default=str))


def captured(settings: Settings) -> int:
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    consumer = Consumer({"bootstrap.servers": settings.kafka.bootstrap_servers, "group.id": "bench-runtime"})
    topic = settings.kafka.topic("kingdee.material")
    meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
    total = 0
    if meta is not None and meta.error is None:
        try:
            total = sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                        for p in meta.partitions)
        except KafkaException:  # a topic a moment old may have no leader yet: nothing counted, asked again
            total = 0
    consumer.close()
    return total


if __name__ == "__main__":
    main()
