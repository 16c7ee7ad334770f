"""OAuth2 client credentials the way Huilianyi's Spring Security OAuth2 server does it.

- ``POST /oauth/token`` with ``Authorization: Basic base64(appId:appSecret)`` and form (or query)
  ``grant_type=client_credentials&scope=write`` → ``{"access_token", "token_type": "bearer", "expires_in",
  "scope"}``. Bad or missing credentials: 401 ``{"error": "unauthorized", "error_description": "Bad
  credentials"}``.
- Like Spring's ``DefaultTokenServices`` [M], asking again while a token is still valid returns **the same
  token** with the remaining lifetime in ``expires_in``; a new token is minted only once the old one expired
  or was revoked. A client that refreshes "a minute early" gets its old token back and must use it until it
  really expires.
- ``Authorization: Bearer <token>`` on ``/api/``: missing → 401 ``unauthorized``; unknown or revoked → 401
  ``invalid_token`` "Invalid access token: <token>"; expired → 401 ``invalid_token`` "Access token expired:
  <token>".
- Tokens are UUIDs kept in SQLite (in clear: the simulator hands the same token out again), so they survive a
  restart.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from infra.simulators.common.sqlite import SqliteDb
from infra.simulators.huilianyi.config import HuilianyiCredentials
from infra.simulators.huilianyi.errors import OAuthError, bearer_error
from infra.simulators.huilianyi.timefmt import now_ms

ALLOWED_SCOPES = frozenset({"write", "read"})
DEFAULT_SCOPE = "write"
_BEARER = re.compile(r"^\s*Bearer\s+(\S+)\s*$", re.IGNORECASE)
_BASIC = re.compile(r"^\s*Basic\s+(\S+)\s*$", re.IGNORECASE)

AUTH_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS oauth_tokens (
        token TEXT PRIMARY KEY, app_id TEXT NOT NULL, scope TEXT NOT NULL,
        issued_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS oauth_tokens_by_app ON oauth_tokens (app_id, scope, expires_ms)",
)


@dataclass(frozen=True)
class Principal:
    app_id: str
    token: str


def bad_credentials() -> OAuthError:
    challenge = {"WWW-Authenticate": 'Basic realm="oauth2/client"'}
    return OAuthError(401, "unauthorized", "Bad credentials", challenge)


def basic_credentials(authorization: str | None) -> tuple[str, str]:
    """``(app_id, app_secret)`` from ``Authorization: Basic``; 401 ``Bad credentials`` if unreadable."""
    match = _BASIC.match(authorization or "")
    if not match:
        raise bad_credentials()
    try:
        decoded = base64.b64decode(match.group(1), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise bad_credentials() from None
    app_id, _, app_secret = decoded.partition(":")
    return app_id, app_secret


class TokenAuthority:
    def __init__(self, db: SqliteDb, credentials: HuilianyiCredentials, *, ttl_s: int) -> None:
        self.db = db
        self.credentials = credentials
        self.ttl_s = ttl_s
        db.ensure_schema(AUTH_SCHEMA)

    def _client(self, authorization: str | None) -> str:
        app_id, app_secret = basic_credentials(authorization)
        ok_id = secrets.compare_digest(app_id.encode(), self.credentials.app_id.encode())
        ok_secret = secrets.compare_digest(app_secret.encode(), self.credentials.app_secret.encode())
        if not (ok_id and ok_secret):
            raise bad_credentials()
        return app_id

    def mint(self, authorization: str | None, params: Mapping[str, str]) -> dict[str, Any]:
        app_id = self._client(authorization)
        grant = params.get("grant_type")
        if not grant:
            raise OAuthError(400, "invalid_request", "Missing grant type")
        if grant != "client_credentials":
            raise OAuthError(400, "unsupported_grant_type", f"Unsupported grant type: {grant}")
        scope = " ".join(sorted(set((params.get("scope") or DEFAULT_SCOPE).split())))
        unknown = set(scope.split()) - ALLOWED_SCOPES
        if unknown:
            raise OAuthError(400, "invalid_scope", f"Invalid scope: {' '.join(sorted(unknown))}")
        now = now_ms()
        with self.db.transaction() as conn:
            row = conn.execute(
                "SELECT token, expires_ms FROM oauth_tokens WHERE app_id = ? AND scope = ? AND expires_ms > ?"
                " ORDER BY expires_ms DESC LIMIT 1",
                (app_id, scope, now),
            ).fetchone()
            if row is not None:
                token, expires_ms = row["token"], row["expires_ms"]
            else:
                conn.execute("DELETE FROM oauth_tokens WHERE app_id = ? AND expires_ms <= ?", (app_id, now))
                token, expires_ms = str(uuid.uuid4()), now + self.ttl_s * 1000
                conn.execute("INSERT INTO oauth_tokens VALUES (?, ?, ?, ?, ?)", (token, app_id, scope, now, expires_ms))
        return {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": max(0, (expires_ms - now) // 1000),
            "scope": scope,
        }

    def authenticate(self, authorization: str | None) -> Principal:
        match = _BEARER.match(authorization or "")
        if not match:
            raise bearer_error(None)
        token = match.group(1)
        row = self.db.query_one("SELECT app_id, expires_ms FROM oauth_tokens WHERE token = ?", (token,))
        if row is None:
            raise bearer_error(token)
        if row["expires_ms"] <= now_ms():
            raise bearer_error(token, expired=True)
        return Principal(row["app_id"], token)

    def expire_tokens(self) -> int:
        """Token expiry on demand: every live token expires now (clients then see "Access token expired")."""
        now = now_ms()
        return self.db.execute("UPDATE oauth_tokens SET expires_ms = ? WHERE expires_ms > ?", (now - 1, now))

    def revoke_tokens(self) -> int:
        """Token loss on demand: the server forgets every token (clients then see "Invalid access token")."""
        return self.db.execute("DELETE FROM oauth_tokens")

    def reset(self) -> None:
        self.revoke_tokens()
