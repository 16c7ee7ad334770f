"""Weaver simulator auth without a server: RSA helpers, regist/applytoken/token check, app ids, body parsing."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from connectors.weaver.client import _filename, classify_service_code
from core.errors import PermanentError, TransientError
from infra.simulators.common.forms import FormError, parse_body
from infra.simulators.common.sqlite import SqliteDb
from infra.simulators.weaver import rsa_auth
from infra.simulators.weaver.config import resolve_app_ids
from infra.simulators.weaver.directory import USERS
from infra.simulators.weaver.errors import AuthFailure
from infra.simulators.weaver.tokens import TokenAuthority

APP = "APP-UNIT"


@pytest.fixture(scope="module")
def client_key() -> object:
    return rsa_auth.new_private_key(1024)  # small: fast, and the server must accept any size


def _authority(db: SqliteDb, ttl_s: int = 1800) -> TokenAuthority:
    return TokenAuthority(db, app_ids=(APP,), users=USERS, ttl_s=ttl_s, max_ttl_s=3600)


def _token(authority: TokenAuthority, client_key: object, ttl: str | None = None) -> tuple[str, str]:
    answer = authority.regist(APP, rsa_auth.public_key_b64(client_key))  # type: ignore[arg-type]
    secret = rsa_auth.encrypt_b64(str(answer["spk"]), str(answer["secrit"]))
    token = authority.apply_token(APP, secret, ttl)
    assert token == {"code": 0, "status": True, "msg": "获取成功!", "token": token["token"]}
    return str(token["token"]), str(answer["spk"])


def test_rsa_round_trip_through_base64_keys() -> None:
    key = rsa_auth.new_private_key(1024)
    spk = rsa_auth.public_key_b64(key)
    assert rsa_auth.decrypt_b64(key, rsa_auth.encrypt_b64(spk, "系统管理员-1")) == "系统管理员-1"
    with pytest.raises(rsa_auth.RsaError):
        rsa_auth.decrypt_b64(key, "bm90IGEgY2lwaGVydGV4dA==")
    with pytest.raises(rsa_auth.RsaError):
        rsa_auth.load_public_key_b64("not-a-key")


def test_regist_is_stable_and_token_authenticates_a_user(client_key: object) -> None:
    authority = _authority(SqliteDb(None))
    token, spk = _token(authority, client_key)
    again = authority.regist(APP, rsa_auth.public_key_b64(client_key))  # type: ignore[arg-type]
    assert again["spk"] == spk

    principal = authority.authenticate(APP, token, rsa_auth.encrypt_b64(spk, "102"))
    assert (principal.user.name, principal.user.department) == ("王强", "市场部")


@pytest.mark.parametrize(
    ("appid", "token", "userid", "message"),
    [
        (APP, "nope", "102", "token不存在或者超时：nope"),
        ("OTHER", None, "102", "token不存在或者超时："),
        (APP, None, "999999", "用户不存在：999999"),
        (APP, None, None, "userid不能为空"),
    ],
)
def test_token_check_failures(
    client_key: object, appid: str, token: str | None, userid: str | None, message: str
) -> None:
    authority = _authority(SqliteDb(None))
    real_token, spk = _token(authority, client_key)
    used = token if token is not None else real_token
    if appid == "OTHER":
        message += used
    with pytest.raises(AuthFailure) as failure:
        authority.authenticate(appid, used, rsa_auth.encrypt_b64(spk, userid) if userid else None)
    assert failure.value.body() == {"msg": message, "code": -1, "status": False}


def test_token_expires_after_its_ttl_and_on_demand(client_key: object) -> None:
    authority = _authority(SqliteDb(None))
    token, spk = _token(authority, client_key, ttl="1")
    userid = rsa_auth.encrypt_b64(spk, "1")
    authority.authenticate(APP, token, userid)
    time.sleep(1.05)
    with pytest.raises(AuthFailure, match="token不存在或者超时"):
        authority.authenticate(APP, token, userid)

    token, _ = _token(authority, client_key)
    assert authority.expire_tokens() == 1
    with pytest.raises(AuthFailure, match="token不存在或者超时"):
        authority.authenticate(APP, token, userid)


def test_applytoken_refusals(client_key: object) -> None:
    authority = _authority(SqliteDb(None))
    with pytest.raises(AuthFailure, match="未注册"):
        authority.apply_token(APP, "x", None)
    _, spk = _token(authority, client_key)
    with pytest.raises(AuthFailure, match="认证失败"):
        authority.apply_token(APP, rsa_auth.encrypt_b64(spk, "wrong secrit"), None)
    with pytest.raises(AuthFailure, match="不存在或未授权"):
        authority.regist("UNKNOWN", rsa_auth.public_key_b64(client_key))  # type: ignore[arg-type]
    with pytest.raises(AuthFailure, match="cpk"):
        authority.regist(APP, "bm90LWEta2V5")


def test_server_key_and_tokens_persist_in_the_state_file(tmp_path: Path, client_key: object) -> None:
    first = _authority(SqliteDb(tmp_path / "weaver.sqlite3"))
    token, spk = _token(first, client_key)
    first.db.close()
    second = _authority(SqliteDb(tmp_path / "weaver.sqlite3"))
    assert second.spk == spk
    assert second.authenticate(APP, token, rsa_auth.encrypt_b64(spk, "1")).user.id == 1


def test_app_ids_flag_env_file_generated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEAVER_SIM_APP_IDS", raising=False)
    generated = resolve_app_ids(tmp_path / "secrets")
    assert resolve_app_ids(tmp_path / "secrets") == generated and len(generated[0]) == 36
    assert (tmp_path / "secrets" / "weaver_app_id").stat().st_mode & 0o077 == 0
    monkeypatch.setenv("WEAVER_SIM_APP_IDS", "A, B")
    assert resolve_app_ids(tmp_path / "secrets") == ("A", "B")
    assert resolve_app_ids(tmp_path / "secrets", ["C"]) == ("C",)


def test_multipart_with_a_chinese_file_name_and_forms() -> None:
    body = (
        b'--b1\r\nContent-Disposition: form-data; name="name"\r\n\r\n\xe5\x90\x88\xe5\x90\x8c.pdf\r\n'
        b'--b1\r\nContent-Disposition: form-data; name="file"; filename="\xe5\x90\x88\xe5\x90\x8c.pdf"\r\n'
        b"Content-Type: application/pdf\r\n\r\n%PDF-1.4\r\n\x00binary\r\n--b1--\r\n"
    )
    parsed = parse_body(body, "multipart/form-data; boundary=b1")
    assert parsed.fields == {"name": "合同.pdf"}
    assert (parsed.files[0].filename, parsed.files[0].data) == ("合同.pdf", b"%PDF-1.4\r\n\x00binary")
    rfc5987 = b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename*=UTF-8''%E5%90%88.png\r\n\r\nx\r\n--b--"
    assert parse_body(rfc5987, "multipart/form-data; boundary=b").files[0].filename == "合.png"
    assert parse_body(b"a=1&mainData=%5B%5D", "application/x-www-form-urlencoded").fields == {
        "a": "1",
        "mainData": "[]",
    }
    assert parse_body(b'{"a": 1}', None).json == {"a": 1}
    with pytest.raises(FormError):
        parse_body(b"{broken", "application/json")
    with pytest.raises(FormError):
        parse_body(b"--x\r\nno separator", "multipart/form-data; boundary=x")


def test_client_error_table_and_file_names() -> None:
    assert classify_service_code("SUCCESS") is None
    assert classify_service_code("PARAM_ERROR") is PermanentError
    assert classify_service_code("NO_PERMISSION") is PermanentError
    assert classify_service_code("SYSTEM_INNER_ERROR") is TransientError
    assert classify_service_code("SOMETHING_NEW") is TransientError
    assert _filename("attachment; filename=\"%E5%90%88.pdf\"; filename*=UTF-8''%E5%90%88%E5%90%8C.pdf") == "合同.pdf"
    assert _filename('attachment; filename="%E5%90%88.pdf"') == "合.pdf"
    assert _filename(None) is None
