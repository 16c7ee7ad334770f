"""Kingdee signatures: LoginBySign's sign and the official SDK's signed headers, checked without services."""

from __future__ import annotations

import base64
import hashlib
import os
import time

import pytest
from starlette.datastructures import Headers

from infra.simulators.common.sqlite import SqliteDb
from infra.simulators.kingdee import signing
from infra.simulators.kingdee.auth import Authenticator, LoginFailed, SignatureRejected
from infra.simulators.kingdee.config import KingdeeCredentials

APP_ID = signing.make_app_id("224055", bytes(range(24)))
CREDS = KingdeeCredentials("acct01", "api", "pw", APP_ID, "s3cret")
PATH = "/K3Cloud/Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.Save.common.kdsvc"


def authenticator(**kw: int) -> Authenticator:
    return Authenticator(SqliteDb(None), CREDS, session_ttl_s=kw.get("ttl", 60), sign_window_s=900)


def test_login_sign_is_sha256_of_the_ordinally_sorted_fields() -> None:
    expected = hashlib.sha256("".join(sorted(["acct01", "api", APP_ID, "s3cret", "1700000000"])).encode()).hexdigest()
    assert signing.login_sign("acct01", "api", APP_ID, "s3cret", "1700000000") == expected
    assert sorted(["a", "B", "_"]) == ["B", "_", "a"], "ordinal: upper case before '_' before lower case"


def test_login_by_sign_checks_sign_app_and_timestamp() -> None:
    auth = authenticator()
    ts = str(int(time.time()))
    caller = auth.login_by_sign(
        "acct01", "api", APP_ID, ts, signing.login_sign("acct01", "api", APP_ID, "s3cret", ts), 2052
    )
    assert caller.session_id and auth.by_session(caller.session_id) is not None
    with pytest.raises(LoginFailed):
        auth.login_by_sign("acct01", "api", APP_ID, ts, "0" * 64, 2052)
    old = str(int(time.time()) - 3600)
    with pytest.raises(LoginFailed):
        auth.login_by_sign(
            "acct01", "api", APP_ID, old, signing.login_sign("acct01", "api", APP_ID, "s3cret", old), 2052
        )


def test_sessions_expire_when_idle() -> None:
    auth = authenticator(ttl=1)
    caller = auth.validate_user("acct01", "api", "pw", 2052)
    auth.db.execute("UPDATE sessions SET last_seen_ms = last_seen_ms - 5000")
    assert auth.by_session(caller.session_id) is None
    assert auth.by_session("unknown") is None


def test_the_app_id_carries_the_client_secret_like_the_sdk_expects() -> None:
    encode_util = pytest.importorskip("k3cloud_webapi_sdk.util.encode_util")
    for _ in range(20):
        app_id = signing.make_app_id("224055", os.urandom(24))
        assert encode_util.DecodeAppSecret(app_id.split("_")[1]) == signing.client_secret_of(app_id)
    assert signing.client_secret_of("no-underscore") == ""


def _sdk_headers(app_secret: str = "s3cret") -> Headers:
    webapi = pytest.importorskip("k3cloud_webapi_sdk.main")
    sdk = webapi.K3CloudApiSdk("http://127.0.0.1:1/K3Cloud/")
    sdk.InitConfig("acct01", "api", APP_ID, app_secret, "http://127.0.0.1:1/K3Cloud/")
    return Headers(sdk.BuildHeader("http://127.0.0.1:1" + PATH))


def test_headers_built_by_the_official_sdk_are_accepted() -> None:
    caller = authenticator().by_signature(_sdk_headers(), PATH)
    assert (caller.acct_id, caller.user, caller.lcid, caller.via) == ("acct01", "api", 2052, "signature")


@pytest.mark.parametrize(
    "tamper",
    [
        {"x-kd-signature": base64.b64encode(b"0" * 64).decode()},
        {"x-api-signature": base64.b64encode(b"0" * 64).decode()},
        {"x-kd-appdata": base64.b64encode(b"acct01,someone,2052,0").decode()},
        {"x-api-timestamp": "1000000000", "x-api-nonce": "1000000000"},
        {"x-kd-appkey": "999_" + APP_ID.split("_")[1]},
    ],
)
def test_tampered_headers_are_rejected(tamper: dict[str, str]) -> None:
    headers = {**dict(_sdk_headers()), **tamper}
    with pytest.raises(SignatureRejected):
        authenticator().by_signature(Headers(headers), PATH)


def test_a_wrong_app_secret_in_the_sdk_is_rejected() -> None:
    with pytest.raises(SignatureRejected):
        authenticator().by_signature(_sdk_headers("wrong"), PATH)


def test_signature_binds_the_path() -> None:
    with pytest.raises(SignatureRejected):
        authenticator().by_signature(_sdk_headers(), PATH.replace("Save", "Delete"))
