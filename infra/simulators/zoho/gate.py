"""The door every ``/crm/`` call passes: token check, scope check, credits, concurrency slot, the credits header.

A token without the scope the URL needs (``scopes.py``) gets 401 ``OAUTH_SCOPE_MISMATCH`` and costs no credit;
the request log notes the scope it lacked (``scope_needed``).

It runs outside fault injection, so an injected latency holds a concurrency slot exactly like a slow real
call. The authenticated :class:`~infra.simulators.zoho.auth.Principal` is left in ``scope["zoho_principal"]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from infra.simulators.common.requestlog import notes
from infra.simulators.zoho.auth import Principal, TokenAuthority
from infra.simulators.zoho.errors import ZohoApiError, too_many_requests
from infra.simulators.zoho.limits import CREDITS_HEADER, ConcurrencyGate, CreditMeter, write_cost
from infra.simulators.zoho.modules import ModuleDef
from infra.simulators.zoho.scopes import grants, required_scope, scope_mismatch

API_PREFIX = "/crm/"
PRINCIPAL_KEY = "zoho_principal"


def principal_of(scope: Scope) -> Principal:
    return cast(Principal, scope[PRINCIPAL_KEY])


class ApiGate:
    def __init__(
        self, app: ASGIApp, *, authority: TokenAuthority, concurrency: ConcurrencyGate, credits: CreditMeter,
        modules: Mapping[str, ModuleDef],
    ) -> None:
        self.app = app
        self.authority = authority
        self.concurrency = concurrency
        self.credits = credits
        self.modules = modules

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        request_notes = notes(scope)
        try:
            principal = self.authority.authenticate(Headers(scope=scope).get("authorization"))
        except ZohoApiError as exc:
            await JSONResponse(exc.body(), status_code=exc.status)(scope, receive, send)
            return
        request_notes.update(token=principal.token_fingerprint, client_id=principal.client_id)
        scope[PRINCIPAL_KEY] = principal
        need = required_scope(scope["method"], scope["path"], self.modules)
        if need is not None and not grants(principal.scopes, need):
            request_notes["scope_needed"] = str(need)
            refusal = scope_mismatch()
            await JSONResponse(refusal.body(), status_code=refusal.status)(scope, receive, send)
            return
        if self.credits.exhausted():
            refusal = too_many_requests("credits", self.credits.budget)
            await JSONResponse(refusal.body(), status_code=429)(scope, receive, send)
            return
        if not self.concurrency.try_acquire(principal.client_id):
            refusal = too_many_requests("concurrency", self.concurrency.limit)
            await JSONResponse(refusal.body(), status_code=429)(scope, receive, send)
            return
        try:
            self.credits.charge(1)
            credits_left = self.credits.header_value()

            async def send_with_credits(message: Message) -> None:
                if message["type"] == "http.response.start" and credits_left is not None:
                    MutableHeaders(scope=message)[CREDITS_HEADER] = credits_left
                await send(message)

            await self.app(scope, receive, send_with_credits)
            if request_notes.get("write_records"):  # insert / update / upsert; a delete costs 1 like a read
                self.credits.charge(write_cost(request_notes["write_records"]) - 1)
        finally:
            self.concurrency.release(principal.client_id)
