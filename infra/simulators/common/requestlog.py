"""The request log every simulator keeps, so tests can prove what a connector actually sent.

Each entry holds method, path, query (secrets redacted), status, duration and whatever the simulator noted
about the request through :func:`notes` — e.g. ``records`` (records in a write), ``returned`` (rows in a
read), ``token`` (a fingerprint of the access token used), ``client_id``, ``fault`` (id of an injected fault).
Kept in memory, bounded.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections import deque
from typing import Any, cast
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

REDACTED_PARAMS = frozenset({"client_secret", "refresh_token", "code", "password", "access_token", "token"})
DEFAULT_SKIP_PREFIXES = ("/__sim", "/healthz")


def notes(scope: Scope) -> dict[str, Any]:
    """The per-request notes dict that ends up in the request log entry."""
    return cast("dict[str, Any]", scope.setdefault("sim_notes", {}))


def token_fingerprint(token: str) -> str:
    """How tokens appear in the log: the first 12 hex digits of their SHA-256 (tests compute the same)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()[:12]


def _redacted_query(raw: bytes) -> dict[str, str]:
    pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
    return {k: ("***" if k in REDACTED_PARAMS else v) for k, v in pairs}


class RequestLog:
    """A bounded, thread-safe list of request entries with a monotonically increasing ``seq``."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=max_entries)
        self._seq = 0
        self._lock = threading.Lock()

    def append(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._seq += 1
            self._entries.append({"seq": self._seq, **entry})

    def entries(
        self,
        *,
        since_seq: int = 0,
        path_regex: str | None = None,
        method: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        pattern = re.compile(path_regex) if path_regex else None
        with self._lock:
            selected = [
                e
                for e in self._entries
                if e["seq"] > since_seq
                and (pattern is None or pattern.search(e["path"]))
                and (method is None or e["method"] == method.upper())
            ]
        return selected[-limit:] if limit else selected

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class RequestLogMiddleware:
    """ASGI middleware recording every request outside ``skip_prefixes`` (admin and health routes)."""

    def __init__(
        self, app: ASGIApp, log: RequestLog, skip_prefixes: tuple[str, ...] = DEFAULT_SKIP_PREFIXES
    ) -> None:
        self.app = app
        self.log = log
        self.skip_prefixes = skip_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.skip_prefixes):
            await self.app(scope, receive, send)
            return
        started = time.time()
        status: list[int] = []
        request_notes = notes(scope)

        async def send_recording(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_recording)
        finally:
            self.log.append(
                {
                    "time_ms": int(started * 1000),
                    "method": scope["method"],
                    "path": scope["path"],
                    "query": _redacted_query(scope.get("query_string", b"")),
                    "status": status[0] if status else 500,
                    "duration_ms": round((time.time() - started) * 1000, 1),
                    "records": None,
                    "token": None,
                    **request_notes,
                }
            )
