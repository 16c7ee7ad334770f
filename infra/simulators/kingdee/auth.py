"""Who is calling: login services, sessions (SQLite, sliding expiry) and the SDK's signed headers.

- ``ValidateUser`` ``[acctId, user, password, lcid]``, ``LoginBySign`` ``[acctId, user, appId, timestamp, sign,
  lcid]`` and ``LoginByAppSecret`` ``[acctId, user, appId, appSecret, lcid]`` (or the same as named JSON keys) open a
  session: cookies ``kdservice-sessionid`` and ``ASP.NET_SessionId`` and ``KDSVCSessionId`` in the answer. A wrong
  login answers HTTP 200 with ``LoginResultType`` 0 and a Chinese ``Message``.
- A session expires after ``session_ttl_s`` without use (sliding, like an ASP.NET session); an unknown or expired
  one makes any business call answer ``MsgCode`` 1 会话信息已丢失，请重新登录. Sessions survive restarts.
- A request carrying the SDK's signature headers is checked on its own (no session needed); a bad signature, a
  foreign app, account or user, or a timestamp outside ``sign_window_s`` is refused the same way as a lost session
  (the real server's exact refusal text is unknown [L]).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import Headers

from infra.simulators.common.sqlite import SqliteDb
from infra.simulators.kingdee import signing
from infra.simulators.kingdee.config import KingdeeCredentials

SESSION_COOKIE = "kdservice-sessionid"
ASP_COOKIE = "ASP.NET_SessionId"
SIGNATURE_HEADERS = ("x-kd-signature", "x-api-signature")

AUTH_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS sessions (
        session_id TEXT PRIMARY KEY, acct_id TEXT NOT NULL, user_name TEXT NOT NULL, lcid INTEGER NOT NULL,
        via TEXT NOT NULL, created_ms INTEGER NOT NULL, last_seen_ms INTEGER NOT NULL)""",
)


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Caller:
    """An authenticated caller: by session or by a signed request."""

    acct_id: str
    user: str
    lcid: int
    via: str  # "session" or "signature"
    session_id: str | None = None


class LoginFailed(Exception):
    pass


class SignatureRejected(Exception):
    pass


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


class Authenticator:
    def __init__(
        self, db: SqliteDb, credentials: KingdeeCredentials, *, session_ttl_s: int, sign_window_s: int
    ) -> None:
        self.db = db
        self.credentials = credentials
        self.session_ttl_s = session_ttl_s
        self.sign_window_s = sign_window_s
        db.ensure_schema(AUTH_SCHEMA)

    # --- logins -----------------------------------------------------------------------------------------

    def _check_account(self, acct_id: str, user: str) -> None:
        c = self.credentials
        if acct_id != c.acct_id:
            raise LoginFailed(f"数据中心“{acct_id}”不存在")
        if user != c.user:
            raise LoginFailed("用户名或密码错误！")

    def validate_user(self, acct_id: str, user: str, password: str, lcid: int) -> Caller:
        self._check_account(acct_id, user)
        if not _same(password, self.credentials.password):
            raise LoginFailed("用户名或密码错误！")
        return self._open(acct_id, user, lcid, "password")

    def login_by_sign(self, acct_id: str, user: str, app_id: str, timestamp: str, sign: str, lcid: int) -> Caller:
        self._check_account(acct_id, user)
        c = self.credentials
        if app_id != c.app_id:
            raise LoginFailed(f"应用ID“{app_id}”无效，请检查第三方系统登录授权")
        self._check_timestamp(timestamp, LoginFailed)
        expected = signing.login_sign(acct_id, user, app_id, c.app_secret, timestamp)
        if not _same(sign.lower(), expected):
            raise LoginFailed("签名验证失败，请检查应用密钥")
        return self._open(acct_id, user, lcid, "sign")

    def login_by_app_secret(self, acct_id: str, user: str, app_id: str, app_secret: str, lcid: int) -> Caller:
        self._check_account(acct_id, user)
        if app_id != self.credentials.app_id or not _same(app_secret, self.credentials.app_secret):
            raise LoginFailed("应用ID或应用密钥错误，请检查第三方系统登录授权")
        return self._open(acct_id, user, lcid, "appsecret")

    def _check_timestamp(self, timestamp: str, error: type[Exception]) -> None:
        try:
            ts = int(str(timestamp).strip())
        except ValueError as exc:
            raise error("时间戳格式不正确") from exc
        if ts > 10**11:  # milliseconds
            ts //= 1000
        if abs(time.time() - ts) > self.sign_window_s:
            raise error("时间戳已过期，请检查服务器时间")

    def _open(self, acct_id: str, user: str, lcid: int, via: str) -> Caller:
        session_id = uuid.uuid4().hex[:24]
        stamp = now_ms()
        self.db.execute(
            "INSERT INTO sessions(session_id, acct_id, user_name, lcid, via, created_ms, last_seen_ms) "
            "VALUES(?, ?, ?, ?, ?, ?, ?)",
            (session_id, acct_id, user, lcid, via, stamp, stamp),
        )
        return Caller(acct_id, user, lcid, "session", session_id)

    # --- per request --------------------------------------------------------------------------------------

    @staticmethod
    def session_id_of(headers: Headers, cookies: dict[str, str]) -> str | None:
        return cookies.get(SESSION_COOKIE) or headers.get(SESSION_COOKIE) or None

    def by_session(self, session_id: str | None) -> Caller | None:
        if not session_id:
            return None
        stamp = now_ms()
        with self.db.transaction() as conn:
            row = conn.execute("SELECT * FROM sessions WHERE session_id = ?", (session_id,)).fetchone()
            if row is None:
                return None
            if stamp - row["last_seen_ms"] > self.session_ttl_s * 1000:
                conn.execute("DELETE FROM sessions WHERE session_id = ?", (session_id,))
                return None
            conn.execute("UPDATE sessions SET last_seen_ms = ? WHERE session_id = ?", (stamp, session_id))
        return Caller(row["acct_id"], row["user_name"], row["lcid"], "session", session_id)

    @staticmethod
    def is_signed(headers: Headers) -> bool:
        return any(h in headers for h in SIGNATURE_HEADERS)

    def by_signature(self, headers: Headers, path: str) -> Caller:
        """Check the SDK's headers; ``SignatureRejected`` says what is wrong."""
        c = self.credentials
        app_key = headers.get("x-kd-appkey", "")
        if app_key != c.app_id:
            raise SignatureRejected("X-Kd-Appkey 不是已授权的应用ID")
        if headers.get("x-api-clientid", "") != signing.client_id_of(c.app_id):
            raise SignatureRejected("X-Api-ClientID 与应用ID不符")
        nonce, timestamp = headers.get("x-api-nonce", ""), headers.get("x-api-timestamp", "")
        self._check_timestamp(timestamp, SignatureRejected)
        expected_api = signing.api_signature(path, nonce, timestamp, signing.client_secret_of(c.app_id))
        if not _same(headers.get("x-api-signature", ""), expected_api):
            raise SignatureRejected("X-Api-Signature 签名验证失败")
        try:
            app_data, identity = signing.decode_app_data(headers.get("x-kd-appdata", ""))
        except ValueError as exc:
            raise SignatureRejected(f"X-Kd-Appdata 格式不正确：{exc}") from exc
        if not _same(headers.get("x-kd-signature", ""), signing.app_signature(app_key, app_data, c.app_secret)):
            raise SignatureRejected("X-Kd-Signature 签名验证失败，请检查应用密钥")
        if identity.acct_id != c.acct_id or identity.user != c.user:
            raise SignatureRejected("X-Kd-Appdata 中的数据中心或用户无效")
        return Caller(identity.acct_id, identity.user, identity.lcid, "signature")

    # --- admin ---------------------------------------------------------------------------------------------

    def expire_sessions(self, session_id: str | None = None) -> int:
        if session_id:
            return self.db.execute("DELETE FROM sessions WHERE session_id = ?", (session_id,))
        return self.db.execute("DELETE FROM sessions")

    def sessions(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.query("SELECT * FROM sessions ORDER BY created_ms")]


def fingerprint(session_id: str | None) -> str | None:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()[:12] if session_id else None


def new_asp_session() -> str:
    return secrets.token_hex(12)
