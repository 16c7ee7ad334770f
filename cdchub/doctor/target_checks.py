"""The business systems' APIs with the installation's credentials: ZOHO (token and scopes), the Kingdee WebAPI
(login, and in ``webapi`` capture mode each form the capture reads), Weaver OA and Huilianyi.

Tokens come from the installation's token store (``<state dir>/tokens``, shared with every running process): a
valid cached token is reused and nothing is minted — ZOHO allows an org 10 refreshes per 10 minutes, and a doctor
run must not spend them.  A token is minted only when the store has none (and then it serves the processes too).
"""

from __future__ import annotations

import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from cdchub.doctor.base import CONNECT_TIMEOUT_S, Context, Finding, Skipped, describe, fail, ok
from connectors.common.token_cache import Token, TokenUnavailable
from connectors.huilianyi.client import CHINA_TZ, HuilianyiClient
from connectors.kingdee.client import KingdeeApiCredentials, KingdeeApiError, KingdeeWebApiClient
from connectors.kingdee.documents import DocumentCatalog
from connectors.kingdee.webapi_reader import WebApiReader
from connectors.settings import Settings
from connectors.weaver.source import weaver_client
from connectors.zoho.client import TOKEN_MINTS_PER_WINDOW, ZohoClient
from connectors.zoho.scopes import REQUIRED_SCOPES
from core.errors import MissingScope, PermanentError, TransientError

ZOHO_CREDENTIALS = "CDCHUB_ZOHO__CLIENT_ID, CDCHUB_ZOHO__CLIENT_SECRET and CDCHUB_ZOHO__REFRESH_TOKEN"
ZOHO_GRANT = ("make a new grant (API console → Self Client → Generate Code with the scopes "
              + ",".join(REQUIRED_SCOPES) + "), exchange it for a refresh token and set CDCHUB_ZOHO__REFRESH_TOKEN")


def _quick(settings: Settings) -> Settings:
    """The settings with every HTTP timeout cut to the doctor's: an unreachable host is a ✗ in seconds."""
    t = CONNECT_TIMEOUT_S
    return settings.model_copy(update={
        "zoho": settings.zoho.model_copy(update={"timeout_s": t}),
        "kingdee_api": settings.kingdee_api.model_copy(update={"timeout_s": t}),
        "weaver": settings.weaver.model_copy(update={"timeout_s": t}),
        "huilianyi": settings.huilianyi.model_copy(update={"timeout_s": t}),
    })


def _expiry(token: Token | None) -> float | None:
    return token.expires_at if token is not None else None


def _token_note(minted: int, expires_at: float | None, kind: str = "token") -> str:
    if minted:
        return f"made a new {kind}" if kind == "session" else "minted a new access token"
    left = f", valid {max(0.0, (expires_at or 0) - time.time()) / 60:.0f} more min" if expires_at else ""
    return f"reused the installation's cached {kind}{left}"


# --- ZOHO ---------------------------------------------------------------------------------------------------------

def zoho_client(ctx: Context) -> ZohoClient:
    """One ZOHO client per doctor run (its token serves both ZOHO checks)."""
    if ctx.zoho is None:
        ctx.zoho = ctx.closing(ZohoClient(_quick(ctx.settings).zoho))
    client: ZohoClient = ctx.zoho
    return client


def check_zoho_token(ctx: Context) -> Finding:
    zoho = ctx.settings.zoho
    client = zoho_client(ctx)
    try:
        client.tokens.token()
    except TokenUnavailable as exc:
        return fail("zoho-token", f"no access token can be had now: {describe(exc)}",
                    f"wait and run again (ZOHO allows {TOKEN_MINTS_PER_WINDOW} refreshes per 10 minutes per org, "
                    "shared by every process of the installation); if refreshes keep being refused, check "
                    + ZOHO_CREDENTIALS)
    except PermanentError as exc:
        return fail("zoho-token", f"{zoho.accounts_url} refused to refresh the token: {describe(exc)}",
                    f"check {ZOHO_CREDENTIALS} (the self client's id and secret in the API console) and "
                    "CDCHUB_ZOHO__ACCOUNTS_URL: the org's data centre (accounts.zoho.com, .com.cn, .eu); a revoked "
                    f"or foreign refresh token: {ZOHO_GRANT}")
    except TransientError as exc:
        return fail("zoho-token", f"{zoho.accounts_url} did not answer: {describe(exc)}",
                    "check CDCHUB_ZOHO__ACCOUNTS_URL and that this host reaches it (HTTPS proxy?)")
    token = client.tokens.current
    return ok("zoho-token", f"{zoho.accounts_url}: {_token_note(client.tokens.mint_count, _expiry(token))}"
                            f"; API domain {client.tokens.api_domain}")


def _scope_probes(module: str) -> list[tuple[str, str, str, dict[str, object]]]:
    """(scope, method, path, request) — one cheap call per operation cdchub needs.  The writes carry no record:
    ZOHO checks the scope first, then refuses the empty ``data`` (400), so they change nothing."""
    return [
        ("ZohoCRM.users.READ", "GET", "users", {"params": {"type": "CurrentUser"}}),
        ("ZohoCRM.settings.fields.READ", "GET", "settings/fields", {"params": {"module": module}}),
        ("ZohoCRM.modules.ALL", "GET", module, {"params": {"fields": "id", "per_page": 1}}),
        ("ZohoCRM.modules.ALL", "POST", f"{module}/upsert", {"json": {"data": []}}),
        ("ZohoCRM.modules.ALL", "PUT", module, {"json": {"data": []}}),
        ("ZohoCRM.notifications.ALL", "GET", "actions/watch", {}),
    ]


def check_zoho_scopes(ctx: Context) -> Finding:
    token = ctx.found.get("zoho-token")
    if token is None or token.status != "ok":
        raise Skipped("not checked: zoho-token failed (above)")
    zoho = ctx.settings.zoho
    client = zoho_client(ctx)
    module = (zoho.poll_modules or ["Products"])[0]
    missing: dict[str, str] = {}
    details: list[str] = []
    for scope, method, path, request in _scope_probes(module):
        if scope == "ZohoCRM.notifications.ALL" and not zoho.watch_notify_url:
            details.append(f"{scope}: not needed (CDCHUB_ZOHO__WATCH_NOTIFY_URL is empty)")
            continue
        try:
            client.request(method, path, **request)
            details.append(f"{scope}: {method} {path} allowed")
        except MissingScope as exc:
            missing.setdefault(scope, exc.scope)
            details.append(f"{scope}: {method} {path} refused, needs {exc.scope}")
        except PermanentError as exc:  # refused for what it asked (the empty writes), past the scope check
            details.append(f"{scope}: {method} {path} allowed ({exc.code or 'refused as expected'})")
        except TransientError as exc:
            return fail("zoho-scopes", f"{method} {path} failed: {describe(exc)}",
                        "check CDCHUB_ZOHO__API_DOMAIN (www.zohoapis.com, .com.cn, .eu) and that this host reaches it",
                        tuple(details))
    if missing:
        return fail("zoho-scopes", "the grant of cdchub's refresh token lacks " + ", ".join(missing)
                    + " (" + ", ".join(f"{m} needs {n}" for m, n in missing.items() if m != n) + ")",
                    ZOHO_GRANT, tuple(details))
    wanted = [s for s in REQUIRED_SCOPES if zoho.watch_notify_url or s != "ZohoCRM.notifications.ALL"]
    return ok("zoho-scopes", "the token may do what cdchub does: " + ", ".join(wanted), tuple(details))


def crm_fields_written() -> dict[str, set[str]]:
    """The CRM fields the mappings write (``flows/mappings/*.toml`` with ``[target] system = "zoho"``), by module:
    each mapped field and the external key."""
    from core.toml_specs import read_toml
    from flows.specs import MAPPINGS_DIR

    wanted: dict[str, set[str]] = {}
    for path in sorted(MAPPINGS_DIR.glob("*.toml")):
        raw = read_toml(path)
        target = raw.get("target") or {}
        if target.get("system") != "zoho" or not target.get("module"):
            continue
        fields = wanted.setdefault(str(target["module"]), set())
        fields.update(str(name) for name in raw.get("fields") or {})
        if target.get("external_key"):
            fields.add(str(target["external_key"]))
    return wanted


def check_zoho_fields(ctx: Context) -> Finding:
    """Every field the mappings write exists in the org (custom fields are made by the org's admin, not by us)."""
    scopes = ctx.found.get("zoho-scopes")
    if scopes is None or scopes.status != "ok":
        raise Skipped("not checked: zoho-scopes failed (above)")
    client = zoho_client(ctx)
    written = crm_fields_written()
    missing: dict[str, list[str]] = {}
    details: list[str] = []
    for module, fields in sorted(written.items()):
        try:
            _, meta = client.request("GET", "settings/fields", params={"module": module})
        except (PermanentError, TransientError) as exc:
            return fail("zoho-fields", f"the fields of {module} could not be read: {describe(exc)}",
                        f"check that the org has the {module} module and cdchub's user may read its fields")
        have = {str(f.get("api_name")) for f in (meta or {}).get("fields") or []}
        lacking = sorted(fields - have)
        details.append(f"{module}: {len(fields)} written, "
                       + (f"missing {', '.join(lacking)}" if lacking else "all there"))
        if lacking:
            missing[module] = lacking
    if missing:
        return fail("zoho-fields", "the CRM lacks fields the mappings write: "
                    + "; ".join(f"{m}: {', '.join(f)}" for m, f in missing.items()),
                    "an admin creates them as custom fields (Setup → Customization → Modules and Fields; API names, "
                    "types and uniqueness as infra/simulators/README.md lists them) — until then every record of "
                    "those modules is dead-lettered with INVALID_DATA", tuple(details))
    return ok("zoho-fields", f"the org has every field the mappings write ({sum(map(len, written.values()))} "
                             f"fields of {', '.join(sorted(written))})", tuple(details))


# --- Kingdee WebAPI -----------------------------------------------------------------------------------------------

def _kingdee(ctx: Context) -> KingdeeWebApiClient:
    api = _quick(ctx.settings).kingdee_api
    client = KingdeeWebApiClient(
        KingdeeApiCredentials(api.base_url, api.acct_id, api.user, api.app_id, api.app_secret.get_secret_value()),
        timeout_s=api.timeout_s)
    ctx.closing(client)
    return client


def check_kingdee_webapi(ctx: Context) -> Finding:
    """``LoginBySign`` works (the CRM → Kingdee flows save through it; the ``webapi`` capture reads through it), and
    in ``webapi`` mode every form the capture reads answers ``ExecuteBillQuery``."""
    api = ctx.settings.kingdee_api
    client = _kingdee(ctx)
    reader = WebApiReader(client, discover=False)
    specs = list(DocumentCatalog().specs)
    if ctx.settings.capture.mode != "webapi":
        specs = specs[:1]  # one query proves the session
    refused: list[str] = []
    try:
        client.session.token()
        for spec in specs:
            try:
                client.execute_bill_query(spec.form_id, [reader.fields(spec).id_key], limit=1)
            except KingdeeApiError as exc:
                refused.append(f"{spec.form_id} ({describe(exc)})")
    except KingdeeApiError as exc:
        return fail("kingdee-webapi", f"{api.base_url}: LoginBySign as {api.user!r} on data centre {api.acct_id!r} "
                                      f"refused: {describe(exc)}",
                    "check CDCHUB_KINGDEE_API__ACCT_ID (the data centre id), CDCHUB_KINGDEE_API__USER (the "
                    "integration user), CDCHUB_KINGDEE_API__APP_ID and CDCHUB_KINGDEE_API__APP_SECRET (系统管理 → "
                    "第三方系统登录授权: the app's registration must name that user and data centre)")
    except TransientError as exc:
        return fail("kingdee-webapi", f"{api.base_url} did not answer: {describe(exc)}",
                    "check CDCHUB_KINGDEE_API__BASE_URL (http(s)://<host>/K3Cloud) and that this host reaches it")
    note = _token_note(client.login_count, _expiry(client.session.current), "session")
    if refused:
        return fail("kingdee-webapi", f"logged in as {api.user!r} ({note}), but {len(refused)} form(s) refuse "
                                      "ExecuteBillQuery: " + "; ".join(refused[:3]),
                    f"give the integration user {api.user!r} view rights on those forms in Kingdee")
    forms = f"{len(specs)} forms readable" if len(specs) > 1 else "ExecuteBillQuery answers"
    return ok("kingdee-webapi", f"{api.base_url}: LoginBySign as {api.user!r} works ({note}); {forms}")


# --- Weaver and Huilianyi -----------------------------------------------------------------------------------------

def check_weaver(ctx: Context) -> Finding:
    """With the installation's registration and token; before the state dir exists, with a throwaway registration
    (the doctor leaves no file where the services will keep theirs)."""
    if ctx.token_store == "none":  # registering anew would replace the running services' registration
        raise Skipped("not checked: the state dir with the installation's Weaver registration is another user's "
                      "(state-dir above)")
    with tempfile.TemporaryDirectory(prefix="cdchub-doctor-") as scratch:
        settings = _quick(ctx.settings)
        if ctx.token_store == "own":
            settings = settings.model_copy(update={"state_dir": Path(scratch)})
        return _check_weaver(ctx, settings)


def _check_weaver(ctx: Context, settings: Settings) -> Finding:
    weaver = ctx.settings.weaver
    client = ctx.closing(weaver_client(settings, "doctor"))
    try:
        client.my_requests(page_size=1, user_id=weaver.user_id)
    except PermanentError as exc:
        return fail("weaver", f"{weaver.base_url} refused app {_head(weaver.app_id.get_secret_value())}: "
                              f"{describe(exc)}",
                    "the OA administrator registers CDCHUB_WEAVER__APP_ID in table ECOLOGY_BIZ_EC (cdchub then "
                    "registers its RSA key itself and keeps it in <state dir>/weaver-client.json); "
                    f"CDCHUB_WEAVER__USER_ID ({weaver.user_id}) must be an OA user who may list requests")
    except TransientError as exc:
        return fail("weaver", f"{weaver.base_url} did not answer: {describe(exc)}",
                    "check CDCHUB_WEAVER__BASE_URL and that this host reaches the OA")
    registered = "registered cdchub's RSA key, " if client.regist_count else ""
    return ok("weaver", f"{weaver.base_url}: {registered}"
                        f"{_token_note(client.token_count, _expiry(client.tokens.current))}"
                        f"; user {weaver.user_id} lists requests")


def _head(secret: str) -> str:
    return f"{secret[:8]}…" if secret else "(empty)"


def check_huilianyi(ctx: Context) -> Finding:
    h = ctx.settings.huilianyi
    client = ctx.closing(HuilianyiClient(_quick(ctx.settings).huilianyi))
    now = datetime.now(CHINA_TZ)
    try:
        next(iter(client.expense_reports(now - timedelta(minutes=10), now, page_size=1)), None)
    except PermanentError as exc:
        return fail("huilianyi", f"{h.base_url} refused app {h.app_id!r}: {describe(exc)}",
                    "check CDCHUB_HUILIANYI__APP_ID and CDCHUB_HUILIANYI__APP_SECRET (Huilianyi admin → open "
                    "platform app) and that the app may read expense reports")
    except TransientError as exc:
        return fail("huilianyi", f"{h.base_url} did not answer: {describe(exc)}",
                    "check CDCHUB_HUILIANYI__BASE_URL (https://api.huilianyi.com/gateway) and that this host reaches "
                    "it")
    token = client.tokens.current
    return ok("huilianyi", f"{h.base_url}: {_token_note(client.tokens.mint_count, _expiry(token))}; "
                           "expense reports can be read")
