"""The console's pages without a stack (the data behind them faked): templates escape what they show, flow health
lists every flow with sparklines and refreshes itself, the trace draws the document's path, and "Replay all of
<flow>" writes nothing before its preview is confirmed."""

from __future__ import annotations

import re
import time
from typing import Any

from pydantic import SecretStr
from starlette.testclient import TestClient

from cdchub.console.app import create_app
from cdchub.console.pictures import sparkline, trace_picture
from cdchub.console.views import Health, LetterRow, ReplayPreview
from cdchub.dead_letter_admin import Letter
from cdchub.flow_status import BudgetStatus, FlowRow, ProcessStatus, RuntimeStatus, TokenStatus
from cdchub.trace import Hop, Trace
from connectors.settings import Settings
from core.settings import ConsoleSettings
from flows.dataflows import DATAFLOWS, FLOWS

EVIL = '<script>alert("x")</script>'
NOW_MS = int(time.time() * 1000)


def _letter(offset: int, key: str) -> Letter:
    return Letter("cdchub.dlq.materials", offset, {
        "flow": "materials", "stage": "sink", "error_class": "ZohoError", "error": f"INVALID_DATA {EVIL}",
        "time_ms": NOW_MS, "source": {"topic": "kingdee.material", "partition": 0, "offset": 40 + offset,
                                      "key": key}})


def _trace() -> Trace:
    documents = [{"flow": "materials", "source_key": "100", "source_number": "1.31.0001", "target_system": "zoho",
                  "target_id": "4876000", "status": "synced", "attempts": 1, "applied_at_ms": NOW_MS,
                  "kafka_topic": "kingdee.material"}]
    hops = [Hop(NOW_MS - 40, "captured (r)", "kingdee", {"topic": "kingdee.material[0]@3", "name": EVIL}),
            Hop(NOW_MS, "materials: synced (insert)", "zoho", {"target_id": "4876000", "latency_ms": 40}),
            Hop(NOW_MS + 5, "dead letter (inventory)", "cdchub", {"error": "no product", "flow": "inventory"})]
    outbound = {"kind": "outbound", "topic": "kingdee.outbound", "key": "900", "number": "XSCKD000001", "op": "c",
                "detail": {"sync": ["deliveries → zoho 77: written"],
                           "writes": [{"flow": "deliveries", "target_system": "zoho", "target_id": "77",
                                       "status": "synced"}]}}
    write_back = {"kind": "approval_status record", "topic": "weaver.requests", "key": "4876000", "number": None,
                  "op": "synced", "detail": {"target_system": "zoho", "target_id": "C-1"}}
    related: list[dict[str, Any]] = [outbound, write_back]
    return Trace("1.31.0001", documents, hops, related, ["dead letters: stopped after 10 messages (the deadline "
                                                         "passed); up to 5 more on cdchub.dlq.materials not read"])


def _health() -> Health:
    rows = [FlowRow(f, d, d if d == "to_crm" else None, 4242 if d == "to_crm" else None,
                    "alive" if d == "to_crm" else "stopped", synced=3, per_minute=1, lag=0)
            for d, members in DATAFLOWS.items() for f in members]
    rows[0].retrying, rows[0].retrying_since_ms, rows[0].last_error = 2, NOW_MS - 60_000, f"ZohoError {EVIL}"
    status = RuntimeStatus([ProcessStatus("to_crm", 4242, "alive", list(DATAFLOWS["to_crm"]))], rows,
                           [TokenStatus("zoho-c", "zoho", 1, 3, NOW_MS - 5000, "Access Denied", 40.0)],
                           BudgetStatus(120, 50_000, 0, None, 5, 3, NOW_MS - 5000))
    return Health(status, None, "", {r.flow: sparkline([0, 2, 5, 1]) for r in rows},
                  {"materials": sparkline([None, 4, 2, 0])})


class FakeData:
    def __init__(self) -> None:
        self.replayed: list[tuple[str, list[int] | None]] = []
        self.previewed: list[str] = []

    def trace(self, term: str) -> Trace:
        return _trace()

    def dead_letters(self, flow: str | None = None, reason: str | None = None) -> list[LetterRow]:
        return [LetterRow(_letter(0, EVIL), ""), LetterRow(_letter(1, "101"), "")]

    def preview_flow(self, flow: str) -> ReplayPreview:
        self.previewed.append(flow)
        return ReplayPreview(flow, [(_letter(0, EVIL), "would replay"), (_letter(1, "101"), "superseded")], {
            "compared": 1, "same": 0, "differ": 1, "superseded": 0, "dead_letters": [],
            "shown": [{"key": EVIL, "action": "update", "target_system": "zoho", "module": "Products",
                       "target_id": "4876000", "number": "1.31.0001",
                       "fields": {"Product_Name": {"target": "手工改过", "replay": "一次性使用麻醉面罩"}}}]})

    def replay_flow(self, flow: str, offsets: list[int] | None = None) -> list[tuple[Letter, str]]:
        self.replayed.append((flow, offsets))
        return [(_letter(0, EVIL), "replayed")]

    def health(self) -> Health:
        return _health()

    def installation(self) -> list[tuple[str, str]]:
        return [("Kafka", "127.0.0.1:19092")]


def _signed_in(data: Any) -> TestClient:
    app = create_app(Settings(console=ConsoleSettings(password=SecretStr("right"))), "right", data)
    client = TestClient(app, base_url="http://127.0.0.1", follow_redirects=False)
    assert client.post("/login", data={"user": "cdchub", "password": "right"}).status_code == 303
    return client


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found
    return found.group(1)


def test_every_value_is_escaped_a_script_in_a_name_is_text() -> None:
    client = _signed_in(FakeData())
    for path in ("/trace?term=1.31.0001", "/dead-letters", "/flows", "/dead-letters/preview?flow=materials",
                 f"/trace?term={EVIL}"):
        page = client.get(path)
        assert page.status_code == 200, path
        assert "<script" not in page.text, path
    trace = client.get("/trace?term=1.31.0001").text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in trace, "shown as text, in the timeline and picture"
    assert 'default-src \'none\'' in client.get("/flows").headers["content-security-policy"], "still no script"


def test_flow_health_lists_every_flow_with_sparklines_and_refreshes_itself() -> None:
    page = _signed_in(FakeData()).get("/flows").text
    assert re.search(r'<meta http-equiv="refresh" content="\d+">', page)
    listed = re.findall(r'<tr class="flow [^"]*" data-flow="([^"]+)"', page)
    assert listed == list(FLOWS)
    assert page.count('class="spark writes"') == len(FLOWS) and page.count('class="spark lag"') == 1
    assert "<polyline points=" in page
    assert "3 token refreshes refused" in page and "2 since" in page
    assert 'class="liveness">alive<' in page and 'class="liveness">stopped<' in page


def test_the_trace_draws_the_path_with_latency_related_documents_and_dead_letters() -> None:
    picture = trace_picture(_trace())
    assert picture is not None
    nodes = {n.id: n for n in picture.nodes}
    assert {"topic:kingdee.material", "flow:materials", "target:materials:zoho", "flow:deliveries",
            "flow:approval_status"} <= set(nodes)
    assert nodes["source:kingdee:kingdee.material"].label == "kingdee"
    edges = {(e.source, e.target): e for e in picture.edges}
    assert edges[("flow:materials", "target:materials:zoho")].label == "40 ms"
    assert edges[("topic:kingdee.material", "related:kingdee.outbound:900")].related
    assert ("target:materials:zoho", "flow:approval_status") in edges, "and back: a write caused by ours"
    columns = {n.id: n.x for n in picture.nodes}
    assert columns["source:kingdee:kingdee.material"] < columns["topic:kingdee.material"] < columns[
        "flow:materials"] < columns["target:materials:zoho"]

    page = _signed_in(FakeData()).get("/trace?term=1.31.0001").text
    assert '<svg class="trace-picture"' in page and "40 ms" in page
    assert 'id="trace-incomplete"' in page and "stopped after 10 messages" in page


def test_replay_all_of_a_flow_shows_a_dry_run_and_writes_only_once_confirmed() -> None:
    data = FakeData()
    client = _signed_in(data)
    letters = client.get("/dead-letters").text
    assert '<form method="get" action="/dead-letters/preview"' in letters and "Replay all of materials" in letters

    preview = client.get("/dead-letters/preview?flow=materials")
    assert preview.status_code == 200 and data.previewed == ["materials"] and data.replayed == []
    assert "Nothing has been written yet" in preview.text and 'id="would-replay">1<' in preview.text
    assert "手工改过" in preview.text and "一次性使用麻醉面罩" in preview.text, "the first records' diff"
    assert 'name="offsets" value="0"' in preview.text, "only the letter that would be replayed"
    csrf = _csrf(preview.text)

    # not confirmed: back to the preview, nothing written; no CSRF token: refused
    unconfirmed = client.post("/dead-letters/replay", data={"flow": "materials", "csrf": csrf})
    assert unconfirmed.status_code == 303 and unconfirmed.headers["location"].startswith("/dead-letters/preview")
    assert client.post("/dead-letters/replay", data={"flow": "materials", "confirm": "yes",
                                                     "offsets": "0"}).status_code == 403
    assert data.replayed == []

    done = client.post("/dead-letters/replay", data={"flow": "materials", "csrf": csrf, "confirm": "yes",
                                                     "offsets": "0"})
    assert done.status_code == 303 and "replayed" in done.headers["location"]
    assert data.replayed == [("materials", [0])]


def test_a_sparkline_leaves_gaps_where_there_is_no_sample() -> None:
    line = sparkline([1, 2, None, None, 4, 0], width=50, height=20)
    assert len(line.segments) == 2 and line.top == 4 and line.last == 0
    assert line.segments[1].startswith("40.0,1.0")  # the top of the chart is the largest value
