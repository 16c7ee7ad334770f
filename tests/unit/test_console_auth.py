"""The web console's sign-in parts: password hash, signed session cookies, CSRF tokens, the brake on guessing, the
generated password file, and the app's refusals (no stack needed: the data behind the pages is not reached)."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from starlette.testclient import TestClient

from cdchub.console.app import COOKIE, create_app
from cdchub.console.auth import LoginBrake, PasswordHash, Sessions
from cdchub.console.credentials import console_password
from connectors.settings import Settings
from core.settings import ConsoleSettings


def test_a_password_verifies_and_others_do_not() -> None:
    stored = PasswordHash.of("麻醉面罩-secret")
    assert stored.verify("麻醉面罩-secret")
    assert not stored.verify("麻醉面罩-Secret")
    assert not stored.verify("")
    assert PasswordHash.of("same").salt != PasswordHash.of("same").salt, "salted: equal passwords, different hashes"
    assert b"same" not in PasswordHash.of("same").digest


def test_a_signed_cookie_opens_its_session_and_a_tampered_one_does_not() -> None:
    sessions = Sessions(ttl_s=60)
    cookie = sessions.start("cdchub")
    sid = sessions.session_id(cookie)
    assert sid is not None

    payload, signature = cookie.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged = base64.urlsafe_b64encode(json.dumps({**body, "exp": body["exp"] + 3600}).encode()).rstrip(b"=").decode()
    assert sessions.session_id(f"{forged}.{signature}") is None, "payload changed, signature kept"
    assert sessions.session_id(f"{payload}.{signature[:-2]}xx") is None
    assert sessions.session_id(Sessions(ttl_s=60).start("cdchub")) is None, "signed with another key"
    assert sessions.session_id("garbage") is None and sessions.session_id(None) is None

    sessions.end(sid)
    assert sessions.session_id(cookie) is None, "signed out: the same cookie no longer works"


def test_an_expired_session_is_refused() -> None:
    sessions = Sessions(ttl_s=-1)
    assert sessions.session_id(sessions.start("cdchub")) is None


def test_the_csrf_token_belongs_to_its_session() -> None:
    sessions = Sessions(ttl_s=60)
    one = sessions.session_id(sessions.start("cdchub"))
    two = sessions.session_id(sessions.start("cdchub"))
    assert one and two
    assert sessions.csrf_ok(one, sessions.csrf_token(one))
    assert not sessions.csrf_ok(one, sessions.csrf_token(two))
    assert not sessions.csrf_ok(one, None) and not sessions.csrf_ok(one, "")


def test_failed_sign_ins_brake_a_client_for_the_window() -> None:
    brake = LoginBrake(allowed=3, window_s=60)
    for t in (0.0, 1.0):
        brake.failed("10.0.0.1", now=t)
    assert brake.blocked_for("10.0.0.1", now=2.0) == 0
    brake.failed("10.0.0.1", now=2.0)
    assert brake.blocked_for("10.0.0.1", now=3.0) == 57.0
    assert brake.blocked_for("10.0.0.2", now=3.0) == 0, "per client"
    assert brake.blocked_for("10.0.0.1", now=60.5) == 0, "the first failure has left the window"
    brake.succeeded("10.0.0.1")
    assert brake.failures.get("10.0.0.1") is None


def test_the_password_is_generated_once_into_a_private_file(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    password, path = console_password(ConsoleSettings(password=SecretStr("")), secrets)
    assert path == secrets / "console_password" and len(password) >= 20
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == password
    again, generated = console_password(ConsoleSettings(password=SecretStr("")), secrets)
    assert (again, generated) == (password, None), "kept, not regenerated"
    assert console_password(ConsoleSettings(password=SecretStr("from-env")), secrets) == ("from-env", None)


class NoData:
    """Stands in for the console's data: these tests must never reach it."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"reached the data ({name}) without signing in")


def _client() -> TestClient:
    settings = Settings(console=ConsoleSettings(password=SecretStr("right")))
    app = create_app(settings, "right", NoData())  # type: ignore[arg-type]
    return TestClient(app, base_url="http://127.0.0.1", follow_redirects=False)


def test_the_app_refuses_everything_but_the_sign_in_page_without_a_session() -> None:
    client = _client()
    for path in ("/", "/trace?term=1.30.0001", "/dead-letters", "/flows"):
        resp = client.get(path)
        assert resp.status_code in (303, 307) and resp.headers["location"].startswith("/login"), path
    for path in ("/api/trace?term=x", "/api/dead-letters", "/api/flows"):
        assert client.get(path).status_code == 401, path
    assert client.post("/dead-letters/replay", data={"flow": "materials"}).status_code == 401
    assert client.get("/login").status_code == 200
    assert client.get("/console.css").headers["content-type"].startswith("text/css")


def test_signing_in_sets_a_strict_http_only_cookie_and_posts_need_the_csrf_token() -> None:
    client = _client()
    wrong = client.post("/login", data={"user": "cdchub", "password": "wrong"})
    assert wrong.status_code == 401 and COOKIE not in wrong.cookies
    assert "Wrong user or password" in wrong.text
    assert client.post("/login", data={"user": "someone", "password": "right"}).status_code == 401

    ok = client.post("/login", data={"user": "cdchub", "password": "right", "next": "//evil.example/"})
    assert ok.status_code == 303 and ok.headers["location"] == "/trace", "no redirect off the site"
    cookie = ok.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert "right" not in ok.headers["set-cookie"]

    assert client.post("/dead-letters/replay", data={"flow": "materials"}).status_code == 403
    assert client.post("/dead-letters/replay", data={"flow": "materials", "csrf": "forged"}).status_code == 403
    assert client.post("/logout", data={}).status_code == 403
    assert client.get("/trace").status_code == 200, "still signed in after the refused posts"
