"""WeaverRequestPoller: versions of Weaver OA workflow requests as Avro events on ``weaver.requests``, keyed by
request id.

What it follows: the requests cdchub started (the ``campaign_approvals`` ledger names them; they are created as the
campaign's owner), requests it finds in the "my requests" lists (``getMyWorkflowRequestList``) of the OA users
named in ``flows/mappings/approvals.toml`` ``[discovery]`` — cdchub's own user and the sales people who start
contract workflows in the OA — and, once found, every request until it is archived, whether
or not a list still shows it.  Each poll asks each open request's status and log (``getRequestStatus``,
``getRequestLog``); only when they changed (node, status, rejection, log entries) are the form
(``getWorkflowRequest``) and attachments (``getRequestResources``) read and a new version published.  Unchanged
requests are never re-sent.  An archived request is published once more (its final state) and then left alone.

Delivery: at-least-once.  The state (per request: fingerprint and version of what was last published, whether it
is finished) is saved only after Kafka acknowledged the events, so a crash re-publishes at most the versions not
acknowledged; consumers are idempotent per request and per log entry / attachment.  Versions are the time of
observation in epoch ms, strictly increasing per request.

Auth: the client renews tokens before they run out and once more when the OA says ``token不存在或者超时``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import Field
from sqlalchemy import Engine, select

from connectors.common.avro import AvroEncoder, load_schema_text, registry_client
from connectors.common.kafka import CHANGE_TOPIC_CONFIG, ensure_topics, producer
from connectors.common.poll_loop import PollLoop
from connectors.settings import Settings
from connectors.weaver.client import WeaverClient, client_for
from core.errors import PermanentError, TransientError
from core.settings import PROJECT_ROOT
from core.toml_specs import Spec, load_toml_spec

log = logging.getLogger(__name__)

TOPIC = "weaver.requests"
DISCOVERY_FILE = PROJECT_ROOT / "flows" / "mappings" / "approvals.toml"
#: The flow that starts OA requests (its ledger names them: cdchub follows what it started).
CREATING_FLOW = "campaign_approvals"
NODE_ARCHIVE = 3


def weaver_client(settings: Settings, role: str) -> WeaverClient:
    """The installation's Weaver client (``role`` names who uses it, for logs; registration and token are
    shared)."""
    w = settings.weaver
    return client_for(w.base_url, w.app_id, w.user_id, w.token_ttl_s, w.timeout_s,
                      settings.state_dir / "weaver-client.json")


class DiscoverySpec(Spec):
    """``[discovery]`` of the approvals rules: the OA users whose "my requests" lists are read, and the page size."""

    list_users: tuple[int, ...] = Field(min_length=1)
    list_page_size: int = Field(default=100, ge=1)


def load_discovery(path: Path = DISCOVERY_FILE) -> tuple[tuple[int, ...], int]:
    """(OA users whose "my requests" lists are read, page size) from the approvals rules; a wrong section fails
    naming the file and the field."""
    spec = load_toml_spec(path, DiscoverySpec, section="discovery")
    return spec.list_users, spec.list_page_size


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return default


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def change_fingerprint(status: dict[str, Any], log_rows: Sequence[dict[str, Any]]) -> str:
    """What makes a new version: node, status, rejection and the log entries (every OA action writes one)."""
    core = [status.get("currentNodeId"), status.get("currentNodeType", status.get("currentnodetype")),
            status.get("status"), status.get("isbereject"), sorted(str(r.get("logid")) for r in log_rows)]
    return hashlib.sha256(json.dumps(core, default=str).encode()).hexdigest()[:24]


def form_values(workflow_request: dict[str, Any]) -> dict[str, str]:
    records = (workflow_request.get("workflowMainTableInfo") or {}).get("requestRecords") or []
    fields = records[0].get("workflowRequestTableFields") or [] if records else []
    return {str(f["fieldName"]): "" if f.get("fieldValue") is None else str(f["fieldValue"])
            for f in fields if f.get("fieldName")}


def log_entry(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "log_id": str(row.get("logid")), "log_type": str(row.get("logtype")), "node_id": _str(row.get("nodeid")),
        "node_name": _str(row.get("nodename")), "operator_id": _str(row.get("operator")),
        "operator_name": _str(row.get("operatorName")), "operator_dept": _str(row.get("operatorDept")),
        "operate_date": _str(row.get("operatedate")), "operate_time": _str(row.get("operatetime")),
        "remark_html": _str(row.get("remarkHtml")), "received_persons": _str(row.get("receivedPersons")) or None,
    }


def resource(row: dict[str, Any]) -> dict[str, Any]:
    size = row.get("filesize")
    return {"file_id": str(row.get("id")), "name": str(row.get("name") or ""), "type": _str(row.get("type")),
            "size": _int(size) if size not in (None, "") else None, "download_url": str(row.get("downloadUrl") or "")}


class WeaverRequestPoller(PollLoop):
    source_name = "Weaver"
    unit = "request versions"

    def __init__(self, settings: Settings, client: WeaverClient | None = None,
                 list_users: Sequence[int] | None = None, page_size: int | None = None) -> None:
        self.settings = settings
        self.client = client or weaver_client(settings, "poller")
        users, size = load_discovery()
        self.list_users = tuple(list_users if list_users is not None else users)
        self.page_size = page_size or size
        self.state_path = settings.state_dir / "weaver-poller.json"
        self.tracked: dict[str, dict[str, Any]] = self._load()
        super().__init__()
        self._encoder: AvroEncoder | None = None
        self._producer = producer(settings.kafka)
        self._errors: list[str] = []
        self.events = 0
        self._ledger: Engine | None = None

    # --- state ------------------------------------------------------------------------------------------------
    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            return dict(json.loads(self.state_path.read_text(encoding="utf-8"))["requests"])
        except (OSError, ValueError, KeyError, TypeError):
            return {}

    def _save(self) -> None:
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"requests": self.tracked}), encoding="utf-8")
        tmp.replace(self.state_path)

    # --- setup ------------------------------------------------------------------------------------------------
    def prepare(self) -> None:
        kafka = self.settings.kafka
        topic = kafka.topic(TOPIC)
        ensure_topics(kafka, [topic], kafka.topic_partitions, CHANGE_TOPIC_CONFIG)
        self._encoder = AvroEncoder(registry_client(self.settings.registry), f"{topic}-value",
                                    load_schema_text(TOPIC))

    # --- polling ----------------------------------------------------------------------------------------------
    def created_by_us(self) -> list[str]:
        """Requests cdchub started (the ``campaign_approvals`` ledger's targets): created as the campaign's owner,
        they are in that person's list, which nobody here reads."""
        from core.ledger import open_engine, sync_ledger

        if self._ledger is None:
            self._ledger = open_engine(self.settings.ledger_database_url())
        t = sync_ledger.c
        with self._ledger.connect() as conn:
            rows = conn.execute(select(t.target_id).where(
                t.flow == CREATING_FLOW, t.target_system == "weaver", t.target_id.is_not(None)))
            return [str(r[0]) for r in rows]

    def discover(self) -> int:
        """Add requests the lists show (and the ones cdchub created) that are not followed yet; returns how many."""
        found = 0
        for rid in self.created_by_us():
            if rid not in self.tracked:
                self.tracked[rid] = {"fingerprint": None, "version": 0, "finished": False}
                found += 1
        for user in self.list_users:
            try:
                rows = self.client.my_requests(page_size=self.page_size, user_id=user)
            except PermanentError as exc:  # e.g. a user removed from the OA: the other lists still count
                log.warning("Weaver list of user %s refused: %s", user, exc)
                continue
            for row in rows:
                rid = str(row.get("requestId") or row.get("requestid") or "")
                if rid and rid not in self.tracked:
                    self.tracked[rid] = {"fingerprint": None, "version": 0, "finished": False}
                    found += 1
        return found

    def follow(self, request_id: str) -> dict[str, Any] | None:
        """The request's new version as an event, or None when nothing changed since the last one published."""
        rid = int(request_id)
        status = self.client.request_status(rid)
        log_rows = sorted(self.client.request_log(rid), key=lambda r: _int(r.get("logid")))
        fp = change_fingerprint(status, log_rows)
        known = self.tracked[request_id]
        if fp == known.get("fingerprint"):
            return None
        form = form_values(self.client.workflow_request(rid))
        resources = [resource(r) for r in self.client.request_resources(rid) if str(r.get("type", "3")) == "3"]
        now = int(time.time() * 1000)
        version = max(now, int(known.get("version") or 0) + 1)
        node_type = _int(status.get("currentNodeType", status.get("currentnodetype")))
        return {
            "request_id": request_id, "workflow_id": str(status.get("workflowId") or ""),
            "workflow_name": _str(status.get("workflowName")), "request_name": _str(status.get("requestName")),
            "creator_id": _str(status.get("creatorId")), "creator_name": _str(status.get("creatorName")),
            "status": _str(status.get("status")), "current_node_id": _str(status.get("currentNodeId")),
            "current_node_name": _str(status.get("currentNodeName")), "current_node_type": node_type,
            "rejected": str(status.get("isbereject") or "0") == "1", "form": form,
            "log": [log_entry(r) for r in log_rows], "resources": resources, "ts_ms": now,
            "source": {"system": "weaver", "workflow": _str(status.get("workflowId")), "version": version,
                       "commit_time": version, "number": _str(status.get("requestName")), "via": "poll"},
            "_fingerprint": fp,
        }

    def _delivered(self, err: Any, _msg: Any) -> None:
        if err is not None:
            self._errors.append(str(err))

    def poll_once(self) -> int:
        assert self._encoder is not None, "prepare() first"
        self.discover()
        published: list[dict[str, Any]] = []
        topic = self.settings.kafka.topic(TOPIC)
        for rid in [r for r, s in self.tracked.items() if not s.get("finished")]:
            try:
                event = self.follow(rid)
            except PermanentError as exc:  # deleted in the OA, or no longer visible to our user
                log.warning("Weaver request %s can no longer be read (%s); not followed any more", rid, exc)
                self.tracked[rid]["finished"] = True
                continue
            except TransientError as exc:  # this request again next poll; the others go on
                log.warning("Weaver request %s not read this time (will retry): %s", rid, exc)
                continue
            if event is None:
                continue
            fp = event.pop("_fingerprint")
            self._producer.produce(topic, key=rid.encode(), value=self._encoder.encode(event),
                                   on_delivery=self._delivered)
            self._producer.poll(0)
            published.append({"rid": rid, "fingerprint": fp, "version": event["source"]["version"],
                              "finished": event["current_node_type"] == NODE_ARCHIVE})
        remaining = self._producer.flush(30)
        if remaining or self._errors:
            errors, self._errors = self._errors[:3], []
            raise RuntimeError(f"Kafka did not acknowledge {remaining} Weaver events: {errors}")
        for p in published:
            self.tracked[p.pop("rid")] = p
        self.events += len(published)
        self._save()
        return len(published)

    def interval_s(self) -> float:
        return self.settings.weaver.poll_interval_s


def run_poller(settings: Settings, *, once: bool = False) -> WeaverRequestPoller:
    poller = WeaverRequestPoller(settings)
    poller.stop_on_signals()
    try:
        poller.run(once=once)
    finally:
        poller.client.close()
    return poller
