"""ZohoChangePoller: CRM changes as Avro events on ``zoho.<module>`` topics, keyed by record id.

Incremental reads use ``If-Modified-Since`` with an overlap window (ZOHO shows ``Modified_Time`` to the second, and
pages shift under writes), deduplicated by (id, Modified_Time, content fingerprint) — the fingerprint keeps two
edits within one second from being merged into one.  Deletions come from ``/{Module}/deleted``.  Every event says
whether cdchub's own CRM user made the change (``by_integration``), which the flows use to drop their own echoes.

Delivery: at-least-once.  The cursor (per module: the newest time seen plus the fingerprints inside the overlap
window) is saved only after Kafka acknowledged the events, so a crash re-reads the window and re-sends at most
what was not acknowledged; consumers are idempotent by (id, version).
"""

from __future__ import annotations

import hashlib
import json
import logging
import signal
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from connectors.common.avro import AvroEncoder, load_schema_text, registry_client
from connectors.common.kafka import CHANGE_TOPIC_CONFIG, ensure_topics, producer
from connectors.settings import Settings
from connectors.zoho.client import ZohoClient
from connectors.zoho.watch import WatchListener
from core.errors import TransientError

log = logging.getLogger(__name__)
PER_PAGE = 200
MAX_FIELDS = 50  # the API's limit for `fields`


def zoho_topic(module: str) -> str:
    return f"zoho.{module.lower()}"


def parse_time(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def format_time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone(timedelta(hours=8))).isoformat(timespec="seconds")


def content_fingerprint(record: dict[str, Any]) -> str:
    blob = json.dumps(record, sort_keys=True, ensure_ascii=False, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:24]


class ModuleCursor:
    """Where polling of one module stands: newest time seen and what was seen inside the overlap window."""

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        data = data or {}
        self.since_ms: int | None = data.get("since_ms")
        self.seen: dict[str, str] = data.get("seen", {})  # "id|version" -> fingerprint
        self.deleted_since_ms: int | None = data.get("deleted_since_ms")
        self.deleted_seen: list[str] = data.get("deleted_seen", [])

    def to_json(self) -> dict[str, Any]:
        return {"since_ms": self.since_ms, "seen": self.seen, "deleted_since_ms": self.deleted_since_ms,
                "deleted_seen": self.deleted_seen}

    def prune(self, overlap_ms: int) -> None:
        if self.since_ms is not None:
            floor = self.since_ms - overlap_ms
            self.seen = {k: v for k, v in self.seen.items() if int(k.rsplit("|", 1)[1]) >= floor}


class ZohoChangePoller:
    def __init__(self, settings: Settings, client: ZohoClient | None = None) -> None:
        self.settings = settings
        self.client = client or ZohoClient(settings.zoho)
        self.modules = list(settings.zoho.poll_modules)
        self.overlap_ms = int(settings.zoho.poll_overlap_s * 1000)
        self.state_path = settings.state_dir / "zoho-poller.json"
        self.cursors = self._load()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._dirty: dict[str, set[str]] = {}
        self._polled_at: dict[str, float] = {}
        self.watch: WatchListener | None = None
        self._fields: dict[str, str] = {}
        self._encoder: AvroEncoder | None = None
        self._encoders: dict[str, AvroEncoder] = {}
        self._producer = producer(settings.kafka)
        self._errors: list[str] = []
        self.integration_user_id: str | None = None
        self.events = 0

    # --- state ------------------------------------------------------------------------------------------------
    def _load(self) -> dict[str, ModuleCursor]:
        try:
            raw = json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            raw = {}
        return {m: ModuleCursor(raw.get(m)) for m in self.settings.zoho.poll_modules}

    def _save(self) -> None:
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({m: c.to_json() for m, c in self.cursors.items()}))
        tmp.replace(self.state_path)

    # --- setup ------------------------------------------------------------------------------------------------
    def prepare(self) -> None:
        kafka = self.settings.kafka
        topics = [kafka.topic(zoho_topic(m)) for m in self.modules]
        ensure_topics(kafka, topics, kafka.topic_partitions, CHANGE_TOPIC_CONFIG)
        registry = registry_client(self.settings.registry)
        for module, topic in zip(self.modules, topics, strict=True):
            self._encoders[module] = AvroEncoder(registry, f"{topic}-value", load_schema_text("zoho.record"))
        _, body = self.client.request("GET", "users", params={"type": "CurrentUser"})
        users = (body or {}).get("users") or []
        self.integration_user_id = str(users[0]["id"]) if users else None
        for module in self.modules:
            _, meta = self.client.request("GET", "settings/fields", params={"module": module})
            names = [f["api_name"] for f in (meta or {}).get("fields", [])]
            self._fields[module] = ",".join(names[:MAX_FIELDS])

    # --- polling ----------------------------------------------------------------------------------------------
    def _pages(self, module: str, since_ms: int | None) -> list[dict[str, Any]]:
        headers = {"If-Modified-Since": format_time(since_ms)} if since_ms is not None else {}
        params: dict[str, Any] = {"fields": self._fields[module], "sort_by": "Modified_Time", "sort_order": "asc",
                                  "per_page": PER_PAGE, "page": 1,
                                  **self.settings.zoho.poll_params.get(module, {})}
        records: list[dict[str, Any]] = []
        while True:
            status, body = self.client.request("GET", module, params=params, headers=dict(headers))
            if status == 204 or not body:
                return records
            records.extend(body.get("data") or [])
            info = body.get("info") or {}
            if not info.get("more_records"):
                return records
            if info.get("next_page_token"):
                params = {"fields": params["fields"], "page_token": info["next_page_token"], "per_page": PER_PAGE}
            else:
                params["page"] = int(params.get("page", 1)) + 1

    def _event(self, module: str, op: str, rid: str, version: int, record: dict[str, Any] | None,
               by: dict[str, Any] | None) -> dict[str, Any]:
        by = by or {}
        return {
            "op": op, "id": rid, "record": json.dumps(record, ensure_ascii=False) if record is not None else None,
            "modified_by_id": str(by.get("id")) if by.get("id") is not None else None,
            "modified_by_name": by.get("name"),
            "by_integration": by.get("id") is not None and str(by.get("id")) == self.integration_user_id,
            "ts_ms": int(time.time() * 1000),
            "source": {"system": "zoho", "module": module, "version": version, "commit_time": version,
                       "number": _display_name(record), "via": "poll"},
        }

    def _produce(self, module: str, event: dict[str, Any]) -> None:
        topic = self.settings.kafka.topic(zoho_topic(module))
        value = self._encoders[module].encode(event)
        self._producer.produce(topic, key=event["id"].encode(), value=value, on_delivery=self._delivered)
        self._producer.poll(0)
        self.events += 1

    def _delivered(self, err: Any, _msg: Any) -> None:
        if err is not None:
            self._errors.append(str(err))

    def poll_module(self, module: str, *, deleted: bool = True) -> int:
        """Read the module's changes, and its deletions unless ``deleted`` is False, since its cursor; send them."""
        self._polled_at[module] = time.monotonic()
        cursor = self.cursors[module]
        since = None if cursor.since_ms is None else cursor.since_ms - self.overlap_ms
        sent = 0
        newest = cursor.since_ms
        for record in self._pages(module, since):
            rid = str(record["id"])
            version = parse_time(record["Modified_Time"])
            seen_key = f"{rid}|{version}"
            fp = content_fingerprint(record)
            if cursor.seen.get(seen_key) == fp:
                continue  # inside the overlap window and already sent
            created = record.get("Created_Time") == record.get("Modified_Time")
            self._produce(module, self._event(module, "c" if created else "u", rid, version, record,
                                              record.get("Modified_By")))
            cursor.seen[seen_key] = fp
            newest = max(newest or version, version)
            sent += 1
        dsince = None if cursor.deleted_since_ms is None else cursor.deleted_since_ms - self.overlap_ms
        headers = {"If-Modified-Since": format_time(dsince)} if dsince is not None else {}
        status, body = (self.client.request("GET", f"{module}/deleted", params={"type": "all"}, headers=headers)
                        if deleted else (204, None))
        newest_deleted = cursor.deleted_since_ms
        for item in (body or {}).get("data") or [] if status != 204 else []:
            rid = str(item["id"])
            version = parse_time(item["deleted_time"])
            key = f"{rid}|{version}"
            if key in cursor.deleted_seen:
                continue
            self._produce(module, self._event(module, "d", rid, version, None, item.get("deleted_by")))
            cursor.deleted_seen.append(key)
            newest_deleted = max(newest_deleted or version, version)
            sent += 1
        remaining = self._producer.flush(30)
        if remaining or self._errors:
            raise RuntimeError(f"Kafka did not acknowledge {remaining} ZOHO events: {self._errors[:3]}")
        cursor.since_ms = newest
        cursor.deleted_since_ms = newest_deleted
        cursor.prune(self.overlap_ms)
        if newest_deleted is not None:
            floor = newest_deleted - self.overlap_ms
            cursor.deleted_seen = [k for k in cursor.deleted_seen if int(k.rsplit("|", 1)[1]) >= floor]
        self._save()
        return sent

    def poll_once(self) -> int:
        return sum(self.poll_module(m) for m in self.modules)

    def stop(self, *_: Any) -> None:
        self._stop.set()
        self._wake.set()

    def _prepare_when_possible(self) -> bool:
        """Prepare, waiting out transient trouble (the CRM down, no access token yet) instead of exiting."""
        while not self._stop.is_set():
            try:
                self.prepare()
                return True
            except TransientError as exc:
                wait = max(1.0, exc.retry_after or self.settings.zoho.poll_interval_s)
                log.warning("ZOHO poller cannot start yet (retrying in %.0fs): %s", wait, exc)
                self._stop.wait(wait)
        return False

    def run(self, *, once: bool = False) -> None:
        if not self._prepare_when_possible():
            return
        zoho = self.settings.zoho
        # what the next round reads: module → operations; None: everything (the clock's full poll)
        todo: dict[str, set[str]] | None = None
        next_full = 0.0
        try:
            while not self._stop.is_set():
                if not once:
                    self._keep_watching()
                try:
                    if todo is None:  # the next full poll is due an interval from now, even if this one fails
                        next_full = time.monotonic() + (zoho.safety_poll_interval_s if self.watch is not None
                                                        else zoho.poll_interval_s)
                        sent = sum(self.poll_module(m) for m in self.modules)
                    else:
                        sent = sum(self.poll_module(m, deleted="delete" in ops) for m, ops in todo.items())
                    if sent:
                        log.info("ZOHO poll: %d changes", sent)
                except Exception as exc:  # transient trouble must not stop polling; the cursor did not move
                    log.warning("ZOHO poll failed (will retry): %s", exc)
                    for module, ops in (todo or {}).items():  # a notification's read is not lost to an error
                        self._dirty.setdefault(module, set()).update(ops)
                if once:
                    return
                todo = self._next_round(next_full)
        finally:
            if self.watch is not None:
                self.watch.stop()

    def _next_round(self, next_full: float) -> dict[str, set[str]] | None:
        """Wait for the next round: the full poll when its time comes (None), else the modules notifications named,
        each at most once per ``watch_min_gap_s``."""
        gap = self.settings.zoho.watch_min_gap_s
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_full:
                self._dirty.clear()
                return None
            due = {m: ops for m, ops in self._dirty.items() if now - self._polled_at.get(m, 0.0) >= gap}
            if due:
                for m in due:
                    del self._dirty[m]
                return due
            waits = [self._polled_at.get(m, 0.0) + gap - now for m in self._dirty]
            self._wake.wait(min([next_full - now, *waits]))
            self._wake.clear()
        return {}

    def _keep_watching(self) -> None:
        """Notifications on when configured: the channel subscribed (and renewed); when ZOHO cannot be asked (or our
        listener cannot bind), the poller goes on polling at ``poll_interval_s`` and asks again later."""
        zoho = self.settings.zoho
        if not zoho.watch_notify_url:
            return
        try:
            if self.watch is None:
                watch = WatchListener(self.client, zoho.watch_notify_url, self.modules, self._wake, self._dirty,
                                      zoho.watch_listen, zoho.watch_also)
                watch.start()
                self.watch = watch
            else:
                self.watch.renew_if_needed()
        except Exception as exc:
            if self.watch is None:
                log.warning("ZOHO watch notifications are off for now, polling every %.0f s: %s",
                            zoho.poll_interval_s, exc)
            else:
                log.warning("ZOHO watch channel not renewed (will retry): %s", exc)


def _display_name(record: dict[str, Any] | None) -> str | None:
    if not record:
        return None
    for key in ("Product_Name", "Account_Name", "Last_Name", "Deal_Name", "Subject", "Name"):
        if record.get(key):
            return str(record[key])
    return None


def run_poller(settings: Settings, *, once: bool = False) -> ZohoChangePoller:
    poller = ZohoChangePoller(settings)
    signal.signal(signal.SIGTERM, poller.stop)
    signal.signal(signal.SIGINT, poller.stop)
    poller.run(once=once)
    return poller

