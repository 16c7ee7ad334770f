"""Inventory, Kingdee T_STK_INVENTORY → capture → Kafka → flow `inventory` → ZOHO CRM Products.Qty_in_Stock, on the
real stack (the materials flow runs too: it creates the products and the id map the inventory flow writes through)."""

from __future__ import annotations

import random
import shutil
import threading
import time
from collections import Counter
from typing import Any

from sqlalchemy import Engine, func, insert, select

from connectors.kingdee import models as m
from connectors.kingdee.models import LOCALE_ZH_CN
from infra.simulators.kingdee.erp import adjust_inventory, delete_document, insert_material, update_material
from tests.integration.harness import IsolatedEnv, holds_for, wait_for


def insert_warehouses(db: Engine, *names: str) -> list[int]:
    with db.begin() as conn:
        ids = m.next_ids(conn, "T_BD_STOCK", len(names))
        text_ids = m.next_ids(conn, "T_BD_STOCK_L", len(names))
        conn.execute(insert(m.T_BD_STOCK), [
            {"FSTOCKID": i, "FNUMBER": f"CK{i}", "FMASTERID": i, "FDOCUMENTSTATUS": "C"} for i in ids])
        conn.execute(insert(m.T_BD_STOCK_L), [
            {"FPKID": t, "FSTOCKID": i, "FLOCALEID": LOCALE_ZH_CN, "FNAME": n, "FDESCRIPTION": " "}
            for t, i, n in zip(text_ids, ids, names, strict=True)])
    return ids


def db_sums(db: Engine) -> dict[str, float]:
    t = m.T_STK_INVENTORY
    with db.connect() as conn:
        rows = conn.execute(select(t.c.FMATERIALID, func.sum(t.c.FBASEQTY)).group_by(t.c.FMATERIALID))
        return {str(mid): float(total) for mid, total in rows}


def crm_stock(env: IsolatedEnv) -> dict[str, Any]:
    return {k: r.get("Qty_in_Stock") for k, r in env.zoho.by_kingdee_id().items()}


def crm_matches(env: IsolatedEnv, expected: dict[str, float]):  # type: ignore[no-untyped-def]
    def check() -> dict[str, Any] | None:
        stock = crm_stock(env)
        return stock if all(stock.get(k) == v for k, v in expected.items()) else None
    return check


def stock_writes(env: IsolatedEnv) -> list[dict[str, Any]]:
    """Every applied CRM write that set Qty_in_Stock (the simulator's write log)."""
    resp = env.zoho.http.get("/__sim/writes/Products", params={"limit": 100000})
    resp.raise_for_status()
    return [w for w in resp.json()["writes"] if "Qty_in_Stock" in (w.get("fields") or {})]


def stock_calls(env: IsolatedEnv) -> list[dict[str, Any]]:
    """The PUT /Products calls (one per update batch)."""
    return [r for r in env.zoho.requests() if r["method"] == "PUT" and r["path"].endswith("/Products")]


def materials(env: IsolatedEnv, n: int, prefix: str) -> list[int]:
    return [insert_material(env.kingdee, f"{prefix}{i:04d}", f"气管插管 {i}#", f"ID {6 + i}.0") for i in range(n)]


def test_totals_across_warehouses_and_lots_a_deleted_row_and_a_material_audited_late(env: IsolatedEnv) -> None:
    env.env["CDCHUB_FLOWS__INVENTORY_UNSYNCED_GIVE_UP_MS"] = "3000"
    main, branch = insert_warehouses(env.kingdee, "成品仓", "北京分仓")
    a, b = materials(env, 2, "8.01.")
    draft = insert_material(env.kingdee, "8.01.0999", "草稿物料", status="A")  # not audited: not in the CRM
    env.capture()
    env.flow("materials")
    env.flow("inventory")  # stock arrives while the products are being created: it waits for them
    adjust_inventory(env.kingdee, a, main, 10, lot_id=1)
    adjust_inventory(env.kingdee, a, branch, 5, lot_id=1)
    lot2 = adjust_inventory(env.kingdee, a, branch, "7.5", lot_id=2)
    adjust_inventory(env.kingdee, b, main, 4)
    adjust_inventory(env.kingdee, draft, main, 3)
    adjust_inventory(env.kingdee, a, main, -2, lot_id=1)
    wait_for(crm_matches(env, {str(a): 20.5, str(b): 4.0}), 60, "totals across warehouses and lots")

    delete_document(env.kingdee, "T_STK_INVENTORY", lot2)  # a deleted row (delete event, then tombstone)
    wait_for(crm_matches(env, {str(a): 13.0}), 30, "the deleted row left the sum")
    assert crm_stock(env) == {str(a): 13.0, str(b): 4.0}
    assert db_sums(env.kingdee) == {str(a): 13.0, str(b): 4.0, str(draft): 3.0}

    wait_for(lambda: "waits for its CRM product" in "".join(c.log() for c in env.children), 30,
             "the draft material's stock parked")
    update_material(env.kingdee, draft, status="C")  # the clerk audits it: its product and then its stock arrive
    wait_for(crm_matches(env, {str(draft): 3.0}), 60, "the stock of the material audited late")
    assert env.dead_letters("inventory") == []

def burst(env: IsolatedEnv, ids: list[int], stocks: list[int], moves: int, pause_s: float, seed: int) -> None:
    """``moves`` stock moves (one transaction each) over the materials, warehouses and lots; the CRM must end with
    the database's sums; prints and checks how many writes that took."""
    writes_before, calls_before = len(stock_writes(env)), len(stock_calls(env))
    rng = random.Random(seed)
    started = time.monotonic()
    for _ in range(moves):
        adjust_inventory(env.kingdee, rng.choice(ids), rng.choice(stocks), rng.randint(-5, 10),
                         lot_id=rng.randint(0, 2))
        time.sleep(pause_s)
    burst_s = time.monotonic() - started
    expected = db_sums(env.kingdee)
    wait_for(crm_matches(env, expected), 30, "the totals after the burst")
    settled_s = time.monotonic() - started - burst_s
    holds_for(lambda: crm_stock(env) == expected, 1.5, "final totals")

    writes = stock_writes(env)[writes_before:]
    per_material = Counter(w["id"] for w in writes)
    calls = len(stock_calls(env)) - calls_before
    print(f"\nburst: {moves} stock moves over {len(ids)} materials in {burst_s:.2f}s; CRM final {settled_s:.2f}s "
          f"after the last commit; {calls} PUT calls, {len(writes)} record writes, per material "
          f"{sorted(per_material.values())}")
    assert max(per_material.values()) <= 2 + burst_s / COALESCE_S, per_material  # leading, one per interval, trailing
    times: dict[str, list[int]] = {}
    for w in writes:
        times.setdefault(w["id"], []).append(w["applied_at_ms"])
    gaps = [b - a for t in times.values() for a, b in zip(t, t[1:], strict=False)]
    # The flow spaces its writes of a material at least 0.9 interval apart; applied times add the delivery's latency,
    # which on a loaded CI machine varied by ~300 ms (one run saw 699 ms between a leading write and the next).
    # Writes per move would be ~12 ms apart.
    assert not gaps or min(gaps) >= COALESCE_S * 1000 * 0.5, f"writes of one material spaced by the interval: {gaps}"


COALESCE_S = 1.0  # flows.inventory.COALESCE


def test_a_burst_of_stock_moves_is_coalesced(env: IsolatedEnv) -> None:
    stocks = insert_warehouses(env.kingdee, "成品仓", "北京分仓", "上海分仓")
    ids = materials(env, 5, "8.02.")
    env.capture()
    env.flow("materials")
    inventory = env.flow("inventory")
    for mid in ids:  # one stock row each first, so the bursts measure steady state
        adjust_inventory(env.kingdee, mid, stocks[0], 100)
    wait_for(crm_matches(env, {str(mid): 100.0 for mid in ids}), 60, "first stock figures")
    burst(env, ids, stocks, 200, 0.0, seed=11)  # as fast as the database takes them
    burst(env, ids, stocks, 200, 0.012, seed=12)  # spread over a few seconds
    assert inventory.alive()


def test_flow_killed_mid_burst_then_the_totals_are_right_and_a_replay_writes_nothing(env: IsolatedEnv) -> None:
    stocks = insert_warehouses(env.kingdee, "成品仓", "北京分仓")
    ids = materials(env, 5, "8.03.")
    env.capture()
    env.flow("materials")
    inventory = env.flow("inventory")
    wait_for(lambda: len(env.zoho.by_kingdee_id()) == 5, 60, "the products")
    done = threading.Event()

    def writer() -> None:
        rng = random.Random(5)
        for i in range(400):
            fid = adjust_inventory(env.kingdee, rng.choice(ids), rng.choice(stocks), rng.randint(-3, 9),
                                   lot_id=rng.randint(0, 3))
            if i % 97 == 96:  # now and then a row is deleted
                delete_document(env.kingdee, "T_STK_INVENTORY", fid)
            time.sleep(0.005)
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    wait_for(lambda: len(stock_writes(env)) >= 5, 30, "stock writes under way")
    assert not done.is_set(), "the crash comes mid-burst"
    inventory.kill()  # a crash mid-burst: state and offsets come back from the last recovery snapshot
    inventory = env.flow("inventory")
    thread.join()
    assert done.is_set()
    expected = db_sums(env.kingdee)
    wait_for(crm_matches(env, {str(mid): expected.get(str(mid), 0.0) for mid in ids}), 60,
             "right totals after the crash")

    # Replay the whole topic with no recovery state: the ledger knows every total, so nothing is written.
    inventory.stop()
    shutil.rmtree(env.settings.state_dir / "recovery" / "inventory")
    calls = len(stock_calls(env))
    replay = env.flow("inventory")
    holds_for(lambda: len(stock_calls(env)) == calls and replay.alive(), 4.0, "no writes on replay")
    adjust_inventory(env.kingdee, ids[0], stocks[0], 1)  # then a real change: exactly one write
    wait_for(crm_matches(env, {str(ids[0]): expected.get(str(ids[0]), 0.0) + 1}), 30, "a change after the replay")
    assert len(stock_calls(env)) == calls + 1
