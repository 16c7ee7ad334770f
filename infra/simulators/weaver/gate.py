"""The token check in front of every business call (``/api/...`` except ``/api/ec/dev/auth/``, and downloads).

Reads headers ``appid``, ``token``, ``userid`` (RSA-encrypted OA user id); on failure answers the gateway's
``{"msg","code":-1,"status":false}`` with HTTP 200, like the real OA. The caller is left in
``scope["weaver_principal"]``, and the request log gets ``token`` (fingerprint), ``appid`` and ``user``.
"""

from __future__ import annotations

from typing import cast

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from infra.simulators.common.requestlog import notes
from infra.simulators.weaver.errors import AuthFailure
from infra.simulators.weaver.files import DOWNLOAD_PATH
from infra.simulators.weaver.tokens import Principal, TokenAuthority, token_hash

AUTH_PREFIX = "/api/ec/dev/auth/"
PRINCIPAL_KEY = "weaver_principal"


def principal_of(scope: Scope) -> Principal:
    return cast(Principal, scope[PRINCIPAL_KEY])


def needs_token(path: str) -> bool:
    return (path.startswith("/api/") and not path.startswith(AUTH_PREFIX)) or path == DOWNLOAD_PATH


class TokenGate:
    def __init__(self, app: ASGIApp, *, authority: TokenAuthority) -> None:
        self.app = app
        self.authority = authority

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not needs_token(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        token = headers.get("token")
        request_notes = notes(scope)
        request_notes.update(appid=headers.get("appid"), token=token_hash(token)[:12] if token else None)
        try:
            principal = self.authority.authenticate(headers.get("appid"), token, headers.get("userid"))
        except AuthFailure as exc:
            request_notes["auth_error"] = exc.msg
            await JSONResponse(exc.body(), status_code=exc.status)(scope, receive, send)
            return
        request_notes["user"] = principal.user.id
        scope[PRINCIPAL_KEY] = principal
        await self.app(scope, receive, send)
