"""HTTP handlers for metadata (``/settings/modules``, ``/settings/fields``, ``/org``, ``/users``) and
``/actions/watch``. Answer shapes: see ``metadata.py`` and ``watch.py``."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from infra.simulators.zoho.api import API_VERSIONS, _json_object, _sim, respond
from infra.simulators.zoho.auth import HUMAN_USER
from infra.simulators.zoho.errors import (
    ZohoApiError,
    invalid_module,
    invalid_param,
    invalid_url,
    required_param,
)
from infra.simulators.zoho.gate import principal_of
from infra.simulators.zoho.metadata import fields_meta, module_meta, org_meta, users_body
from infra.simulators.zoho.reader import MAX_PER_PAGE, _int_param

USER_TYPES = ("AllUsers", "ActiveUsers", "DeactiveUsers", "ConfirmedUsers", "NotConfirmedUsers",
              "DeletedUsers", "ActiveConfirmedUsers", "AdminUsers", "ActiveConfirmedAdmins", "CurrentUser")  # fmt: skip


def _check_version(request: Request) -> None:
    if request.path_params["version"] not in API_VERSIONS:
        raise invalid_url()


async def settings_modules(request: Request) -> Response:
    _check_version(request)
    modules = [module_meta(m, i) for i, m in enumerate(_sim(request).modules.values())]
    return respond({"modules": modules})


async def settings_module(request: Request) -> Response:
    _check_version(request)
    sim = _sim(request)
    name = request.path_params["api_name"]
    for position, module in enumerate(sim.modules.values()):
        if module.api_name.lower() == name.lower():
            return respond({"modules": [{**module_meta(module, position), "related_lists": [], "layouts": []}]})
    raise invalid_module(name)


async def settings_fields(request: Request) -> Response:
    _check_version(request)
    name = request.query_params.get("module")
    if not name:
        raise required_param("module")
    fields = fields_meta(_sim(request).modules, name)
    if fields is None:
        raise invalid_module(name)
    return respond({"fields": fields})


async def org(request: Request) -> Response:
    _check_version(request)
    return respond(org_meta(_sim(request).config.utc_offset))


def _all_users(request: Request) -> list[tuple[Any, bool]]:
    sim = _sim(request)
    return [(u, True) for u in sim.authority.users()] + [(HUMAN_USER, False)]


async def users(request: Request) -> Response:
    _check_version(request)
    kind = request.query_params.get("type") or "AllUsers"
    if kind not in USER_TYPES:
        raise invalid_param("type", "invalid user type")
    everyone = _all_users(request)
    if kind == "CurrentUser":
        me = principal_of(request.scope).user.id
        everyone = [(u, admin) for u, admin in everyone if u.id == me]
    elif kind in ("AdminUsers", "ActiveConfirmedAdmins"):
        everyone = [(u, admin) for u, admin in everyone if admin]
    elif kind in ("DeactiveUsers", "NotConfirmedUsers", "DeletedUsers"):
        everyone = []
    page = _int_param(request.query_params, "page", 1, 1)
    per_page = _int_param(request.query_params, "per_page", MAX_PER_PAGE, 1, MAX_PER_PAGE)
    return respond(users_body(everyone, _sim(request).config.utc_offset, page, per_page))


async def user(request: Request) -> Response:
    _check_version(request)
    wanted = request.path_params["user_id"]
    chosen = [(u, admin) for u, admin in _all_users(request) if u.id == wanted]
    if not chosen:
        raise ZohoApiError(400, "INVALID_DATA", "the id given seems to be invalid", {"api_name": "id"})
    return respond(users_body(chosen, _sim(request).config.utc_offset, 1, 1))


def _watch_status(results: list[dict[str, Any]]) -> int:
    ok = sum(r.get("status") == "success" for r in results)
    return 200 if ok == len(results) else 400 if ok == 0 else 207


async def _watch_items(request: Request) -> list[Any]:
    body = await _json_object(request)
    items = body.get("watch")
    if not isinstance(items, list) or not items:
        raise required_param("watch")
    return items


async def watch(request: Request) -> Response:
    _check_version(request)
    sim = _sim(request)
    if request.method == "GET":
        channels = sim.watches.live()
        return respond({"watch": [sim.watches.view(c) for c in channels]} if channels else None)
    if request.method == "DELETE":
        ids = [i.strip() for i in request.query_params.get("channel_ids", "").split(",") if i.strip()]
        if not ids:
            raise required_param("channel_ids")
        results = sim.watches.unsubscribe(ids)
        return respond({"watch": results}, _watch_status(results))
    items = await _watch_items(request)
    if request.method == "PATCH" and any(isinstance(i, dict) and i.get("_delete_events") for i in items):
        results = sim.watches.remove_events(items)
    else:
        api_domain = sim.config.public_url or str(request.base_url).rstrip("/")
        results = sim.watches.subscribe(items, api_domain, principal_of(request.scope).client_id)
    return respond({"watch": results}, _watch_status(results))


def meta_routes() -> list[Route]:
    base = "/crm/{version}"
    return [
        Route(f"{base}/settings/fields", settings_fields, methods=["GET"]),
        Route(f"{base}/settings/modules", settings_modules, methods=["GET"]),
        Route(f"{base}/settings/modules/{{api_name}}", settings_module, methods=["GET"]),
        Route(f"{base}/org", org, methods=["GET"]),
        Route(f"{base}/users", users, methods=["GET"]),
        Route(f"{base}/users/{{user_id}}", user, methods=["GET"]),
        Route(f"{base}/actions/watch", watch, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
    ]
