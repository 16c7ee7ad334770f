"""The WebAPI transport: which service a URL names and what a body carries, in both body styles.

``POST …/Kingdee.BOS.WebApi.ServicesStub.<Service>.<Method>.common.kdsvc`` (names case-insensitive). Bodies are
``{"formid": .., "data": {..}}`` (``data`` may also be a JSON string) or the older ``{"parameters": [formid,
"<json string>"]}``; queries send only ``data`` (``{"parameters": ["<json>"]}`` in the old style).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from infra.simulators.kingdee import envelope as env

SERVICE_PATH = re.compile(r"/(?P<name>[^/]+)\.common\.kdsvc$", re.IGNORECASE)
STUB_PREFIXES = ("kingdee.bos.webapi.servicesstub.", "kingdee.bos.servicefacade.servicesstub.")


@dataclass(frozen=True)
class ServiceCall:
    service: str  # lower case: authservice, dynamicformservice, account.accountservice
    method: str  # lower case: save, executebillquery, loginbysign

    @property
    def label(self) -> str:
        return f"{self.service}.{self.method}"


def service_of(path: str) -> ServiceCall | None:
    match = SERVICE_PATH.search(path)
    if not match:
        return None
    name = match.group("name").lower()
    for prefix in STUB_PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    service, _, method = name.rpartition(".")
    return ServiceCall(service, method) if service and method else None


def parse_json(raw: bytes) -> Any:
    if not raw.strip():
        return {}
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise env.KingdeeError(env.PARAMETER_ERROR, f"请求参数不是有效的JSON格式：{exc}") from exc


def _as_object(value: Any, what: str) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except json.JSONDecodeError as exc:
            raise env.KingdeeError(env.PARAMETER_ERROR, f"{what}不是有效的JSON格式：{exc}") from exc
    if not isinstance(value, dict):
        raise env.KingdeeError(env.PARAMETER_ERROR, f"{what}必须是JSON对象", what)
    return value


def form_and_data(body: Any, *, with_form: bool = True) -> tuple[str | None, dict[str, Any]]:
    """(formid, data) of a DynamicFormService body, in either style."""
    if not isinstance(body, dict):
        raise env.KingdeeError(env.PARAMETER_ERROR, "请求参数必须是JSON对象")
    lowered = {str(k).lower(): v for k, v in body.items()}
    if "parameters" in lowered and "data" not in lowered:
        params = lowered["parameters"]
        if isinstance(params, str):
            params = json.loads(params) if params.strip().startswith("[") else [params]
        if not isinstance(params, list) or not params:
            raise env.KingdeeError(env.PARAMETER_ERROR, "参数parameters格式不正确", "parameters")
        if with_form and len(params) >= 2:
            return str(params[0]), _as_object(params[1], "data")
        return None, _as_object(params[-1], "data")
    form_id = lowered.get("formid")
    return (str(form_id) if form_id else None), _as_object(lowered.get("data", {}), "data")


def login_params(body: Any, names: tuple[str, ...]) -> list[Any]:
    """Positional login parameters from ``{"parameters": [...]}`` or named JSON keys (any case)."""
    if isinstance(body, dict):
        lowered = {str(k).lower(): v for k, v in body.items()}
        params = lowered.get("parameters")
        if isinstance(params, str):
            try:
                params = json.loads(params)
            except json.JSONDecodeError:
                params = None
        if isinstance(params, list):
            return [*params, *([None] * (len(names) - len(params)))][: len(names)]
        aliases = {"acctid": ("acctid", "dbid"), "username": ("username", "user")}
        return [next((lowered[a] for a in aliases.get(n, (n,)) if a in lowered), None) for n in names]
    if isinstance(body, list):
        return [*body, *([None] * (len(names) - len(body)))][: len(names)]
    raise env.KingdeeError(env.PARAMETER_ERROR, "登录参数格式不正确")
