"""ZOHO watch notifications, where configured: sub-second CRM change capture without polling faster.

ZOHO calls ``notify_url`` with ids only (``{module, ids, operation, channel_id, token, …}``).  We do not trust or
fetch by those ids: a notification only wakes the poller, which reads the module from its cursor as usual — one
code path for what is read, deduplicated and acknowledged, whether the trigger was the clock or ZOHO.  The
operation decides what is read: inserts and updates the module's records (one call), deletions its deleted list.
A channel expires (we ask for a day) and is renewed before it does; notifications carrying another token are
ignored.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlparse

from connectors.zoho.client import ZohoClient

log = logging.getLogger(__name__)
CHANNEL_TTL = timedelta(days=1)
RENEW_BEFORE_S = 3600.0


class WatchListener:
    """Serves ``notify_url`` and keeps one watch channel for the polled modules alive."""

    def __init__(self, client: ZohoClient, notify_url: str, modules: list[str], wake: threading.Event,
                 dirty: dict[str, set[str]], listen: str = "", also: dict[str, list[str]] | None = None) -> None:
        self.client = client
        self.notify_url = notify_url
        self.modules = modules
        self.wake = wake
        self.dirty = dirty
        self.also = also or {}
        self.token = secrets.token_hex(16)
        self.channel_id = str(int(time.time() * 1000))
        self.expires_at = 0.0
        self.notifications = 0
        url = urlparse(notify_url)
        host, _, port = listen.rpartition(":") if listen else (url.hostname or "127.0.0.1", "", str(url.port or 80))
        self._server = ThreadingHTTPServer((host or "0.0.0.0", int(port)), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="zoho-watch")

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    body = {}
                listener.notified(body)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                return

        return Handler

    def notified(self, body: dict[str, Any]) -> None:
        if body.get("token") != self.token:
            log.warning("ignored a watch notification with an unknown token (channel %s)", body.get("channel_id"))
            return
        module = str(body.get("module") or "")
        self.notifications += 1
        if module in self.modules:
            self.dirty.setdefault(module, set()).add(str(body.get("operation") or "update"))
            for other in self.also.get(module, []):
                if other in self.modules:
                    self.dirty.setdefault(other, set()).add("update")
            self.wake.set()

    def subscribe(self) -> None:
        expiry = datetime.now(UTC) + CHANNEL_TTL
        self.client.request("POST", "actions/watch", json={"watch": [{
            "channel_id": self.channel_id, "events": [f"{m}.all" for m in self.modules],
            "channel_expiry": expiry.isoformat(timespec="seconds"), "token": self.token,
            "notify_url": self.notify_url,
        }]})
        self.expires_at = time.time() + CHANNEL_TTL.total_seconds()
        log.info("ZOHO watch channel %s for %s → %s", self.channel_id, self.modules, self.notify_url)

    def start(self) -> None:
        self._thread.start()
        try:
            self.subscribe()
        except BaseException:
            self.stop()
            raise

    def renew_if_needed(self) -> None:
        if time.time() > self.expires_at - RENEW_BEFORE_S:
            self.subscribe()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
