"""OAuth as the ZOHO accounts server does it: refresh-token grant, access tokens, one CRM user per client.

- ``refresh`` answers ``POST /oauth/v2/token``. Like the real server, wrong credentials come back as HTTP
  **200** with ``{"error": "invalid_client"}`` (bad client id/secret) or ``{"error": "invalid_code"}`` (bad
  refresh token); only the mint limit (``tokens_per_window`` per ``window_s`` per refresh token, 10 per 10 min
  by default) is an HTTP 400 ``{"error": "Access Denied", ...}``. Expiring a token does not give its mint
  back.
- ``authenticate`` checks ``Authorization: Zoho-oauthtoken <token>``; anything else is 401 ``INVALID_TOKEN``.
- Each client's grant has scopes (``scopes.py``; all of them when none are given); a token carries the scopes of
  the grant it was minted from, shown space-separated in ``scope`` of the token answer.
- Only SHA-256 hashes of access tokens are stored; tokens survive a simulator restart, as they would a server
  blip.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from infra.simulators.common.sqlite import SqliteDb
from infra.simulators.zoho.config import ZohoCredentials
from infra.simulators.zoho.errors import invalid_token
from infra.simulators.zoho.scopes import FULL_ACCESS
from infra.simulators.zoho.timefmt import now_ms

USER_ID_BASE = 4_876_876_000_000_100_000
TOO_MANY_REFRESHES = {
    "error": "Access Denied",
    "error_description": "You have made too many requests continuously. Please try again after some time.",
}
_AUTH_HEADER = re.compile(r"^\s*Zoho-oauthtoken\s+(\S+)\s*$", re.IGNORECASE)

AUTH_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS oauth_clients (
        client_id TEXT PRIMARY KEY, client_secret TEXT NOT NULL, refresh_token TEXT NOT NULL,
        user_id TEXT NOT NULL, user_name TEXT NOT NULL, user_email TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS oauth_tokens (
        token_hash TEXT PRIMARY KEY, client_id TEXT NOT NULL, refresh_hash TEXT NOT NULL,
        issued_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS oauth_tokens_by_refresh ON oauth_tokens (refresh_hash, issued_ms)",
)
#: Columns added after the first release, for state files made before (table, column, declaration).
AUTH_COLUMNS = (("oauth_clients", "scopes", "TEXT"), ("oauth_tokens", "scopes", "TEXT"))


@dataclass(frozen=True)
class ApiUser:
    id: str
    name: str
    email: str

    def ref(self) -> dict[str, str]:
        return {"name": self.name, "id": self.id}

    def owner(self) -> dict[str, str]:
        return {"name": self.name, "id": self.id, "email": self.email}


HUMAN_USER = ApiUser("4876876000000099001", "Sales Rep", "sales.rep@cdchub.local")


@dataclass(frozen=True)
class Principal:
    """Who made an API call: the OAuth client, its CRM user, and the log fingerprint of the token used."""

    client_id: str
    user: ApiUser
    token_fingerprint: str
    scopes: tuple[str, ...] = FULL_ACCESS


@dataclass(frozen=True)
class TokenAnswer:
    status: int
    body: dict[str, Any]


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class TokenAuthority:
    def __init__(self, db: SqliteDb, *, ttl_s: int, tokens_per_window: int, window_s: int) -> None:
        self.db = db
        self.ttl_s = ttl_s
        self.tokens_per_window = tokens_per_window
        self.window_s = window_s
        db.ensure_schema(AUTH_SCHEMA)
        for table, column, declaration in AUTH_COLUMNS:
            if column not in {r["name"] for r in db.query(f"PRAGMA table_info({table})")}:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")

    def register_client(
        self, credentials: ZohoCredentials, user_name: str, scopes: Sequence[str] = FULL_ACCESS,
        *, user_id: str | None = None, user_email: str | None = None,
    ) -> ApiUser:
        """Accept these credentials with the scopes of their grant; the client's CRM user (``user_id``/
        ``user_email`` when given: a person's own app) is created once and kept across restarts."""
        row = self.db.query_one(
            "SELECT user_id, user_name, user_email FROM oauth_clients WHERE client_id = ?",
            (credentials.client_id,),
        )
        if user_id and user_email:
            user = ApiUser(str(user_id), user_name, str(user_email))
        elif row:
            user = ApiUser(row["user_id"], user_name, row["user_email"])
        else:
            user_id = str(USER_ID_BASE + self.db.next_sequence("user_id"))
            user = ApiUser(user_id, user_name, f"integration+{user_id[-4:]}@cdchub.local")
        self.db.execute(
            "INSERT OR REPLACE INTO oauth_clients (client_id, client_secret, refresh_token, user_id, user_name,"
            " user_email, scopes) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                credentials.client_id, credentials.client_secret, credentials.refresh_token,
                user.id, user.name, user.email, " ".join(scopes or FULL_ACCESS),
            ),
        )  # fmt: skip
        return user

    def refresh(self, params: Mapping[str, str], api_domain: str) -> TokenAnswer:
        if params.get("grant_type") != "refresh_token":
            return TokenAnswer(200, {"error": "unsupported_grant_type"})
        client = self.db.query_one("SELECT * FROM oauth_clients WHERE client_id = ?", (params.get("client_id") or "",))
        if client is None or not secrets.compare_digest(client["client_secret"], params.get("client_secret") or ""):
            return TokenAnswer(200, {"error": "invalid_client"})
        if not secrets.compare_digest(client["refresh_token"], params.get("refresh_token") or ""):
            return TokenAnswer(200, {"error": "invalid_code"})
        now = now_ms()
        refresh_hash = _sha256(client["refresh_token"])
        with self.db.transaction() as conn:
            conn.execute(
                "DELETE FROM oauth_tokens WHERE expires_ms < ? AND issued_ms < ?",
                (now, now - self.window_s * 1000),
            )
            recent = conn.execute(
                "SELECT COUNT(*) FROM oauth_tokens WHERE refresh_hash = ? AND issued_ms > ?",
                (refresh_hash, now - self.window_s * 1000),
            ).fetchone()[0]
            if recent >= self.tokens_per_window:
                return TokenAnswer(400, dict(TOO_MANY_REFRESHES))
            token = f"1000.{secrets.token_hex(16)}.{secrets.token_hex(16)}"
            scope = client["scopes"] or " ".join(FULL_ACCESS)
            conn.execute(
                "INSERT INTO oauth_tokens (token_hash, client_id, refresh_hash, issued_ms, expires_ms, scopes)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (_sha256(token), client["client_id"], refresh_hash, now, now + self.ttl_s * 1000, scope),
            )
        return TokenAnswer(
            200,
            {
                "access_token": token,
                "scope": scope,
                "api_domain": api_domain,
                "token_type": "Bearer",
                "expires_in": self.ttl_s,
            },
        )

    def authenticate(self, authorization: str | None) -> Principal:
        match = _AUTH_HEADER.match(authorization or "")
        if not match:
            raise invalid_token()
        token_hash = _sha256(match.group(1))
        row = self.db.query_one(
            "SELECT t.expires_ms, COALESCE(t.scopes, c.scopes) AS scopes, c.client_id, c.user_id, c.user_name,"
            " c.user_email FROM oauth_tokens t"
            " JOIN oauth_clients c ON c.client_id = t.client_id WHERE t.token_hash = ?",
            (token_hash,),
        )
        if row is None or row["expires_ms"] <= now_ms():
            raise invalid_token()
        user = ApiUser(row["user_id"], row["user_name"], row["user_email"])
        scopes = tuple(row["scopes"].split()) if row["scopes"] else FULL_ACCESS
        return Principal(row["client_id"], user, token_hash[:12], scopes)

    def users(self) -> list[ApiUser]:
        """The CRM users behind the registered OAuth clients, oldest first."""
        rows = self.db.query("SELECT DISTINCT user_id, user_name, user_email FROM oauth_clients ORDER BY user_id")
        return [ApiUser(r["user_id"], r["user_name"], r["user_email"]) for r in rows]

    def expire_tokens(self, client_id: str | None = None) -> int:
        """Make live access tokens (of one client, or all) expire now; the mint history stays."""
        now = now_ms()
        if client_id:
            return self.db.execute(
                "UPDATE oauth_tokens SET expires_ms = ? WHERE expires_ms > ? AND client_id = ?",
                (now - 1, now, client_id),
            )
        return self.db.execute("UPDATE oauth_tokens SET expires_ms = ? WHERE expires_ms > ?", (now - 1, now))

    def reset(self, keep_client_ids: set[str]) -> None:
        """Forget every token and mint, and every client not in ``keep_client_ids``."""
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM oauth_tokens")
            marks = ",".join("?" for _ in keep_client_ids) or "''"
            conn.execute(f"DELETE FROM oauth_clients WHERE client_id NOT IN ({marks})", tuple(keep_client_ids))
