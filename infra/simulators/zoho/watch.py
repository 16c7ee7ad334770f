"""Watch notifications (``/actions/watch``): channels in SQLite, and a background sender of callbacks.

- A channel has ``channel_id`` (digits), ``events`` (``Module.create|edit|delete|all``), ``notify_url``, an
  optional ``token`` (≤ 50 chars, echoed in each callback) and ``channel_expiry``: one hour when not given, at
  most one week (a later time is cut to one week) [L]. Expired channels get nothing and are not listed.
- After each applied write the :class:`Notifier` POSTs, per matching channel, ``{server_time, query_params,
  module, resource_uri, ids, affected_fields, operation, channel_id, token}`` to ``notify_url``: ids only,
  ``operation`` ``insert``/``update``/``delete``. Sending is asynchronous (one worker thread) and best effort:
  no retry; each attempt is kept in :attr:`Notifier.deliveries` and logged.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import httpx

from infra.simulators.common.sqlite import SqliteDb
from infra.simulators.zoho.catalog import module_id
from infra.simulators.zoho.errors import error_body
from infra.simulators.zoho.modules import ModuleDef
from infra.simulators.zoho.timefmt import ZohoClock, now_ms

log = logging.getLogger(__name__)

DEFAULT_EXPIRY_MS = 3600 * 1000
MAX_EXPIRY_MS = 7 * 24 * 3600 * 1000
MAX_TOKEN_CHARS = 50
EVENT_KINDS = ("create", "edit", "delete", "all")
OPERATION_EVENT = {"insert": "create", "update": "edit", "delete": "delete"}
SEND_TIMEOUT_S = 5.0
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS watch_channels (
        channel_id TEXT PRIMARY KEY, events TEXT NOT NULL, token TEXT, notify_url TEXT NOT NULL,
        expiry_ms INTEGER NOT NULL, api_domain TEXT NOT NULL, client_id TEXT, created_ms INTEGER NOT NULL,
        notify_on_related_action INTEGER NOT NULL DEFAULT 0)""",
)


@dataclass
class Channel:
    channel_id: str
    events: list[str]
    token: str | None
    notify_url: str
    expiry_ms: int
    api_domain: str
    notify_on_related_action: bool = False

    def modules(self) -> list[str]:
        return list(dict.fromkeys(e.split(".", 1)[0] for e in self.events))

    def wants(self, module: str, operation: str) -> bool:
        return f"{module}.all" in self.events or f"{module}.{OPERATION_EVENT[operation]}" in self.events

    @property
    def channel_id_json(self) -> int | str:
        return int(self.channel_id) if self.channel_id.isdigit() else self.channel_id


class WatchError(ValueError):
    def __init__(self, code: str, api_name: str, message: str = "invalid data") -> None:
        super().__init__(message)
        self.body = error_body(code, message, {"api_name": api_name})


class WatchRegistry:
    def __init__(self, db: SqliteDb, modules: Mapping[str, ModuleDef], clock: ZohoClock) -> None:
        self.db = db
        self.modules = modules
        self.clock = clock
        db.ensure_schema(SCHEMA)

    # -- validation ------------------------------------------------------------------------------------------
    def _events(self, raw: Any) -> list[str]:
        if not isinstance(raw, list) or not raw:
            raise WatchError("MANDATORY_NOT_FOUND", "events", "required field not found")
        events: list[str] = []
        for event in raw:
            module, _, kind = str(event).partition(".")
            if module not in self.modules or kind not in EVENT_KINDS:
                raise WatchError("INVALID_DATA", "events", f"invalid event {event!r}")
            events.append(f"{module}.{kind}")
        return list(dict.fromkeys(events))

    def _expiry(self, raw: Any) -> int:
        now = now_ms()
        if raw in (None, ""):
            return now + DEFAULT_EXPIRY_MS
        try:
            at = self.clock.parse(str(raw))
        except ValueError as exc:
            raise WatchError("INVALID_DATA", "channel_expiry") from exc
        if at <= now:
            raise WatchError("INVALID_DATA", "channel_expiry", "channel_expiry must be in the future")
        return min(at, now + MAX_EXPIRY_MS)

    def _parse(self, item: Any, existing: Channel | None, api_domain: str) -> Channel:
        if not isinstance(item, dict):
            raise WatchError("INVALID_DATA", "watch")
        channel_id = item.get("channel_id")
        if channel_id in (None, ""):
            raise WatchError("MANDATORY_NOT_FOUND", "channel_id", "required field not found")
        if isinstance(channel_id, bool) or not str(channel_id).isdigit():
            raise WatchError("INVALID_DATA", "channel_id")
        token = item.get("token", existing.token if existing else None)
        if token is not None and (not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS):
            raise WatchError("INVALID_DATA", "token")
        url = item.get("notify_url", existing.notify_url if existing else None)
        if not url:
            raise WatchError("MANDATORY_NOT_FOUND", "notify_url", "required field not found")
        parsed = urlparse(str(url))
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise WatchError("INVALID_DATA", "notify_url")
        keep_events = existing is not None and "events" not in item
        events = existing.events if existing is not None and keep_events else self._events(item.get("events"))
        expiry = (
            existing.expiry_ms
            if existing is not None and "channel_expiry" not in item
            else self._expiry(item.get("channel_expiry"))
        )
        related = bool(item.get("notify_on_related_action", existing.notify_on_related_action if existing else False))
        return Channel(str(channel_id), events, token, str(url), expiry, api_domain, related)

    # -- operations ------------------------------------------------------------------------------------------
    def _details(self, channel: Channel, modules: Sequence[str] | None = None) -> dict[str, Any]:
        events = []
        for name in modules or channel.modules():
            module = self.modules.get(name)
            events.append(
                {
                    "channel_expiry": self.clock.format(channel.expiry_ms),
                    "resource_uri": f"{channel.api_domain}/crm/v2/{name}",
                    "resource_id": module_id(module) if module else None,
                    "resource_name": name,
                    "channel_id": channel.channel_id_json,
                }
            )
        return {"events": events}

    def subscribe(self, items: Sequence[Any], api_domain: str, client_id: str) -> list[dict[str, Any]]:
        """``POST`` (subscribe) and ``PUT``/``PATCH`` (update or renew): one result per item, in order."""
        results: list[dict[str, Any]] = []
        for item in items:
            existing = self.get(str(item.get("channel_id"))) if isinstance(item, dict) else None
            try:
                channel = self._parse(item, existing, existing.api_domain if existing else api_domain)
            except WatchError as exc:
                results.append(exc.body)
                continue
            self._save(channel, client_id)
            message = (
                "Successfully updated the subscribe details"
                if existing
                else "Successfully subscribed for actions-watch of the given module"
            )
            results.append(
                {
                    "code": "SUCCESS",
                    "details": self._details(channel),
                    "message": message,
                    "status": "success",
                }
            )
        return results

    def remove_events(self, items: Sequence[Any]) -> list[dict[str, Any]]:
        """``PATCH`` with ``"_delete_events": true``: stop the listed events of each channel."""
        results: list[dict[str, Any]] = []
        for item in items:
            channel = self.get(str(item.get("channel_id"))) if isinstance(item, dict) else None
            if channel is None:
                results.append(error_body("INVALID_DATA", "invalid channel_id", {"api_name": "channel_id"}))
                continue
            try:
                dropped = self._events(item.get("events"))
            except WatchError as exc:
                results.append(exc.body)
                continue
            channel.events = [e for e in channel.events if e not in dropped]
            if channel.events:
                self._save(channel, None)
            else:
                self.db.execute("DELETE FROM watch_channels WHERE channel_id = ?", (channel.channel_id,))
            modules = list(dict.fromkeys(e.split(".", 1)[0] for e in dropped))
            results.append(
                {
                    "code": "SUCCESS",
                    "details": self._details(channel, modules),
                    "message": "Successfully unsubscribed the given events",
                    "status": "success",
                }
            )
        return results

    def unsubscribe(self, channel_ids: Sequence[str]) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        for channel_id in channel_ids:
            channel = self.get(channel_id)
            if channel is None:
                results.append(error_body("INVALID_DATA", "invalid channel_id", {"channel_id": channel_id}))
                continue
            self.db.execute("DELETE FROM watch_channels WHERE channel_id = ?", (channel_id,))
            results.append(
                {
                    "code": "SUCCESS",
                    "details": self._details(channel),
                    "message": "Successfully unsubscribed from actions-watch of the given module",
                    "status": "success",
                }
            )
        return results

    def _save(self, channel: Channel, client_id: str | None) -> None:
        self.db.execute(
            "INSERT INTO watch_channels (channel_id, events, token, notify_url, expiry_ms, api_domain, client_id,"
            " created_ms, notify_on_related_action) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT(channel_id) DO UPDATE SET events = excluded.events, token = excluded.token,"
            " notify_url = excluded.notify_url, expiry_ms = excluded.expiry_ms,"
            " notify_on_related_action = excluded.notify_on_related_action",
            (
                channel.channel_id, json.dumps(channel.events), channel.token, channel.notify_url,
                channel.expiry_ms, channel.api_domain, client_id, now_ms(), int(channel.notify_on_related_action),
            ),
        )  # fmt: skip

    @staticmethod
    def _from_row(row: Any) -> Channel:
        return Channel(
            row["channel_id"], json.loads(row["events"]), row["token"], row["notify_url"], row["expiry_ms"],
            row["api_domain"], bool(row["notify_on_related_action"]),
        )  # fmt: skip

    def get(self, channel_id: str) -> Channel | None:
        row = self.db.query_one(
            "SELECT * FROM watch_channels WHERE channel_id = ? AND expiry_ms > ?", (channel_id, now_ms())
        )
        return self._from_row(row) if row else None

    def live(self) -> list[Channel]:
        rows = self.db.query(
            "SELECT * FROM watch_channels WHERE expiry_ms > ? ORDER BY created_ms, channel_id", (now_ms(),)
        )
        return [self._from_row(r) for r in rows]

    def view(self, channel: Channel) -> dict[str, Any]:
        """One element of ``GET /actions/watch``."""
        first = channel.modules()[0] if channel.events else None
        return {
            "channel_id": channel.channel_id_json,
            "events": channel.events,
            "channel_expiry": self.clock.format(channel.expiry_ms),
            "token": channel.token,
            "notify_url": channel.notify_url,
            "notify_on_related_action": channel.notify_on_related_action,
            "resource_uri": f"{channel.api_domain}/crm/v2/{first}" if first else None,
            "resource_name": first,
        }

    def reset(self) -> None:
        self.db.clear(["watch_channels"])


class Notifier:
    """Turns applied writes into callbacks, sent one at a time by a daemon thread."""

    def __init__(self, registry: WatchRegistry, max_log: int = 1000) -> None:
        self.registry = registry
        self.deliveries: deque[dict[str, Any]] = deque(maxlen=max_log)
        self._queue: queue.Queue[tuple[Channel, dict[str, Any]] | None] = queue.Queue()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="zoho-watch-notifier", daemon=True)
        self._thread.start()

    def on_change(self, module: str, operation: str, ids: list[str]) -> None:
        for channel in self.registry.live():
            if not channel.wants(module, operation):
                continue
            payload = {
                "server_time": now_ms(),
                "query_params": {},
                "module": module,
                "resource_uri": f"{channel.api_domain}/crm/v2/{module}",
                "ids": ids,
                "affected_fields": [],
                "operation": operation,
                "channel_id": channel.channel_id_json,
                "token": channel.token,
            }
            self._queue.put((channel, payload))

    def _run(self) -> None:
        with httpx.Client(timeout=SEND_TIMEOUT_S) as client:
            while True:
                job = self._queue.get()
                if job is None:
                    return
                channel, payload = job
                entry: dict[str, Any] = {
                    "time_ms": now_ms(), "channel_id": channel.channel_id, "notify_url": channel.notify_url,
                    "payload": payload, "status": None, "error": None,
                }  # fmt: skip
                try:
                    entry["status"] = client.post(channel.notify_url, json=payload).status_code
                except httpx.HTTPError as exc:
                    entry["error"] = f"{type(exc).__name__}: {exc}"
                    log.warning("watch notification to %s failed: %s", channel.notify_url, entry["error"])
                else:
                    log.info("watch notification to %s: HTTP %s", channel.notify_url, entry["status"])
                with self._lock:
                    self.deliveries.append(entry)
                self._queue.task_done()

    def log(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.deliveries)

    def clear(self) -> None:
        with self._lock:
            self.deliveries.clear()

    def close(self) -> None:
        self._queue.put(None)
