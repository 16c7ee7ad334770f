"""The web console (``cdchub console``): a Starlette app with sign-in, document traces (with a picture of the
path), dead letters with replay (a whole flow's only after a dry-run preview is confirmed), and flow health (every
flow, sparklines of the last hour, refreshing itself).

Every route except the sign-in page and the stylesheet needs a session: pages redirect to the sign-in page, the JSON
API (``/api/…``) answers 401.  Every POST that changes something needs the session's CSRF token.  Blocking work
(Kafka, the ledger) runs in worker threads.  Nothing secret is rendered: the pages show business data, flow figures
and where the installation's data lives, never a password, token or key.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import parse_qs, quote

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from cdchub.console import pages
from cdchub.console.auth import LoginBrake, PasswordHash, Sessions
from cdchub.console.credentials import console_password
from cdchub.console.views import ConsoleData
from connectors.settings import Settings
from core.ledger import open_engine

log = logging.getLogger("cdchub.console")

COOKIE = "cdchub_console"
STYLESHEET = Path(__file__).with_name("static") / "console.css"
PUBLIC_PATHS = {"/login", "/console.css"}
MAX_FORM_BYTES = 16 * 1024
FAILED_LOGIN_DELAY_S = 0.5
#: How often the console keeps the flows' lag for the sparklines (s).
SAMPLE_EVERY_S = 60.0
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; "
                               "base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class SignInRequired(BaseHTTPMiddleware):
    """Lets a request through only with a valid session (``request.state.sid``); adds the security headers."""

    def __init__(self, app: object, sessions: Sessions) -> None:
        super().__init__(app)  # type: ignore[arg-type]
        self.sessions = sessions

    async def dispatch(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response: Response
        sid = self.sessions.session_id(request.cookies.get(COOKIE))
        request.state.sid = sid
        if sid is None and request.url.path not in PUBLIC_PATHS:
            if request.url.path.startswith("/api/"):
                response = JSONResponse({"error": "sign in first"}, status_code=401)
            elif request.method in ("GET", "HEAD"):
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                response = RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
            else:
                response = HTMLResponse(pages.refused_page("Sign in first."), status_code=401)
        else:
            response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response


async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return {}
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}


def _safe_next(target: str | None) -> str:
    """Only a path on this site (no ``//host`` or ``/\\host``), so sign-in cannot redirect elsewhere."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/trace"
    return target


class Console:
    """The routes, with the console's sign-in state and data."""

    def __init__(self, settings: Settings, data: ConsoleData, password: str) -> None:
        self.user = settings.console.user
        self.password = PasswordHash.of(password)
        self.sessions = Sessions(settings.console.session_ttl_s)
        self.brake = LoginBrake()
        self.data = data
        self.topic_prefix = settings.kafka.topic_prefix

    def _csrf(self, request: Request) -> str:
        return self.sessions.csrf_token(request.state.sid)

    async def _checked_form(self, request: Request) -> dict[str, str] | None:
        """The posted form if it carries this session's CSRF token, else None."""
        form = await _form(request)
        return form if self.sessions.csrf_ok(request.state.sid, form.get("csrf")) else None

    async def login_page(self, request: Request) -> Response:
        if request.state.sid:
            return RedirectResponse(_safe_next(request.query_params.get("next")), status_code=303)
        return HTMLResponse(pages.login_page(next_path=_safe_next(request.query_params.get("next"))))

    async def login(self, request: Request) -> Response:
        client = request.client.host if request.client else "?"
        form = await _form(request)
        next_path = _safe_next(form.get("next"))
        wait = self.brake.blocked_for(client)
        if wait:
            return HTMLResponse(pages.login_page(f"Too many failed sign-ins; try again in {wait:.0f} s.", next_path),
                                status_code=429)
        user_ok = hmac.compare_digest(self.user.encode("utf-8"), form.get("user", "").encode("utf-8"))
        password_ok = await run_in_threadpool(self.password.verify, form.get("password", ""))
        if not (user_ok and password_ok):
            self.brake.failed(client)
            await asyncio.sleep(FAILED_LOGIN_DELAY_S)
            return HTMLResponse(pages.login_page("Wrong user or password.", next_path), status_code=401)
        self.brake.succeeded(client)
        response = RedirectResponse(next_path, status_code=303)
        response.set_cookie(COOKIE, self.sessions.start(self.user), max_age=self.sessions.ttl_s, httponly=True,
                            samesite="strict", path="/")
        return response

    async def logout(self, request: Request) -> Response:
        if await self._checked_form(request) is None:
            return HTMLResponse(pages.refused_page("The form is stale or forged (CSRF token missing)."), 403)
        self.sessions.end(request.state.sid)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response

    async def home(self, request: Request) -> Response:
        return RedirectResponse("/trace", status_code=303)

    async def stylesheet(self, request: Request) -> Response:
        return FileResponse(STYLESHEET, media_type="text/css; charset=utf-8")

    async def trace_page(self, request: Request) -> Response:
        term = request.query_params.get("term", "").strip()
        if not term:
            return HTMLResponse(pages.trace_page("", None, self._csrf(request), self.topic_prefix))
        try:
            found = await run_in_threadpool(self.data.trace, term)
        except Exception as exc:  # broker or registry away: say so on the page
            log.warning("trace of %r failed: %s", term, exc)
            return HTMLResponse(pages.refused_page(f"The trace failed: {type(exc).__name__}"), status_code=503)
        return HTMLResponse(pages.trace_page(term, found, self._csrf(request), self.topic_prefix))

    async def dead_letters_page(self, request: Request) -> Response:
        flow = request.query_params.get("flow", "").strip()
        reason = request.query_params.get("reason", "").strip()
        rows = await run_in_threadpool(self.data.dead_letters, flow, reason)
        note = request.query_params.get("note", "")
        return HTMLResponse(pages.dead_letters_page(rows, flow, reason, note, self._csrf(request)))

    async def replay(self, request: Request) -> Response:
        form = await self._checked_form(request)
        if form is None:
            return HTMLResponse(pages.refused_page("The form is stale or forged (CSRF token missing)."), 403)
        if form.get("flow"):
            if form.get("confirm") != "yes":  # a whole flow is replayed only after its preview was confirmed
                return RedirectResponse(pages.preview_location(form["flow"]), status_code=303)
            offsets = [int(o) for o in form.get("offsets", "").split(",") if o.strip().isdigit()]
            if not offsets:
                return HTMLResponse(pages.refused_page("Nothing was previewed to replay."), 400)
            results = await run_in_threadpool(self.data.replay_flow, form["flow"], offsets)
        elif form.get("topic") and form.get("offset", "").isdigit():
            results = await run_in_threadpool(self.data.replay_letter, form["topic"], int(form["offset"]))
        else:
            return HTMLResponse(pages.refused_page("Name a letter or a flow to replay."), 400)
        note = "; ".join(f"{x.flow} offset {x.dlq_offset} key={x.source.get('key')}: {outcome}"
                         for x, outcome in results) or "nothing to replay"
        log.info("replay from the console: %s", note)
        return RedirectResponse(pages.dead_letters_location(form.get("flow", ""), "", note), status_code=303)

    async def replay_preview(self, request: Request) -> Response:
        """What "Replay all of <flow>" would write; nothing is written until its form is confirmed (a POST)."""
        flow = request.query_params.get("flow", "").strip()
        if not flow:
            return HTMLResponse(pages.refused_page("Name a flow to replay."), 400)
        preview = await run_in_threadpool(self.data.preview_flow, flow)
        return HTMLResponse(pages.replay_preview_page(preview, self._csrf(request)))

    async def flows_page(self, request: Request) -> Response:
        health = await run_in_threadpool(self.data.health)
        return HTMLResponse(pages.flows_page(health, self.data.installation(), self._csrf(request)))

    async def api_trace(self, request: Request) -> Response:
        term = request.query_params.get("term", "").strip()
        if not term:
            return JSONResponse({"error": "term is required"}, status_code=400)
        found = await run_in_threadpool(self.data.trace, term)
        return Response(found.to_json(), media_type="application/json")

    async def api_dead_letters(self, request: Request) -> Response:
        rows = await run_in_threadpool(self.data.dead_letters, request.query_params.get("flow", ""),
                                       request.query_params.get("reason", ""))
        return Response(json.dumps([r.as_json() for r in rows], ensure_ascii=False), media_type="application/json")

    async def api_flows(self, request: Request) -> Response:
        health = await run_in_threadpool(self.data.health)
        return Response(json.dumps(health.as_json(), ensure_ascii=False, default=str), media_type="application/json")

    def routes(self) -> list[Route]:
        return [
            Route("/", self.home), Route("/console.css", self.stylesheet),
            Route("/login", self.login_page, methods=["GET"]), Route("/login", self.login, methods=["POST"]),
            Route("/logout", self.logout, methods=["POST"]),
            Route("/trace", self.trace_page), Route("/dead-letters", self.dead_letters_page),
            Route("/dead-letters/replay", self.replay, methods=["POST"]),
            Route("/dead-letters/preview", self.replay_preview, methods=["GET"]), Route("/flows", self.flows_page),
            Route("/api/trace", self.api_trace), Route("/api/dead-letters", self.api_dead_letters),
            Route("/api/flows", self.api_flows),
        ]


def create_app(settings: Settings, password: str, data: ConsoleData | None = None) -> Starlette:
    data = data or ConsoleData(settings, open_engine(settings.ledger_database_url()))
    console = Console(settings, data, password)
    return Starlette(routes=console.routes(),
                     middleware=[Middleware(SignInRequired, sessions=console.sessions)])


def _sample_every_minute(data: ConsoleData) -> None:
    """The flows' lag once a minute while the console runs, for the flow-health page's sparklines."""
    while True:
        try:
            data.sample()
        except Exception as exc:  # the broker or the ledger away for a while: the sparkline has a gap
            log.debug("no lag sample this minute: %s", exc)
        time.sleep(SAMPLE_EVERY_S)  # the sampler's own thread: a period, not a wait for a condition


def serve(settings: Settings, host: str, port: int) -> None:
    password, generated = console_password(settings.console)
    if generated is not None:
        log.info("generated the console password into %s (mode 600); sign in as %r with it", generated,
                 settings.console.user)
    data = ConsoleData(settings, open_engine(settings.ledger_database_url()))
    app = create_app(settings, password, data)
    threading.Thread(target=_sample_every_minute, args=(data,), name="lag-samples", daemon=True).start()
    log.info("web console on http://%s:%d/ (user %r)", host, port, settings.console.user)
    uvicorn.run(app, host=host, port=port, log_level="info")
