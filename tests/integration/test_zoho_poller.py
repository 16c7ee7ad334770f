"""ZOHO change capture on the real broker and registry against the ZOHO simulator."""

from __future__ import annotations

import json

import httpx

from connectors.common.avro import AvroDecoder, registry_client
from connectors.zoho.client import ZohoClient
from tests.integration.harness import IsolatedEnv, at_least, wait_for


def events(env: IsolatedEnv, module: str = "products") -> list[dict]:
    decoder = AvroDecoder(registry_client(env.settings.registry.url))
    return [decoder.decode(v) for _, v in env.read_topic(f"zoho.{module}") if v]


def start_poller(env: IsolatedEnv):  # type: ignore[no-untyped-def]
    env.env.update({"CDCHUB_ZOHO__POLL_INTERVAL_S": "0.3", "CDCHUB_ZOHO__POLL_MODULES": '["Products"]'})
    return env.spawn(f"poller-{len(env.children)}", "poll-zoho")


def test_an_idle_poll_is_answered_not_modified_and_is_no_error(env: IsolatedEnv) -> None:
    """ZOHO answers 304 (empty) to If-Modified-Since when nothing changed after it, on records and on /deleted."""
    poller = start_poller(env)
    gone = env.zoho.human_create("Products", {"Product_Name": "呼吸面罩 F-1"})
    wait_for(lambda: [e for e in events(env) if e["id"] == gone], 30, "the created product")
    env.zoho.human_delete("Products", gone)  # no live record changed after the cursor now: 304
    wait_for(lambda: [e for e in events(env) if e["op"] == "d"], 30, "the deletion")
    wait_for(lambda: [r for r in env.zoho.requests() if r["status"] == 304 and r["path"].endswith("/Products")],
             30, "an idle poll answered 304")
    after = len(events(env))
    env.zoho.human_create("Products", {"Product_Name": "呼吸面罩 F-2"})
    wait_for(at_least(after + 1, lambda: events(env)), 30, "a change after idle polls")
    assert "poll failed" not in poller.log(), "an idle poll (304 Not Modified) is no error"


def test_human_edits_integration_writes_and_deletes_are_captured_once(env: IsolatedEnv) -> None:
    poller = start_poller(env)
    rid = env.zoho.human_create("Products", {"Product_Name": "呼吸过滤器 HF-1", "Product_Code": "HF-1"})
    created = wait_for(at_least(1, lambda: events(env)), 30, "the created product")
    assert created[0]["op"] == "c" and created[0]["id"] == rid and not created[0]["by_integration"]
    assert json.loads(created[0]["record"])["Product_Name"] == "呼吸过滤器 HF-1"

    def described(text: str) -> list[dict]:
        return [e for e in events(env) if json.loads(e["record"] or "{}").get("Description") == text]

    env.zoho.human_edit("Products", rid, {"Description": "第一次修改"})
    first = wait_for(lambda: described("第一次修改"), 30, "the first edit")
    env.zoho.human_edit("Products", rid, {"Description": "第二次修改"})  # most likely within the same second
    second = wait_for(lambda: described("第二次修改"), 30, "the second edit")
    # ZOHO shows Modified_Time to the second: the content fingerprint keeps a same-second edit from being lost
    assert second[0]["source"]["version"] >= first[0]["source"]["version"]

    crm = ZohoClient(env.settings.zoho, httpx.Client(timeout=10))
    crm.upsert("Products", [{"Product_Name": "麻醉面罩 M-2", "Kingdee_ID": "100777"}], ["Kingdee_ID"])
    ours = wait_for(lambda: [e for e in events(env) if json.loads(e["record"] or "{}").get("Kingdee_ID") == "100777"],
                    30, "the integration's own write")
    assert ours[0]["by_integration"] is True

    env.zoho.human_delete("Products", rid)
    deleted = wait_for(lambda: [e for e in events(env) if e["op"] == "d"], 30, "the deletion")
    assert deleted[0]["id"] == rid and deleted[0]["record"] is None

    total = len(events(env))
    poller.stop()
    start_poller(env)
    env.zoho.human_create("Products", {"Product_Name": "人工鼻 HME-3"})
    after = wait_for(at_least(total + 1, lambda: events(env)), 30, "a change after the restart")
    assert len(after) == total + 1, "a restart re-sends nothing already sent"
    ids_versions = [(e["id"], e["source"]["version"], e["record"]) for e in after]
    assert len(ids_versions) == len(set(ids_versions)), "no duplicates"


def test_watch_notifications_bring_changes_between_slow_polls(env: IsolatedEnv) -> None:
    from infra.simulators.common.process import free_port

    env.env.update({"CDCHUB_ZOHO__POLL_INTERVAL_S": "120", "CDCHUB_ZOHO__POLL_MODULES": '["Products"]',
                    "CDCHUB_ZOHO__WATCH_NOTIFY_URL": f"http://127.0.0.1:{free_port()}/zoho/notify"})
    env.spawn("poller-watch", "poll-zoho")
    wait_for(lambda: env.zoho.http.get("/__sim/watch").json().get("channels"), 30, "the watch channel")
    rid = env.zoho.human_create("Products", {"Product_Name": "麻醉机 AX-600"})
    # the poller's own schedule is two minutes away: only the notification can bring this change in time
    (event,) = wait_for(lambda: [e for e in events(env) if e["id"] == rid], 10, "the change, via a notification")
    assert event["op"] == "c"
    notes = env.zoho.http.get("/__sim/notifications").json()["notifications"]
    assert notes and all(n["status"] == 200 for n in notes)

    # a notification of an edit reads the records only (one call); one of a deletion reads the deleted list
    def deleted_reads() -> int:
        return sum(1 for r in env.zoho.requests() if r["path"].endswith("/Products/deleted"))

    before = deleted_reads()
    env.zoho.human_edit("Products", rid, {"Product_Name": "麻醉机 AX-600 Pro"})
    wait_for(lambda: [e for e in events(env) if e["id"] == rid and e["op"] == "u"], 10, "the edit, notified")
    assert deleted_reads() == before
    env.zoho.human_delete("Products", rid)
    wait_for(lambda: [e for e in events(env) if e["id"] == rid and e["op"] == "d"], 10, "the deletion, notified")
    assert deleted_reads() == before + 1


def test_a_watch_that_cannot_be_set_up_leaves_the_poller_polling(env: IsolatedEnv) -> None:
    import socket

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))  # the listener's port is not free: notifications cannot be received
    taken.listen()
    try:
        env.env.update({"CDCHUB_ZOHO__POLL_INTERVAL_S": "0.3", "CDCHUB_ZOHO__POLL_MODULES": '["Products"]',
                        "CDCHUB_ZOHO__WATCH_NOTIFY_URL": f"http://127.0.0.1:{taken.getsockname()[1]}/zoho/notify"})
        poller = env.spawn("poller-nowatch", "poll-zoho")
        rid = env.zoho.human_create("Products", {"Product_Name": "监护仪 M-9"})
        wait_for(lambda: [e for e in events(env) if e["id"] == rid], 10, "the change, polled")
        assert "watch notifications are off for now" in poller.log()
        assert poller.alive()
    finally:
        taken.close()
