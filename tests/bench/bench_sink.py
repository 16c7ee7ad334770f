"""Benchmark of the sink at the CRM's pace (issue 16); prints figures, asserts nothing about time.

1. The ZOHO simulator's own upsert ceiling: a plain client, calls of 100, the org's concurrency, no Kafka, no ledger
   (``sink_ceiling.py``), on a fresh simulator.
2. The materials flow draining a backlog of ``--records`` captured materials into another fresh simulator:
   records/s (from the flow's start, and between the CRM's first and last write), the ratio to the ceiling
   (target ≥ 80 %), and credits per record as the simulator counted them (target ≤ 0.1; ZOHO charges one credit
   per 10 records written).
3. End to end at ``--rate`` single-material transactions/s for ``--duration`` s from ``--writers`` connections:
   Kingdee commit → applied in the CRM, p50/p95/p99 (targets p50 ≤ 150 ms, p99 ≤ 1 s), split at Kafka into
   capture and flow (``sink_latency.py``).

The setup is ``bench_materials``' (``isolated_env``, ``env.capture()``, ``env.flow()``, the simulator's clock);
progress is read from the simulator's write log, not by listing every record (``sim_writes.py``).

    python -m tests.bench.bench_sink [--records 20000] [--rate 1000] [--duration 60] [--writers 4]
    python -m tests.bench.bench_sink --records 2000 --rate 200 --duration 10      # a quick run
"""

from __future__ import annotations

import argparse
import socket
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from connectors.settings import Settings, get_settings
from infra.simulators.common.process import SimulatorProcess
from infra.simulators.kingdee.erp import bulk_insert_materials
from tests.bench import sink_ceiling, sink_latency
from tests.bench.bench_materials import fmt, percentiles, topic_size
from tests.bench.process_meter import cpu_seconds
from tests.bench.sim_writes import SimWrites
from tests.integration.harness import ZohoSim, isolated_env, wait_for


def simulator(tmp: Path, name: str) -> SimulatorProcess:
    return SimulatorProcess("infra.simulators.zoho", args=["--state-dir", str(tmp / name)],
                            log_path=tmp / f"{name}.log").start()


def credits_used(base_url: str) -> int:
    return int(httpx.get(f"{base_url}/__sim/limits", timeout=10).json()["credits_used"])


def _answers(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
        return True
    except OSError:
        return False


def stack() -> Settings:
    """The local stack's settings; PostgreSQL, Kafka and the registry started unless they already answer (a stack
    another checkout started is used as it is)."""
    s = get_settings()
    registry = urlsplit(s.registry.url)
    kafka_host, kafka_port = s.kafka.bootstrap_servers.split(",")[0].rsplit(":", 1)
    ports: list[tuple[str, int]] = [(s.kingdee_db.host, int(s.kingdee_db.port)), (kafka_host, int(kafka_port)),
                                    (registry.hostname or "127.0.0.1", registry.port or 80)]
    if not all(_answers(h, p) for h, p in ports):
        from infra.stack.manager import up

        up(s, ["postgres", "kafka", "registry"])
        get_settings.cache_clear()
    return get_settings()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=20000, help="backlog of materials the flow drains")
    ap.add_argument("--rate", type=float, default=1000.0, help="single-material transactions/s, end to end")
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of steady load, end to end")
    ap.add_argument("--writers", type=int, default=4, help="writer connections of the steady load")
    args = ap.parse_args()

    settings = stack()
    tmp = Path(tempfile.mkdtemp(prefix="cdchub-bench-sink-"))
    concurrency = settings.zoho.max_concurrency

    print(f"== 1. the ZOHO simulator's upsert ceiling: {args.records} records, calls of 100, {concurrency} in flight")
    plain = simulator(tmp, "sim-ceiling")
    try:
        ceiling = sink_ceiling.measure(settings.zoho.model_copy(update={
            "accounts_url": plain.base_url, "api_domain": plain.base_url}), args.records)
    finally:
        plain.stop()
    print(f"plain client: {ceiling.rate:>6.0f} records/s ({ceiling.seconds:.2f} s, {ceiling.calls} calls, "
          f"{ceiling.credits / ceiling.records:.3f} credits/record)")

    sim = simulator(tmp, "sim-flow")
    try:
        with isolated_env(settings, ZohoSim(sim.base_url), sim.base_url, tmp) as env:
            writes = SimWrites(sim.base_url)
            env.capture()
            wait_for(lambda: (env.settings.state_dir / "capture-stats.json").exists(), 60, "the capture to start")
            bulk_insert_materials(env.kingdee, args.records, prefix="8.01.")
            wait_for(lambda: topic_size(env, "kingdee.material") >= args.records, 900, "the backlog in Kafka", 0.1)

            print(f"== 2. the materials flow draining {args.records} materials from Kafka into the CRM simulator")
            credits0 = credits_used(sim.base_url)
            sim_cpu0 = cpu_seconds(sim.pid)
            t0 = time.time()
            flow = env.flow()
            assert flow.proc is not None
            first = wait_for(lambda: writes.poll(), 900, "the flow's first write", 0.05)
            flow_cpu_writing0 = cpu_seconds(flow.proc.pid)
            wait_for(lambda: writes.poll() >= args.records, 900, "the backlog in the CRM", 0.1)
            from_start = time.time() - t0
            flow_cpu, sim_cpu = cpu_seconds(flow.proc.pid), cpu_seconds(sim.pid) - sim_cpu0
            per_record_writing = (flow_cpu - flow_cpu_writing0) / max(1, args.records - first) * 1e6
            stamps = sorted(writes.first_applied.values())
            writing = (stamps[-1] - stamps[0]) / 1000
            credits = credits_used(sim.base_url) - credits0
            rate = args.records / writing
            print(f"flow:         {args.records / from_start:>6.0f} records/s from the flow's start "
                  f"({from_start:.1f} s, start-up included); {rate:.0f} records/s between the CRM's first and "
                  f"last write ({writing:.2f} s)")
            print(f"ratio to the ceiling: {rate / ceiling.rate:.0%} (target >= 80 %); "
                  f"from the start {args.records / from_start / ceiling.rate:.0%}")
            print(f"CPU: the flow {flow_cpu:.1f} s ({per_record_writing:.0f} µs per record once writing, start-up "
                  f"excluded); the simulator {sim_cpu:.1f} s = {sim_cpu / args.records * 1e6:.0f} µs per record")
            print(f"credits: {credits} for {args.records} records = {credits / args.records:.3f} per record "
                  f"(target <= 0.1)")

            print(f"== 3. end to end at {args.rate:g} single-material transactions/s for {args.duration:g} s, "
                  f"{args.writers} writer connections")
            steady_cpu0, steady_credits0 = cpu_seconds(flow.proc.pid), credits_used(sim.base_url)
            lat = sink_latency.steady(env, writes, args.rate, args.duration, args.writers)
            steady_cpu = cpu_seconds(flow.proc.pid) - steady_cpu0
            steady_credits = credits_used(sim.base_url) - steady_credits0
            print(f"written: {lat.sent} transactions in {lat.write_s:.1f} s = {lat.write_rate:.0f} tx/s; the flow's "
                  f"CPU {steady_cpu:.1f} s = {steady_cpu / max(1, lat.sent) * 1e6:.0f} µs per record; "
                  f"{steady_credits / max(1, lat.sent):.3f} credits per record")
            print(f"commit → applied  {fmt(percentiles(lat.end_to_end_ms))}   (targets p50 <= 150, p99 <= 1000)")
            print(f"  capture (commit → Kafka)   {fmt(percentiles(lat.capture_ms))}")
            print(f"  flow (Kafka → applied)     {fmt(percentiles(lat.flow_ms))}")
            flow.stop()
    finally:
        sim.stop()


if __name__ == "__main__":
    main()
