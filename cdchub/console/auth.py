"""Sign-in for the web console: a password hash, signed session cookies, CSRF tokens, a brake on guessing.

- The password is kept only as a salted scrypt hash; a candidate is hashed the same way and compared with
  ``hmac.compare_digest`` (constant time).
- A session cookie is ``<payload>.<HMAC-SHA256 of it>`` with a random key made at start: a tampered or foreign
  cookie fails the signature.  Sessions also live in the server's memory, so signing out (or a restart) ends them
  even if someone kept a copy of the cookie.
- The CSRF token of a session is an HMAC of its id under the same key: each form that changes something carries it,
  and a POST without the session's token is refused.
- Failed sign-ins are counted per client; after ``FAILURES_ALLOWED`` within ``FAILURE_WINDOW_S`` that client is
  refused until the window has passed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections import deque
from dataclasses import dataclass, field

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
FAILURES_ALLOWED = 5
FAILURE_WINDOW_S = 300.0


@dataclass(frozen=True)
class PasswordHash:
    salt: bytes
    digest: bytes

    @classmethod
    def of(cls, password: str) -> PasswordHash:
        salt = secrets.token_bytes(16)
        return cls(salt, _scrypt(password, salt))

    def verify(self, candidate: str) -> bool:
        return hmac.compare_digest(self.digest, _scrypt(candidate, self.salt))


def _scrypt(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Sessions:
    """Signed session cookies, the sessions that are open, and each session's CSRF token."""

    ttl_s: int
    key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    open_sessions: dict[str, float] = field(default_factory=dict)  # session id -> expiry (epoch s)

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self.key, payload.encode("ascii"), hashlib.sha256).digest())

    def start(self, user: str) -> str:
        """A new session for ``user``; returns the cookie value."""
        sid = secrets.token_urlsafe(24)
        expires = time.time() + self.ttl_s
        self.open_sessions[sid] = expires
        payload = _b64(json.dumps({"sid": sid, "user": user, "exp": int(expires)}).encode("utf-8"))
        return f"{payload}.{self._sign(payload)}"

    def session_id(self, cookie: str | None) -> str | None:
        """The session id of a valid cookie (signed by us, not expired, not signed out), else None."""
        if not cookie or cookie.count(".") != 1:
            return None
        payload, signature = cookie.split(".")
        if not hmac.compare_digest(signature, self._sign(payload)):
            return None
        try:
            body = json.loads(_unb64(payload))
            sid, expires = str(body["sid"]), float(body["exp"])
        except (ValueError, KeyError, TypeError):
            return None
        now = time.time()
        if expires < now or self.open_sessions.get(sid, 0) < now:
            self.open_sessions.pop(sid, None)
            return None
        return sid

    def end(self, sid: str) -> None:
        self.open_sessions.pop(sid, None)

    def csrf_token(self, sid: str) -> str:
        return _b64(hmac.new(self.key, f"csrf:{sid}".encode("ascii"), hashlib.sha256).digest())

    def csrf_ok(self, sid: str, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(str(token), self.csrf_token(sid))


@dataclass
class LoginBrake:
    """Counts failed sign-ins per client and says when a client has to wait."""

    allowed: int = FAILURES_ALLOWED
    window_s: float = FAILURE_WINDOW_S
    failures: dict[str, deque[float]] = field(default_factory=dict)

    def _recent(self, client: str, now: float) -> deque[float]:
        times = self.failures.setdefault(client, deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times

    def blocked_for(self, client: str, now: float | None = None) -> float:
        """Seconds the client must wait before trying again (0: it may try)."""
        now = time.monotonic() if now is None else now
        times = self._recent(client, now)
        return max(0.0, times[0] + self.window_s - now) if len(times) >= self.allowed else 0.0

    def failed(self, client: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._recent(client, now).append(now)

    def succeeded(self, client: str) -> None:
        self.failures.pop(client, None)
