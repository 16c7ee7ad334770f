"""The door every ``/api/`` call passes: a valid Bearer token, or a 401 in Spring Security's shape.

It runs outside fault injection (as on the real gateway, auth is checked first). The caller's
:class:`~infra.simulators.huilianyi.auth.Principal` is left in ``scope["huilianyi_principal"]`` and the
token's fingerprint in the request log.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from infra.simulators.common.requestlog import notes, token_fingerprint
from infra.simulators.huilianyi.auth import TokenAuthority
from infra.simulators.huilianyi.errors import OAuthError

API_PREFIX = "/api/"
PRINCIPAL_KEY = "huilianyi_principal"


class ApiGate:
    def __init__(self, app: ASGIApp, *, authority: TokenAuthority) -> None:
        self.app = app
        self.authority = authority

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        try:
            principal = self.authority.authenticate(Headers(scope=scope).get("authorization"))
        except OAuthError as exc:
            await JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)(scope, receive, send)
            return
        notes(scope).update(token=token_fingerprint(principal.token), client_id=principal.app_id)
        scope[PRINCIPAL_KEY] = principal
        await self.app(scope, receive, send)
