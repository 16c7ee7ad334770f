"""Kingdee-specific ``/__sim/`` routes: sessions (list, expire, lifetime) and the accepted identity.

For tests only; the real server has nothing like them. Documents are not reachable here: they live in the Kingdee
database, which tests read directly.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from infra.simulators.common.admin import AdminError, admin_router, json_body
from infra.simulators.kingdee.auth import fingerprint
from infra.simulators.kingdee.simulator import KingdeeSimulator


def kingdee_admin_routes(sim: KingdeeSimulator) -> list[Route]:
    async def list_sessions(request: Request) -> Response:
        rows = [{**r, "fingerprint": fingerprint(r["session_id"])} for r in sim.auth.sessions()]
        return JSONResponse({"count": len(rows), "session_ttl_s": sim.auth.session_ttl_s, "sessions": rows})

    async def expire_sessions(request: Request) -> Response:
        body = await json_body(request, default={}) or {}
        return JSONResponse({"expired": sim.auth.expire_sessions(body.get("session_id"))})

    async def set_session_ttl(request: Request) -> Response:
        body = await json_body(request, default={}) or {}
        ttl = body.get("session_ttl_s") if isinstance(body, dict) else None
        if not isinstance(ttl, int) or ttl < 1:
            raise AdminError('body must look like {"session_ttl_s": <positive int>}')
        sim.auth.session_ttl_s = ttl
        return JSONResponse({"session_ttl_s": ttl})

    async def identity(request: Request) -> Response:
        c = sim.config.credentials
        return JSONResponse(
            {"acct_id": c.acct_id, "user": c.user, "app_id": c.app_id, "api_user_id": sim.config.api_user_id}
        )

    route = admin_router(sim.config.admin_token)
    return [
        route("/__sim/sessions", list_sessions, ["GET"]),
        route("/__sim/expire-sessions", expire_sessions, ["POST"]),
        route("/__sim/session-ttl", set_session_ttl, ["PUT"]),
        route("/__sim/identity", identity, ["GET"]),
    ]
