"""Smoke test of the main job, as a new user starts it: ``cdchub run`` from an empty state dir and a new database.

Its own simulators (other ports, their own folder), database, slot, topic prefix and state dir, so a developer's
``make run`` is never touched.  Bounded: it checks the first minute or two of a start, then every way of stopping.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text

from connectors.settings import Settings
from core.settings import PROJECT_ROOT
from infra.simulators.kingdee.erp import insert_material
from tests.integration.harness import ZohoSim, wait_for
from tests.integration.run_harness import Run, alive, children_of, dead_letters, run_installation


@pytest.fixture()
def run_env(stack: Settings, tmp_path: Path) -> Iterator[tuple[dict[str, str], Settings]]:
    with run_installation(stack, tmp_path) as installation:
        yield installation


def description(kingdee: Engine, material: int) -> str | None:
    with kingdee.connect() as conn:
        return conn.execute(text('SELECT "FDESCRIPTION" FROM "T_BD_MATERIAL_L" WHERE "FMATERIALID" = :id '
                                 'AND "FLOCALEID" = 2052'), {"id": material}).scalar()


def stock_in_crm(settings: Settings, crm: ZohoSim) -> bool:
    """Every CRM product shows the stock its Kingdee material has in all warehouses."""
    kingdee = create_engine(settings.kingdee_db.sqlalchemy_url())
    try:
        with kingdee.connect() as conn:
            totals = {str(material): float(qty) for material, qty in conn.execute(text(
                'SELECT "FMATERIALID", SUM("FBASEQTY") FROM "T_STK_INVENTORY" GROUP BY "FMATERIALID"'))}
    finally:
        kingdee.dispose()
    products = crm.by_kingdee_id()
    return all(float(products[m].get("Qty_in_Stock") or 0) == qty for m, qty in totals.items() if m in products)


def wait_until_quiet(count: Callable[[], int], quiet_s: float, timeout: float, what: str) -> None:
    """Waits until ``count`` has not changed for ``quiet_s`` seconds (at most ``timeout``)."""
    seen = {"count": count(), "since": time.monotonic()}

    def quiet() -> bool:
        now = count()
        if now != seen["count"]:
            seen.update(count=now, since=time.monotonic())
        return time.monotonic() - seen["since"] >= quiet_s

    wait_for(quiet, timeout, f"{what} to settle")


def test_make_run_from_nothing_syncs_refuses_a_second_run_and_leaves_no_process_behind(
        run_env: tuple[dict[str, str], Settings], tmp_path: Path) -> None:
    env, settings = run_env
    pids_file = settings.state_dir / "run.pids"
    run = Run(env, tmp_path / "run-1.err")
    wait_for(lambda: "started capture" in run.read() or run.proc.poll() is not None, 300, "cdchub run to start")
    assert run.proc.poll() is None, run.read() + (tmp_path / "run-1.err").read_text()
    children = json.loads(pids_file.read_text())["children"]
    assert set(children) == {"capture", "pollers", "to_crm", "to_kingdee", "to_oa"}, "a handful of processes"

    kingdee = create_engine(settings.kingdee_db.sqlalchemy_url())
    crm = ZohoSim(env["CDCHUB_ZOHO__API_DOMAIN"])

    def record_writes() -> list[dict[str, Any]]:  # (subscribing to notifications again is not a record write)
        return [r for r in crm.requests() if r["method"] in ("POST", "PUT") and "/crm/" in r["path"]
                and not r["path"].endswith("/actions/watch")]
    with kingdee.connect() as conn:
        audited = {str(r[0]) for r in conn.execute(text(
            'SELECT "FMATERIALID" FROM "T_BD_MATERIAL" WHERE "FDOCUMENTSTATUS" = \'C\''))}
    assert len(audited) >= 10, "the demo database was seeded"
    wait_for(lambda: audited <= set(crm.by_kingdee_id()), 180, "the snapshot's audited materials in the CRM")
    new = insert_material(kingdee, "9.99.0001", "一次性使用麻醉面罩（冒烟测试）", "成人 4#")
    wait_for(lambda: str(new) in crm.by_kingdee_id(), 60, "the inserted material in the CRM")

    # a sales rep's edit reaches Kingdee through a watch notification: the full poll is minutes away
    assert crm.http.get("/__sim/watch").json().get("channels"), "the watch channel is on by default"
    crm.human_edit("Products", crm.by_kingdee_id()[str(new)]["id"], {"Description": "适用于成人，单次使用"})
    wait_for(lambda: description(kingdee, new) == "适用于成人，单次使用", 20, "the rep's edit in Kingdee")

    os.kill(children["to_crm"], signal.SIGKILL)  # a dataflow that dies is restarted and resumes
    wait_for(lambda: json.loads(pids_file.read_text())["children"]["to_crm"] != children["to_crm"], 60,
             "the dataflow restarted")
    later = insert_material(kingdee, "9.99.0002", "一次性使用呼吸过滤器（冒烟测试）", "成人")
    wait_for(lambda: str(later) in crm.by_kingdee_id(), 90, "a material after the restart in the CRM")
    assert "to_crm exited with code -9; restarted" in run.read()
    children = json.loads(pids_file.read_text())["children"]
    kingdee.dispose()

    second = subprocess.run([sys.executable, "-m", "cdchub.cli", "run"], cwd=PROJECT_ROOT, timeout=300,
                            env={**os.environ, **env}, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert second.returncode == 2 and "another `cdchub run`" in second.stderr, second.stderr[-2000:]
    assert f"capture (pid {children['capture']})" in second.stderr

    # the demo data's documents all written (stock totals come last: they wait for their products) before it stops,
    # so that the second start below has nothing left to send
    wait_for(lambda: stock_in_crm(settings, crm), 120, "the CRM showing Kingdee's stock of every product")
    wait_until_quiet(lambda: len(record_writes()), 3, 60, "the first run's CRM writes")
    letters = dead_letters(settings)
    print("dead-letter topics", letters)
    assert len(letters) >= 10 and set(letters.values()) == {0}, f"a clean start has no dead letter: {letters}"

    before = children_of(run.proc.pid)
    assert len(before) == len(children)
    run.close_output()  # `cdchub run | tee run.log`, and the tee is gone
    run.proc.send_signal(signal.SIGINT)
    assert run.proc.wait(90) == 0
    assert not children_of(run.proc.pid) and not any(alive(p) for p in before)
    assert not pids_file.exists()

    # a second start resumes where the first stopped — started from the background of a script (SIGINT ignored),
    # which Ctrl-C must still stop, children included
    crm_writes = len(record_writes())
    again = Run(env, tmp_path / "run-2.err", sigint_ignored=True)
    wait_for(lambda: "started capture" in again.read() or again.proc.poll() is not None, 120, "the second start")
    assert again.proc.poll() is None, again.read() + (tmp_path / "run-2.err").read_text()
    wait_for(lambda: len(children_of(again.proc.pid)) == len(children), 30, "its children")
    kingdee = create_engine(settings.kingdee_db.sqlalchemy_url())
    resumed = insert_material(kingdee, "9.99.0003", "一次性使用吸痰管（冒烟测试）", "F12")
    kingdee.dispose()
    wait_for(lambda: str(resumed) in crm.by_kingdee_id(), 90, "a material after the second start in the CRM")
    assert len(record_writes()) == crm_writes + 1, \
        f"resumed: nothing re-sent, only the new material written: {record_writes()[crm_writes:]}"
    capture_log = (tmp_path / "run-logs" / "capture.log").read_text()
    assert capture_log.count("created slot") == 1 and capture_log.count("streaming from slot") >= 2
    running = children_of(again.proc.pid)
    again.proc.send_signal(signal.SIGINT)
    assert again.proc.wait(60) == 0, again.read()
    assert not any(alive(p) for p in running)
    again.close_output()

    # killing a supervisor with -9 takes its children down too
    third = Run(env, tmp_path / "run-3.err")
    wait_for(lambda: "started capture" in third.read() or third.proc.poll() is not None, 120, "the third start")
    assert third.proc.poll() is None, third.read() + (tmp_path / "run-3.err").read_text()
    wait_for(lambda: len(children_of(third.proc.pid)) == len(children), 30, "its children")
    orphans = children_of(third.proc.pid)
    third.proc.kill()
    third.proc.wait(10)
    wait_for(lambda: not any(alive(p) for p in orphans), 60, "the children to end with it")
    third.close_output()
