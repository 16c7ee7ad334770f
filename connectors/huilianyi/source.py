"""ExpenseReportPoller: Huilianyi expense reports and their status changes as Avro events on
``huilianyi.expense_reports``, keyed by business code.

Each poll reads the window ``[cursor − overlap, now)`` of ``lastModifiedDate`` (``POST /api/open/expenseReport/v2``,
every status, page by page).  Request times are whole seconds and the server's and our clocks may differ a little,
so windows overlap by ``OVERLAP_S``; versions already sent inside the overlap are recognised by (business code,
lastModifiedDate, content fingerprint) and not sent again.  A report listed without its expense lines is read whole
with ``expenseReport/detail`` before it is sent.  Rejections are not a status in Huilianyi (the report goes back to
1001 with ``rejectType``), so every status is read: each change of a report is one event carrying the whole report.

Delivery: at-least-once.  The cursor (window end and the fingerprints inside the overlap) is saved only after Kafka
acknowledged the window's events, so a crash re-reads the window and re-sends at most what was not acknowledged;
the flows are idempotent by (business code, version).  A failing poll (token refused twice, 5xx, timeouts) is logged
and tried again at the next interval from the same cursor.  Tokens: ``HuilianyiClient`` fetches a new bearer token
when one is refused (expired or revoked) and retries the call once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.common.avro import AvroEncoder, load_schema_text, registry_client
from connectors.common.kafka import CHANGE_TOPIC_CONFIG, ensure_topics, producer
from connectors.common.poll_loop import PollLoop
from connectors.huilianyi.client import HuilianyiClient, parse_instant
from connectors.settings import Settings

log = logging.getLogger(__name__)

TOPIC = "huilianyi.expense_reports"
SCHEMA = "huilianyi.expense_report"
#: Each window starts this far before the previous window's end (request times are whole seconds; clocks differ).
OVERLAP_S = 5
#: The first poll (no cursor yet) reads reports modified this far back.
FIRST_LOOKBACK = timedelta(days=30)
#: The lines of a report; a list answer without them is completed with ``expenseReport/detail``.
LINES_FIELD = "invoiceVOList"


def version_of(report: dict[str, Any]) -> int:
    """``lastModifiedDate`` (ISO instant) in epoch milliseconds: the report's version."""
    return int(parse_instant(str(report["lastModifiedDate"])).timestamp() * 1000)


def content_fingerprint(report: dict[str, Any]) -> str:
    blob = json.dumps(report, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:24]


def to_event(report: dict[str, Any], now_ms: int) -> dict[str, Any]:
    """The Avro event of one report version."""
    version = version_of(report)
    code = str(report["businessCode"])
    reject = report.get("rejectType")
    return {
        "op": "c" if report.get("createdDate") == report.get("lastModifiedDate") else "u",
        "business_code": code,
        "status": int(report["status"]),
        "reject_type": int(reject) if reject is not None else None,
        "journal_no": str(report["journalNo"]) if report.get("journalNo") else None,
        "report": json.dumps(report, ensure_ascii=False),
        "fingerprint": content_fingerprint(report),
        "ts_ms": now_ms,
        "source": {"system": "huilianyi", "entity": "expense_report", "version": version,
                   "commit_time": datetime.fromtimestamp(version / 1000, UTC), "number": code, "via": "poll"},
    }


class PollCursor:
    """Where polling stands: the end of the last window read (epoch ms, whole seconds) and what was sent inside
    the overlap (``"code|version"`` → fingerprint)."""

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        data = data or {}
        self.until_ms: int | None = data.get("until_ms")
        self.seen: dict[str, str] = dict(data.get("seen") or {})

    def to_json(self) -> dict[str, Any]:
        return {"until_ms": self.until_ms, "seen": self.seen}

    def window_start(self, now_ms: int) -> int:
        if self.until_ms is None:
            return now_ms - int(FIRST_LOOKBACK.total_seconds() * 1000)
        return self.until_ms - OVERLAP_S * 1000

    def advance(self, until_ms: int) -> None:
        self.until_ms = until_ms
        floor = until_ms - 2 * OVERLAP_S * 1000
        self.seen = {k: v for k, v in self.seen.items() if int(k.rsplit("|", 1)[1]) >= floor}


class ExpenseReportPoller(PollLoop):
    source_name = "Huilianyi"
    unit = "expense report changes"

    def __init__(self, settings: Settings, client: HuilianyiClient | None = None) -> None:
        self.settings = settings
        self.client = client or HuilianyiClient(settings.huilianyi)
        self.topic = settings.kafka.topic(TOPIC)
        self.state_path = settings.state_dir / "huilianyi-poller.json"
        self.cursor = self._load()
        self._producer = producer(settings.kafka)
        self._encoder: AvroEncoder | None = None
        self._errors: list[str] = []
        super().__init__()
        #: Events produced (and acknowledged) since start.
        self.events = 0

    # --- state ------------------------------------------------------------------------------------------------
    def _load(self) -> PollCursor:
        try:
            return PollCursor(json.loads(self.state_path.read_text()))
        except (OSError, ValueError):
            return PollCursor()

    def _save(self) -> None:
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.cursor.to_json()))
        tmp.replace(self.state_path)

    # --- setup ------------------------------------------------------------------------------------------------
    def prepare(self) -> None:
        kafka = self.settings.kafka
        ensure_topics(kafka, [self.topic], kafka.topic_partitions, CHANGE_TOPIC_CONFIG)
        self._encoder = AvroEncoder(registry_client(self.settings.registry), f"{self.topic}-value",
                                    load_schema_text(SCHEMA))

    # --- polling ----------------------------------------------------------------------------------------------
    def _whole(self, report: dict[str, Any]) -> dict[str, Any] | None:
        if LINES_FIELD in report:
            return report
        return self.client.detail(str(report["businessCode"]))

    def _delivered(self, err: Any, _msg: Any) -> None:
        if err is not None:
            self._errors.append(str(err))

    def poll_once(self) -> int:
        """Read one window, send what is new, save the cursor once Kafka has it all; returns events sent."""
        assert self._encoder is not None, "call prepare() first"
        now_ms = int(time.time()) * 1000  # whole seconds: request times have no sub-seconds
        start_ms = self.cursor.window_start(now_ms)
        start, end = (datetime.fromtimestamp(ms / 1000, UTC) for ms in (start_ms, now_ms))
        sent = 0
        pending: dict[str, str] = {}
        for listed in self.client.expense_reports(start, end, page_size=self.settings.huilianyi.page_size):
            report = self._whole(listed)
            if report is None:
                continue  # gone between the list and the detail
            event = to_event(report, int(time.time() * 1000))
            seen_key = f"{event['business_code']}|{event['source']['version']}"
            if self.cursor.seen.get(seen_key) == event["fingerprint"] or pending.get(seen_key) == event["fingerprint"]:
                continue  # inside the overlap and already sent
            self._producer.produce(self.topic, key=event["business_code"].encode("utf-8"),
                                   value=self._encoder.encode(event), on_delivery=self._delivered)
            self._producer.poll(0)
            pending[seen_key] = event["fingerprint"]
            sent += 1
        remaining = self._producer.flush(30)
        if remaining or self._errors:
            errors, self._errors = self._errors[:3], []
            raise RuntimeError(f"Kafka did not acknowledge {remaining} expense report events: {errors}")
        self.cursor.seen.update(pending)
        self.cursor.advance(now_ms)
        self._save()
        self.events += sent
        return sent

    def interval_s(self) -> float:
        return self.settings.huilianyi.poll_interval_s

    def close(self) -> None:
        self._producer.flush(30)
        self.client.close()


def run_poller(settings: Settings, *, once: bool = False) -> ExpenseReportPoller:
    poller = ExpenseReportPoller(settings)
    poller.stop_on_signals()
    try:
        poller.run(once=once)
    finally:
        poller.close()
    return poller
