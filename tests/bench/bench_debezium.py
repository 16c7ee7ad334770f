"""cdchub's capture against Debezium's PostgreSQL connector (tuned), side by side in one run; prints figures,
asserts nothing about time.  Settings and method: docs/bench-debezium.md.

Each capture runs alone (the other not running) on a throwaway Kingdee database of its own on the shared stack,
with its own slot, publication and topics, all removed afterwards: first Debezium in Kafka Connect 4.1.1
standalone (fetched from Maven Central into .cache/debezium), then ``cdchub capture``.  Workloads
(tests/bench/capture_workloads.py): a bulk insert of materials in one transaction, an update of one column of
their header rows in one transaction, single-material transactions at a steady rate.

    python -m tests.bench.bench_debezium [--bulk 20000] [--updates 20000] [--rate 1000] [--duration 60]
        [--writers 4] [--warmup 200] [--volume 1000000] [--sides debezium,cdchub]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from confluent_kafka import Message

from connectors.common.avro import AvroDecoder, registry_client
from connectors.common.kafka import ensure_topics
from connectors.kingdee.documents import DocumentCatalog
from connectors.settings import Settings, get_settings
from core.settings import PROJECT_ROOT
from infra.simulators.kingdee.erp import bulk_insert_materials
from tests.bench.capture_workloads import (
    CaptureUnderTest,
    Measure,
    append_time_on,
    bulk_insert,
    bulk_update,
    steady_latency,
    volume,
)
from tests.bench.debezium_connect import DEBEZIUM_VERSION, ConnectWorker, connector_properties, fetch
from tests.integration.harness import IsolatedEnv, ZohoSim, isolated_env, wait_for

SIDES = ("debezium", "cdchub")
MATERIAL_TABLES = ("T_BD_MATERIAL", "T_BD_MATERIAL_L", "T_BD_MATERIALBASE")
DEBEZIUM_PUBLICATION = "bench_debezium"
NO_CRM = "http://127.0.0.1:9"  # the environment wants a CRM address; no flow runs, nothing calls it

Results = dict[str, Measure]


def run_workloads(capture: CaptureUnderTest, args: argparse.Namespace) -> Results:
    append_time_on(capture)
    base = capture.events()
    bulk_insert_materials(capture.env.kingdee, args.warmup, prefix="0.01.")  # JIT, caches, connections
    wait_for(lambda: capture.events() >= base + capture.events_per_insert * args.warmup, 300,
             f"{capture.name}'s warm-up", 0.2)
    out: Results = {}
    out["bulk"], ids = bulk_insert(capture, args.bulk, prefix="8.01.")
    print(f"{capture.name:<9} bulk insert    {out['bulk'].rows_per_s:>9.0f} rows/s  {out['bulk'].cpu_s:6.1f} CPU-s",
          flush=True)
    out["updates"] = bulk_update(capture, ids[: args.updates])
    print(f"{capture.name:<9} bulk update    {out['updates'].rows_per_s:>9.0f} rows/s  "
          f"{out['updates'].cpu_s:6.1f} CPU-s", flush=True)
    out["latency"] = steady_latency(capture, args.rate, args.duration, args.writers, prefix="8.03.")
    lat = out["latency"].latency_ms
    print(f"{capture.name:<9} latency        p50 {lat['p50']:.0f} / p95 {lat['p95']:.0f} / p99 {lat['p99']:.0f} ms at "
          f"{out['latency'].write_rate:.0f} tx/s written", flush=True)
    if args.volume:
        out["volume"] = volume(capture, args.volume, 5000, prefix="8.04.")
        print(f"{capture.name:<9} volume         {out['volume'].rows:,} rows, {out['volume'].rows_per_s:>9.0f} rows/s, "
              f"peak RSS {out['volume'].rss_mb or 0:.0f} MB", flush=True)
    return out


@contextmanager
def throwaway(settings: Settings, tmp: Path, name: str) -> Iterator[IsolatedEnv]:
    (tmp / name).mkdir()
    with isolated_env(settings, ZohoSim(NO_CRM), NO_CRM, tmp / name) as env:
        yield env


def run_debezium(settings: Settings, tmp: Path, args: argparse.Namespace) -> Results:
    tables = list(DocumentCatalog().by_table)
    with throwaway(settings, tmp, "debezium") as env:
        with env.kingdee.begin() as conn:  # before the slot (created by the connector), as pgoutput needs
            conn.exec_driver_sql(f'CREATE PUBLICATION "{DEBEZIUM_PUBLICATION}" FOR TABLE '
                                 + ", ".join(f'"{t}"' for t in tables))
        topics = [f"dbz.public.{t}" for t in MATERIAL_TABLES]
        ensure_topics(env.settings.kafka, [env.topic(t) for t in topics], env.settings.kafka.topic_partitions)
        connector = connector_properties(env.settings, database=env.settings.kingdee_db.database,
                                         slot=env.settings.kingdee_db.slot, publication=DEBEZIUM_PUBLICATION,
                                         topic_prefix=env.topic("dbz"), tables=tables)
        with ConnectWorker(env.settings, env.tmp / "connect", connector) as worker:
            worker.wait_running()
            capture = CaptureUnderTest("Debezium", env, worker.pid, topics, len(MATERIAL_TABLES), _json_material)
            return run_workloads(capture, args)


def _json_material(msg: Message) -> str | None:
    row = json.loads(msg.value() or b"{}").get("after")  # JSON without schemas: the envelope itself
    return None if row is None else str(row["FMATERIALID"])


def run_cdchub(settings: Settings, tmp: Path, args: argparse.Namespace) -> Results:
    with throwaway(settings, tmp, "cdchub") as env:
        child = env.capture()
        wait_for(lambda: (env.settings.state_dir / "capture-stats.json").exists(), 120, "the capture to start")
        assert child.proc is not None
        decoder = AvroDecoder(registry_client(settings.registry.url))
        capture = CaptureUnderTest("cdchub", env, child.proc.pid, ["kingdee.material"], 1, _avro_material(decoder))
        return run_workloads(capture, args)


def _avro_material(decoder: AvroDecoder) -> Callable[[Message], str | None]:
    def material_of(msg: Message) -> str | None:
        event = decoder.decode(msg.value() or b"")
        return None if event["op"] != "c" else str(event["after"]["FMATERIALID"])

    return material_of


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if not a or not b else f"{a / b:.2f}x"


def _latency(p: str) -> Callable[[Measure], float]:
    return lambda r: r.latency_ms[p]


def print_table(results: dict[str, Results], args: argparse.Namespace) -> None:
    lines: list[tuple[str, str, Callable[[Measure], float | None], str]] = []
    for key, title in (("bulk", f"{args.bulk} materials in 1 tx ({3 * args.bulk} rows)"),
                       ("updates", f"{args.updates} header-row updates in 1 tx")):
        lines += [(f"{title}: rows/s", key, lambda r: r.rows_per_s, "{:.0f}"),
                  ("  CPU seconds", key, lambda r: r.cpu_s, "{:.1f}"),
                  ("  peak RSS MB", key, lambda r: r.rss_mb, "{:.0f}")]
    lines.append((f"{args.rate:g} tx/s for {args.duration:g} s: written tx/s", "latency", lambda r: r.write_rate,
                  "{:.0f}"))
    lines += [(f"  latency {p} ms", "latency", _latency(p), "{:.0f}") for p in ("p50", "p95", "p99", "max")]
    lines += [("  CPU seconds", "latency", lambda r: r.cpu_s, "{:.1f}"),
              ("  peak RSS MB", "latency", lambda r: r.rss_mb, "{:.0f}")]
    if args.volume:
        lines += [(f"{args.volume:,} rows in transactions of 5,000 materials: rows/s", "volume",
                   lambda r: r.rows_per_s, "{:.0f}"),
                  ("  CPU seconds", "volume", lambda r: r.cpu_s, "{:.1f}"),
                  ("  peak RSS MB", "volume", lambda r: r.rss_mb, "{:.0f}")]
    print(f"\n{'':<52}{'cdchub':>10}{'Debezium':>10}{'cdchub/Debezium':>17}")
    for label, key, get, fmt in lines:
        a, b = (get(results[side][key]) if side in results else None for side in ("cdchub", "debezium"))
        cells = ["-" if v is None else fmt.format(v) for v in (a, b)]
        print(f"{label:<52}{cells[0]:>10}{cells[1]:>10}{_ratio(a, b):>17}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bulk", type=int, default=20000, help="materials inserted in one transaction")
    ap.add_argument("--updates", type=int, default=20000, help="of those, header rows updated in one transaction")
    ap.add_argument("--rate", type=float, default=1000.0, help="single-material transactions per second")
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of the steady rate")
    ap.add_argument("--writers", type=int, default=4, help="writer processes sharing the steady rate")
    ap.add_argument("--warmup", type=int, default=200, help="materials written (and awaited) before measuring")
    ap.add_argument("--volume", type=int, default=1_000_000, help="changed rows for the memory run (0: skip)")
    ap.add_argument("--sides", default=",".join(SIDES), help="which captures, in this order")
    args = ap.parse_args()
    args.updates = min(args.updates, args.bulk)

    from infra.stack.manager import up

    up(get_settings(), ["postgres", "kafka", "registry"])  # started if not running; never stopped here
    get_settings.cache_clear()
    settings = get_settings()
    fetch()
    tmp = Path(tempfile.mkdtemp(prefix="cdchub-bench-debezium-"))
    code = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True,
                          cwd=PROJECT_ROOT).stdout.strip()  # the capture runs the working tree's code
    print(f"== cdchub capture ({code or 'no git'}) vs Debezium {DEBEZIUM_VERSION}, {platform.node()}, "
          f"{os.cpu_count()} cores, {datetime.date.today()}, logs in {tmp}", flush=True)
    runners = {"debezium": run_debezium, "cdchub": run_cdchub}
    results = {side: runners[side](settings, tmp, args) for side in args.sides.split(",") if side in runners}
    print_table(results, args)


if __name__ == "__main__":
    main()
