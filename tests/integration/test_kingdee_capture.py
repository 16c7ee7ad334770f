"""Log-based capture on the real PostgreSQL, Kafka and registry: resume, lost slot, heartbeats, documents."""

from __future__ import annotations

import subprocess
import sys

import psycopg2
from sqlalchemy import text

from connectors.common.avro import AvroDecoder, registry_client
from core.settings import PROJECT_ROOT
from infra.simulators.kingdee.demo_seed import seed
from infra.simulators.kingdee.erp import OrderLine, insert_material, insert_sales_order, update_order_line
from tests.integration.harness import IsolatedEnv, at_least, wait_for


def capture_until_idle(env: IsolatedEnv) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "cdchub.cli", "capture", "--until-idle"], cwd=PROJECT_ROOT, text=True,
        capture_output=True, env={**os.environ, **env.env}, timeout=120,
    )


def decoded(env: IsolatedEnv, topic: str) -> list[tuple[str, dict | None]]:
    decoder = AvroDecoder(registry_client(env.settings.registry.url))
    return [(k.decode(), decoder.decode(v) if v else None) for k, v in env.read_topic(topic) if k]


def test_snapshot_then_stream_then_resume_without_resending(env: IsolatedEnv) -> None:
    for i in range(10):
        insert_material(env.kingdee, f"1.05.{i:04d}", f"气管插管 {i}", "ID 7.0")
    done = capture_until_idle(env)
    assert done.returncode == 0, done.stdout + done.stderr
    events = decoded(env, "kingdee.material")
    assert len(events) == 10 and all(e["op"] == "r" and e["source"]["snapshot"] for _, e in events if e)
    again = capture_until_idle(env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(decoded(env, "kingdee.material")) == 10, "a restart with no changes re-sends nothing"
    new = insert_material(env.kingdee, "1.05.0100", "气管插管 加强型", "ID 7.5")
    assert capture_until_idle(env).returncode == 0
    events = decoded(env, "kingdee.material")
    assert len(events) == 11
    key, last = events[-1] if events[-1][0] == str(new) else next(e for e in events if e[0] == str(new))
    assert last is not None and last["op"] == "c" and not last["source"]["snapshot"]
    assert last["after"]["texts"][0]["FNAME"] == "气管插管 加强型"
    assert last["source"]["lsn"] > 0 and last["source"]["tx_id"] and last["source"]["commit_time"]


def test_an_entry_only_change_emits_the_whole_order(env: IsolatedEnv) -> None:
    seed(env.kingdee, materials=5, customers=2, orders=0)
    with env.kingdee.connect() as conn:
        material_ids = [r[0] for r in conn.execute(text('SELECT "FMATERIALID" FROM "T_BD_MATERIAL" LIMIT 3'))]
        customer = conn.execute(text('SELECT "FCUSTID" FROM "T_BD_CUSTOMER" LIMIT 1')).scalar_one()
    order = insert_sales_order(env.kingdee, customer,
                               [OrderLine(m, 10 * (i + 1), 100) for i, m in enumerate(material_ids)])
    env.capture()
    fid = order.fid
    wait_for(lambda: any(k == str(fid) for k, _ in decoded(env, "kingdee.sales_order")), 60, "the order")
    update_order_line(env.kingdee, order.entry_ids[1], qty=25, touch_header=False)
    events = wait_for(at_least(2, lambda: [v for k, v in decoded(env, "kingdee.sales_order") if k == str(fid)]),
                      60, "the order's update")
    update = events[-1]
    assert update["op"] == "u"
    assert len(update["after"]["entries"]) == 3, "the whole document, not just the changed row"
    assert [float(e["FQTY"]) for e in update["after"]["entries"]] == [10.0, 25.0, 30.0]
    assert update["after"]["customer_name"], "the customer reference is resolved"


def test_a_lost_slot_fails_loudly(env: IsolatedEnv) -> None:
    insert_material(env.kingdee, "1.06.0001", "雾化器", "成人")
    assert capture_until_idle(env).returncode == 0
    with env.kingdee.connect() as conn:
        conn.execute(text("SELECT pg_drop_replication_slot(:s)"), {"s": env.settings.kingdee_db.slot})
        conn.commit()
    failed = capture_until_idle(env)
    assert failed.returncode != 0
    assert "SlotLost" in failed.stderr + failed.stdout and "--resnapshot" in failed.stderr + failed.stdout


def test_heartbeats_keep_an_idle_slot_from_pinning_wal(env: IsolatedEnv) -> None:
    env.capture()
    slot = env.settings.kingdee_db.slot
    conn = psycopg2.connect(env.settings.kingdee_db.dsn())
    conn.autocommit = True
    cur = conn.cursor()

    def confirmed() -> int | None:
        cur.execute("SELECT confirmed_flush_lsn - '0/0'::pg_lsn FROM pg_replication_slots WHERE slot_name = %s",
                    (slot,))
        row = cur.fetchone()
        return None if row is None or row[0] is None else int(row[0])

    wait_for(confirmed, 60, "the slot")
    cur.execute("CREATE TABLE not_captured (x int)")
    cur.execute("INSERT INTO not_captured SELECT generate_series(1, 20000)")  # WAL the capture does not care about
    cur.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")
    wal_now = int(cur.fetchone()[0])
    wait_for(lambda: (confirmed() or 0) >= wal_now, 30, "the slot to move past unrelated WAL")
    conn.close()


def test_every_business_document_of_the_demo_data_is_captured_whole(env: IsolatedEnv) -> None:
    summary = seed(env.kingdee, materials=8, customers=4, orders=6, outbound_share=1.0, invoice_share=1.0,
                   receipt_share=1.0)
    done = capture_until_idle(env)
    assert done.returncode == 0, done.stdout + done.stderr
    counts = {"sales_order": summary["orders"], "outbound": summary["outbounds"], "receipt": summary["receipts"],
              "invoice_special": summary["invoices_special"], "invoice_ordinary": summary["invoices_ordinary"],
              "inventory": summary["inventory_rows"], "material": summary["materials"],
              "customer": summary["customers"]}
    for document, expected in counts.items():
        events = decoded(env, f"kingdee.{document}")
        assert len(events) == expected, document
    receipt = decoded(env, "kingdee.receipt")[0][1]
    assert receipt is not None and receipt["after"]["entries"] and receipt["after"]["sources"]
    assert receipt["after"]["sources"][0]["FORDERBILLNO"].startswith("XSDD")
    stock = decoded(env, "kingdee.inventory")[0][1]
    assert stock is not None and stock["after"]["material_number"] and stock["after"]["FBASEQTY"] is not None
    outbound = decoded(env, "kingdee.outbound")[0][1]
    assert outbound is not None and all(e["FSOORDERNO"] for e in outbound["after"]["entries"])
