"""ZOHO-specific ``/__sim/`` routes: token expiry, stored records, human edits, limits, clients.

These exist for tests and benchmarks only; the real CRM has nothing like them.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from infra.simulators.common.admin import AdminError, admin_router, int_param, json_body
from infra.simulators.zoho.auth import HUMAN_USER, ApiUser
from infra.simulators.zoho.config import ZohoCredentials
from infra.simulators.zoho.modules import ModuleDef
from infra.simulators.zoho.scopes import FULL_ACCESS, parse_scopes
from infra.simulators.zoho.simulator import ZohoSimulator

LIMIT_KEYS = ("max_concurrency", "daily_credits", "token_ttl_s", "tokens_per_window", "token_window_s")


def _human(raw: Any) -> ApiUser:
    if raw is None:
        return HUMAN_USER
    if not isinstance(raw, dict) or not raw.get("name"):
        raise AdminError('user must look like {"name": "...", "id": "..."}')
    return ApiUser(str(raw.get("id") or HUMAN_USER.id), str(raw["name"]), str(raw.get("email") or HUMAN_USER.email))


def zoho_admin_routes(sim: ZohoSimulator) -> list[Route]:
    def module_of(request: Request) -> ModuleDef:
        module = sim.modules.get(request.path_params["module"])
        if module is None:
            raise AdminError(f"unknown module {request.path_params['module']}", status=404)
        return module

    async def expire_tokens(request: Request) -> Response:
        body = await json_body(request, default={}) or {}
        return JSONResponse({"expired": sim.authority.expire_tokens(body.get("client_id"))})

    async def list_records(request: Request) -> Response:
        module = module_of(request)
        include_deleted = request.query_params.get("include_deleted", "").lower() in ("1", "true", "yes")
        # Flat: the record as the API shows it, plus "$" meta keys (the real API's convention for non-fields).
        records = [
            {
                **sim.reader.full_view(r),
                "$applied_at_ms": r.deleted_ms if r.deleted_ms is not None else r.modified_ms,
                "$created_at_ms": r.created_ms,
                "$modified_at_ms": r.modified_ms,
                "$deleted_at_ms": r.deleted_ms,
                "$delete_type": r.delete_type,
            }
            for r in sim.store.all_records(module.api_name, include_deleted=include_deleted)
        ]
        return JSONResponse({"module": module.api_name, "count": len(records), "records": records})

    async def human_create(request: Request) -> Response:
        module = module_of(request)
        body = await json_body(request, default={}) or {}
        outcome = sim.writer.insert(module, [body.get("data")], _human(body.get("user")))
        return JSONResponse(outcome.body(), status_code=outcome.http_status())

    async def human_edit(request: Request) -> Response:
        module = module_of(request)
        body = await json_body(request, default={}) or {}
        data = body.get("data")
        if not isinstance(data, dict):
            raise AdminError('body must look like {"data": {...}, "user": {...}}')
        record = {**data, "id": request.path_params["record_id"]}
        outcome = sim.writer.update(module, [record], _human(body.get("user")))
        return JSONResponse(outcome.body(), status_code=outcome.http_status())

    async def human_delete(request: Request) -> Response:
        module = module_of(request)
        body = await json_body(request, default={}) or {}
        outcome = sim.writer.delete(module, [request.path_params["record_id"]], _human(body.get("user")))
        return JSONResponse(outcome.body(), status_code=outcome.http_status())

    async def purge(request: Request) -> Response:
        return JSONResponse({"purged": sim.store.purge_recycle_bin(module_of(request).api_name)})

    async def writes(request: Request) -> Response:
        module = module_of(request)
        rows = sim.store.write_history(
            module.api_name,
            since_seq=int_param(request, "since_seq", 0) or 0,
            limit=int_param(request, "limit", 10_000) or 10_000,
        )
        return JSONResponse({"module": module.api_name, "count": len(rows), "writes": rows})

    def limits_view() -> dict[str, Any]:
        return {
            "max_concurrency": sim.concurrency.limit,
            "daily_credits": sim.credits.budget,
            "credits_used": sim.credits.used(),
            "credits_remaining": sim.credits.remaining(),
            "in_flight": sim.concurrency.in_flight(),
            "token_ttl_s": sim.authority.ttl_s,
            "tokens_per_window": sim.authority.tokens_per_window,
            "token_window_s": sim.authority.window_s,
            "search_lag_s": sim.search_index.lag_ms / 1000,
        }

    async def get_limits(request: Request) -> Response:
        return JSONResponse(limits_view())

    async def set_limits(request: Request) -> Response:
        body = await json_body(request, default={}) or {}
        if not isinstance(body, dict):
            raise AdminError("body must be a JSON object")
        unknown = set(body) - set(LIMIT_KEYS) - {"reset_credits", "search_lag_s"}
        if unknown:
            raise AdminError(
                f"unknown keys {sorted(unknown)}; known: {list(LIMIT_KEYS)}, search_lag_s and reset_credits"
            )
        for key in LIMIT_KEYS:
            if key in body and (not isinstance(body[key], int) or body[key] < 1):
                raise AdminError(f"{key} must be a positive integer")
        if "search_lag_s" in body:
            lag = body["search_lag_s"]
            if isinstance(lag, bool) or not isinstance(lag, int | float) or lag < 0:
                raise AdminError("search_lag_s must be a number of seconds, 0 or more")
            sim.search_index.reset(round(lag * 1000))  # the index catches up, then trails by the new lag
        if "max_concurrency" in body:
            sim.concurrency.limit = body["max_concurrency"]
        if "daily_credits" in body:
            sim.credits.budget = body["daily_credits"]
        if "token_ttl_s" in body:
            sim.authority.ttl_s = body["token_ttl_s"]
        if "tokens_per_window" in body:
            sim.authority.tokens_per_window = body["tokens_per_window"]
        if "token_window_s" in body:
            sim.authority.window_s = body["token_window_s"]
        if body.get("reset_credits"):
            sim.credits.reset()
        return JSONResponse(limits_view())

    async def add_client(request: Request) -> Response:
        body = await json_body(request, default={}) or {}
        keys = ("client_id", "client_secret", "refresh_token")
        if not isinstance(body, dict) or not all(isinstance(body.get(k), str) and body[k] for k in keys):
            raise AdminError(f"body needs non-empty strings {list(keys)} (user_name, user_id, user_email, scopes "
                             "optional)")
        try:
            scopes = parse_scopes(body.get("scopes")) or FULL_ACCESS
        except ValueError as exc:
            raise AdminError(str(exc)) from exc
        credentials = ZohoCredentials(*(body[k] for k in keys))
        user = sim.authority.register_client(credentials, str(body.get("user_name") or "Integration User"), scopes,
                                             user_id=body.get("user_id"), user_email=body.get("user_email"))
        return JSONResponse(
            {"client_id": credentials.client_id, "user": user.owner(), "scopes": list(scopes)}, status_code=201
        )

    async def notifications(request: Request) -> Response:
        if request.method == "DELETE":
            sim.notifier.clear()
            return JSONResponse({"cleared": True})
        entries = sim.notifier.log()
        return JSONResponse({"count": len(entries), "notifications": entries})

    async def watch_channels(request: Request) -> Response:
        return JSONResponse({"channels": [sim.watches.view(c) for c in sim.watches.live()]})

    route = admin_router(sim.config.admin_token)
    return [
        route("/__sim/expire-tokens", expire_tokens, ["POST"]),
        route("/__sim/limits", get_limits, ["GET"]),
        route("/__sim/limits", set_limits, ["PUT"]),
        route("/__sim/clients", add_client, ["POST"]),
        route("/__sim/records/{module}", list_records, ["GET"]),
        route("/__sim/records/{module}", human_create, ["POST"]),
        route("/__sim/records/{module}/purge", purge, ["POST"]),
        route("/__sim/records/{module}/{record_id}", human_edit, ["PATCH"]),
        route("/__sim/records/{module}/{record_id}", human_delete, ["DELETE"]),
        route("/__sim/writes/{module}", writes, ["GET"]),
        route("/__sim/notifications", notifications, ["GET", "DELETE"]),
        route("/__sim/watch", watch_channels, ["GET"]),
    ]
