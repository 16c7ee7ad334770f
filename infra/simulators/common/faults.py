"""Fault injection shared by the simulators: rules set through ``/__sim/faults`` make matching requests fail.

A rule (JSON)::

    {"path_regex": "/crm/.*/Products/upsert", "method": "POST",   # method optional
     "status": 500,                  # answer with this status and the system's error body for it
     "count": 2 | "rate": 0.3,       # first N matches, or each with probability; neither: until cleared
     "latency_ms": 800,              # delay before the request is handled
     "timeout": true, "timeout_s": 30,  # hold the response back this long (past the client's timeout)
     "malformed": true,              # truncate the JSON body
     "apply": true|false,            # does the request still reach the simulator (and change its state)?
     "body": {...}, "headers": {...}}   # override the error body / add headers (e.g. Retry-After)

``apply`` defaults to false for a ``status`` rule (the request is rejected before it does anything) and to
true for ``latency``/``timeout``/``malformed`` rules. ``status`` with ``apply: true`` is the nasty case a
connector must survive: the write happened but the client saw an error. Rules are checked in the order they
were added; the first that matches (and whose rate draw succeeds) applies.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from infra.simulators.common.requestlog import DEFAULT_SKIP_PREFIXES, notes

ErrorBody = Callable[[int], Any]
_RULE_KEYS = {
    "path_regex", "method", "status", "count", "rate", "latency_ms", "timeout", "timeout_s",
    "malformed", "apply", "body", "headers",
}  # fmt: skip


@dataclass
class FaultRule:
    id: str
    path_regex: str
    method: str | None = None
    status: int | None = None
    count: int | None = None
    rate: float | None = None
    latency_ms: int = 0
    timeout: bool = False
    timeout_s: float = 30.0
    malformed: bool = False
    apply: bool | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    hits: int = 0

    def __post_init__(self) -> None:
        self._pattern = re.compile(self.path_regex)

    @classmethod
    def from_json(cls, rule_id: str, raw: Any) -> FaultRule:
        """Validate a rule from the admin API; raises ``ValueError`` naming the offending key."""
        if not isinstance(raw, dict):
            raise ValueError("a fault rule must be a JSON object")
        unknown = set(raw) - _RULE_KEYS
        if unknown:
            raise ValueError(f"unknown fault rule keys: {sorted(unknown)}")
        if not isinstance(raw.get("path_regex"), str):
            raise ValueError("path_regex (string) is required")
        try:
            re.compile(raw["path_regex"])
        except re.error as exc:
            raise ValueError(f"path_regex does not compile: {exc}") from exc
        if raw.get("count") is not None and raw.get("rate") is not None:
            raise ValueError("give count or rate, not both")
        if raw.get("count") is not None and (not isinstance(raw["count"], int) or raw["count"] < 1):
            raise ValueError("count must be a positive integer")
        if raw.get("rate") is not None and not (
            isinstance(raw["rate"], int | float) and 0 < raw["rate"] <= 1
        ):
            raise ValueError("rate must be a number in (0, 1]")
        if raw.get("status") is not None and not (
            isinstance(raw["status"], int) and 100 <= raw["status"] <= 599
        ):
            raise ValueError("status must be an HTTP status code")
        if not any(raw.get(k) for k in ("status", "latency_ms", "timeout", "malformed")):
            raise ValueError("a rule needs at least one of status, latency_ms, timeout, malformed")
        method = raw.get("method")
        return cls(
            id=rule_id,
            path_regex=raw["path_regex"],
            method=method.upper() if isinstance(method, str) else None,
            status=raw.get("status"),
            count=raw.get("count"),
            rate=raw.get("rate"),
            latency_ms=int(raw.get("latency_ms") or 0),
            timeout=bool(raw.get("timeout")),
            timeout_s=float(raw.get("timeout_s") or 30.0),
            malformed=bool(raw.get("malformed")),
            apply=raw.get("apply"),
            body=raw.get("body"),
            headers={str(k): str(v) for k, v in (raw.get("headers") or {}).items()},
        )

    @property
    def reaches_app(self) -> bool:
        return self.apply if self.apply is not None else self.status is None

    def matches(self, method: str, path: str) -> bool:
        if self.count is not None and self.count <= 0:
            return False
        return (self.method is None or self.method == method) and bool(self._pattern.search(path))

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "path_regex": self.path_regex, "method": self.method, "status": self.status,
            "remaining": self.count, "rate": self.rate, "latency_ms": self.latency_ms,
            "timeout": self.timeout, "timeout_s": self.timeout_s, "malformed": self.malformed,
            "apply": self.reaches_app,
            "body": self.body, "headers": self.headers, "hits": self.hits,
        }  # fmt: skip


class FaultInjector:
    """The active fault rules; ``seed`` makes ``rate`` draws reproducible."""

    def __init__(self, seed: int | None = None) -> None:
        self._rules: list[FaultRule] = []
        self._ids = itertools.count(1)
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def add(self, raw: Any) -> FaultRule:
        rule = FaultRule.from_json(f"f{next(self._ids)}", raw)
        with self._lock:
            self._rules.append(rule)
        return rule

    def remove(self, rule_id: str) -> bool:
        with self._lock:
            before = len(self._rules)
            self._rules = [r for r in self._rules if r.id != rule_id]
            return len(self._rules) < before

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def pick(self, method: str, path: str) -> FaultRule | None:
        """The rule to apply to this request, consuming one ``count`` if it has one."""
        with self._lock:
            for rule in self._rules:
                if not rule.matches(method, path):
                    continue
                if rule.rate is not None and self._rng.random() >= rule.rate:
                    continue
                if rule.count is not None:
                    rule.count -= 1
                rule.hits += 1
                return rule
        return None


def _json_bytes(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class FaultMiddleware:
    """ASGI middleware applying :class:`FaultInjector` rules; ``error_body(status)`` is the system's error."""

    def __init__(
        self,
        app: ASGIApp,
        injector: FaultInjector,
        error_body: ErrorBody,
        skip_prefixes: tuple[str, ...] = DEFAULT_SKIP_PREFIXES,
    ) -> None:
        self.app = app
        self.injector = injector
        self.error_body = error_body
        self.skip_prefixes = skip_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.skip_prefixes):
            await self.app(scope, receive, send)
            return
        rule = self.injector.pick(scope["method"], scope["path"])
        if rule is None:
            await self.app(scope, receive, send)
            return
        notes(scope)["fault"] = rule.id
        if rule.latency_ms:
            await asyncio.sleep(rule.latency_ms / 1000)
        if rule.reaches_app and not (rule.status or rule.malformed or rule.timeout):
            await self.app(scope, receive, send)
            return

        status, headers, body = 200, [(b"content-type", b"application/json;charset=utf-8")], b""
        if rule.reaches_app:
            status, headers, body = await self._capture(scope, receive)
        if rule.status is not None:
            status = rule.status
            payload = rule.body if rule.body is not None else self.error_body(rule.status)
            headers = [(b"content-type", b"application/json;charset=utf-8")]
            body = _json_bytes(payload)
        headers = headers + [(k.lower().encode(), v.encode()) for k, v in rule.headers.items()]
        if rule.malformed:
            body = body[: max(1, len(body) // 2)] if body else b'{"data":[{"id":"'
            status = 200 if status == 204 else status
        if rule.timeout:
            await asyncio.sleep(rule.timeout_s)
        headers = [(k, v) for k, v in headers if k != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _capture(self, scope: Scope, receive: Receive) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        captured: dict[str, Any] = {"status": 500, "headers": [], "body": bytearray()}

        async def collect(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                captured["headers"] = list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                captured["body"].extend(message.get("body", b""))

        await self.app(scope, receive, collect)
        return captured["status"], captured["headers"], bytes(captured["body"])
