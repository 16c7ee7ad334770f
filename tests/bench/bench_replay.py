"""Benchmark of replay / reconciliation on the real local stack; prints figures, asserts nothing about time.

N materials are captured and synced into a ZOHO CRM simulator, then a share of them is changed by hand in the CRM.
Measured: the dry-run replay (events read/s, records compared/s, peak RSS of the replay process) and the real
replay (CRM write calls); and, as the baseline in the same run, what re-syncing everything costs instead — the
flow replayed from the start with its ledger gone (every record written again).

    python -m tests.bench.bench_replay [--materials 2000] [--drift 0.05]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from connectors.settings import get_settings
from core.settings import PROJECT_ROOT
from infra.simulators.common.process import SimulatorProcess
from infra.simulators.kingdee.erp import bulk_insert_materials
from tests.integration.harness import IsolatedEnv, ZohoSim, isolated_env, wait_for


def crm_write_calls(env: IsolatedEnv) -> int:
    return sum(1 for r in env.zoho.requests() if r["method"] in ("POST", "PUT") and "/crm/" in r["path"])


def settled(count: Callable[[], int], quiet_s: float, timeout_s: float = 900) -> int:
    """The count once it has not changed for ``quiet_s`` (a benchmark's end of activity, not a test's wait)."""
    last, since, deadline = count(), time.monotonic(), time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = count()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return now
    raise TimeoutError("the count kept changing")


def timed_cdchub(env: IsolatedEnv, *args: str) -> tuple[float, float, str]:
    """(seconds, peak RSS MB of the command's process (VmHWM), stdout)."""
    t0 = time.monotonic()
    # files, not pipes: a pipe nobody reads while the child runs fills up and blocks the child
    log = open(env.tmp / "replay.log", "ab")  # noqa: SIM115
    result = open(env.tmp / "replay.out", "w+b")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "cdchub.cli", *args, "--quiet"], cwd=PROJECT_ROOT,
                            stdout=result, stderr=log, env={**os.environ, **env.env})
    peak_kb = 0
    status = Path(f"/proc/{proc.pid}/status")
    while proc.poll() is None:
        try:
            hwm = [line for line in status.read_text().splitlines() if line.startswith("VmHWM:")]
            peak_kb = max(peak_kb, int(hwm[0].split()[1])) if hwm else peak_kb
        except OSError:
            pass
        time.sleep(0.05)
    log.close()
    result.seek(0)
    out = result.read().decode()
    result.close()
    if proc.returncode not in (0, 1):
        raise RuntimeError((env.tmp / "replay.log").read_text(errors="replace")[-2000:])
    return time.monotonic() - t0, peak_kb / 1024, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--materials", type=int, default=2000)
    ap.add_argument("--drift", type=float, default=0.05, help="share of CRM records changed by hand")
    args = ap.parse_args()

    from infra.stack.manager import up

    up(get_settings(), ["postgres", "kafka", "registry"])
    get_settings.cache_clear()
    settings = get_settings()
    tmp = Path(tempfile.mkdtemp(prefix="cdchub-bench-replay-"))
    sim = SimulatorProcess("infra.simulators.zoho", args=["--state-dir", str(tmp / "sim")],
                           log_path=tmp / "sim.log").start()
    try:
        with isolated_env(settings, ZohoSim(sim.base_url), sim.base_url, tmp) as env:
            bulk_insert_materials(env.kingdee, args.materials, prefix="8.31.")
            env.capture()
            flow = env.flow("materials")
            t0 = time.monotonic()
            wait_for(lambda: len(env.zoho.by_kingdee_id()) >= args.materials, 900, "all materials in the CRM", 0.5)
            sync_s = time.monotonic() - t0
            flow.stop()
            products = list(env.zoho.by_kingdee_id().values())
            drifted = products[: int(len(products) * args.drift)]
            for p in drifted:
                env.zoho.human_edit("Products", p["id"], {"Kingdee_Number": "手工改过"})
            print(f"== replay of flow materials, {args.materials} records, {len(drifted)} changed by hand in the CRM")
            print(f"initial sync (capture → flow → CRM): {sync_s:.1f} s")

            seconds, rss, out = timed_cdchub(env, "replay", "materials", "--dry-run", "--json")
            body = json.loads(out)
            print(f"dry run: {seconds:.1f} s, {body['read'] / seconds:,.0f} events read/s, "
                  f"{body['compared'] / seconds:,.0f} records compared/s, {body['differ']} differ "
                  f"(expected {len(drifted)}), peak RSS {rss:.0f} MB")
            writes = crm_write_calls(env)
            seconds, _, out = timed_cdchub(env, "replay", "materials", "--json")
            replay_writes = crm_write_calls(env) - writes
            print(f"replay: {seconds:.1f} s, {json.loads(out)['differ']} records written in {replay_writes} CRM "
                  "write calls")

            # baseline: re-sync everything (what a replay without comparison does): ledger and recovery gone
            (env.settings.state_dir / "ledger.db").unlink()
            shutil.rmtree(env.settings.state_dir / "recovery" / "materials")
            writes = crm_write_calls(env)
            t0 = time.monotonic()
            env.flow("materials")
            wait_for(lambda: crm_write_calls(env) - writes >= args.materials // 100, 900, "the full re-sync", 0.5)
            settled(lambda: crm_write_calls(env), quiet_s=3.0)
            print(f"baseline, full re-sync: {time.monotonic() - t0:.1f} s, {crm_write_calls(env) - writes} CRM write "
                  f"calls for {args.materials} records (vs {replay_writes} for the replay)")
    finally:
        sim.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
