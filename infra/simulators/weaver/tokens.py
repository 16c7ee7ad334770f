"""App registration (``regist``), token minting (``applytoken``) and the check before every business call.

- ``regist`` needs an allowed ``appid`` and the client's RSA public key (``cpk``). It answers a ``secrit``
  and the server public key ``spk``. Registering again keeps the same ``secrit`` (so several workers of one
  app can register without locking each other out) and records the newest ``cpk``.
- ``applytoken`` needs ``secret = base64(RSA_PKCS1v1_5(secrit, spk))``; ``time`` (seconds) sets the lifetime,
  capped at ``max_ttl_s``. Tokens are stored hashed and survive restarts.
- Business calls need ``appid``, ``token`` and ``userid = base64(RSA(spk, <OA user id>))``; the user
  must exist.

Only the token check answers ``token不存在或者超时：<token>``; the other messages are [L]
(not seen in vendor docs).
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import rsa

from infra.simulators.common.sqlite import SqliteDb
from infra.simulators.weaver import rsa_auth
from infra.simulators.weaver.directory import OaUser
from infra.simulators.weaver.errors import AuthFailure, token_not_found

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS server_key (
        id INTEGER PRIMARY KEY CHECK (id = 1), private_pem TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS registrations (
        appid TEXT PRIMARY KEY, cpk TEXT NOT NULL, secrit TEXT NOT NULL, registered_ms INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS tokens (
        token_hash TEXT PRIMARY KEY, appid TEXT NOT NULL, issued_ms INTEGER NOT NULL,
        expires_ms INTEGER NOT NULL)""",
)


def now_ms() -> int:
    return int(time.time() * 1000)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Principal:
    appid: str
    user: OaUser
    token_fingerprint: str


class TokenAuthority:
    def __init__(
        self,
        db: SqliteDb,
        *,
        app_ids: tuple[str, ...],
        users: Mapping[int, OaUser],
        ttl_s: int,
        max_ttl_s: int,
    ) -> None:
        self.db = db
        self.app_ids = set(app_ids)
        self.users = users
        self.ttl_s = ttl_s
        self.max_ttl_s = max_ttl_s
        db.ensure_schema(SCHEMA)
        self._key = self._load_or_create_key()
        self.spk = rsa_auth.public_key_b64(self._key)

    def _load_or_create_key(self) -> rsa.RSAPrivateKey:
        row = self.db.query_one("SELECT private_pem FROM server_key WHERE id = 1")
        if row:
            return rsa_auth.load_private_key_pem(row["private_pem"])
        key = rsa_auth.new_private_key()
        self.db.execute("INSERT INTO server_key VALUES (1, ?)", (rsa_auth.private_key_pem(key),))
        return key

    def _check_appid(self, appid: str | None) -> str:
        if not appid:
            raise AuthFailure("appid不能为空")
        if appid not in self.app_ids:
            raise AuthFailure(f"appid不存在或未授权：{appid}")
        return appid

    def regist(self, appid: str | None, cpk: str | None) -> dict[str, object]:
        appid = self._check_appid(appid)
        if not cpk:
            raise AuthFailure("cpk不能为空")
        try:
            rsa_auth.load_public_key_b64(cpk)
        except rsa_auth.RsaError as exc:
            raise AuthFailure("cpk格式错误，请传入base64编码的RSA公钥") from exc
        with self.db.transaction() as conn:
            row = conn.execute("SELECT secrit FROM registrations WHERE appid = ?", (appid,)).fetchone()
            secrit = row["secrit"] if row else str(uuid.uuid4())
            conn.execute(
                "INSERT INTO registrations VALUES (?, ?, ?, ?)"
                " ON CONFLICT(appid) DO UPDATE SET cpk = excluded.cpk",
                (appid, cpk, secrit, now_ms()),
            )
        return {"msg": "ok", "code": 0, "msgShowType": "none", "status": True,
                "secrit": secrit, "spk": self.spk, "cpk": cpk}  # fmt: skip

    def apply_token(self, appid: str | None, secret: str | None, ttl_header: str | None) -> dict[str, object]:
        appid = self._check_appid(appid)
        row = self.db.query_one("SELECT secrit FROM registrations WHERE appid = ?", (appid,))
        if row is None:
            raise AuthFailure("应用未注册，请先调用regist接口")
        if not secret:
            raise AuthFailure("secret不能为空")
        try:
            plain = rsa_auth.decrypt_b64(self._key, secret)
        except rsa_auth.RsaError as exc:
            raise AuthFailure("secret解密失败，请使用spk加密secrit") from exc
        if not secrets.compare_digest(plain, row["secrit"]):
            raise AuthFailure("secret认证失败")
        ttl = self.ttl_s
        if ttl_header:
            try:
                ttl = max(1, min(int(ttl_header), self.max_ttl_s))
            except ValueError as exc:
                raise AuthFailure("time参数格式错误") from exc
        token = str(uuid.uuid4())
        now = now_ms()
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM tokens WHERE expires_ms < ?", (now - 86_400_000,))
            conn.execute(
                "INSERT INTO tokens VALUES (?, ?, ?, ?)", (token_hash(token), appid, now, now + ttl * 1000)
            )
        return {"code": 0, "status": True, "msg": "获取成功!", "token": token}

    def authenticate(self, appid: str | None, token: str | None, userid: str | None) -> Principal:
        row = self.db.query_one(
            "SELECT appid, expires_ms FROM tokens WHERE token_hash = ?", (token_hash(token or ""),)
        )
        if not token or row is None or row["expires_ms"] <= now_ms() or row["appid"] != appid:
            raise token_not_found(token or "")
        if not userid:
            raise AuthFailure("userid不能为空")
        try:
            plain = rsa_auth.decrypt_b64(self._key, userid)
        except rsa_auth.RsaError as exc:
            raise AuthFailure("userid解密失败，请使用spk加密") from exc
        user = self.users.get(int(plain)) if plain.strip().isdigit() else None
        if user is None:
            raise AuthFailure(f"用户不存在：{plain}")
        return Principal(row["appid"], user, token_hash(token)[:12])

    def expire_tokens(self) -> int:
        now = now_ms()
        return self.db.execute("UPDATE tokens SET expires_ms = ? WHERE expires_ms > ?", (now - 1, now))

    def forget_registrations(self) -> int:
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM tokens")
            return conn.execute("DELETE FROM registrations").rowcount

    def reset(self) -> None:
        """Forget tokens; registrations and the server key stay (like the app's row in ECOLOGY_BIZ_EC)."""
        self.db.execute("DELETE FROM tokens")
