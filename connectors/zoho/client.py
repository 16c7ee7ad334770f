"""ZOHO CRM REST client.

Auth: an access token minted from the refresh token at ``{accounts_url}/oauth/v2/token``, cached until shortly before
it expires and refreshed only then or on a 401 — a refresh token may mint at most 10 tokens per 10 minutes.
Limits: at most ``MAX_RECORDS_PER_WRITE`` records per write; in-flight calls capped by ``max_concurrency`` across
every process of the installation (``SharedSlots``: the org's concurrency limit answers 429 beyond it).
Errors: 429, 5xx, timeouts, transport errors and unparseable bodies are transient; other 4xx are permanent — a missing
OAuth scope (401 ``OAUTH_SCOPE_MISMATCH``) as ``MissingScope`` naming the scope and URL (``scopes.py``).  Per-record
errors inside a 200/207/412 answer are returned to the caller, not raised.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson

from connectors.common.shared_state import SharedSlots
from connectors.common.token_cache import CachedToken, Token, TokenUnavailable
from connectors.zoho.budget import METER
from connectors.zoho.scopes import scope_for
from connectors.zoho.settings import ZohoSettings
from core.errors import MissingScope, PermanentError, RateLimited, TransientError

log = logging.getLogger(__name__)

MAX_RECORDS_PER_WRITE = 100
TOKEN_MINTS_PER_WINDOW = 10
TOKEN_WINDOW_S = 600.0
TOKEN_EXPIRY_MARGIN_S = 60.0


class TokenManager(CachedToken):
    """The org's access token (shared by every process, see ``token_cache.py``); a new one is minted only when it
    is missing, about to expire, or refused, and never more than 10 per 10 minutes."""

    mint_limit = TOKEN_MINTS_PER_WINDOW
    mint_window_s = TOKEN_WINDOW_S

    def __init__(self, settings: ZohoSettings, http: httpx.Client) -> None:
        super().__init__(f"zoho-{settings.accounts_url}-{settings.client_id}")
        self._settings = settings
        self._http = http

    @property
    def api_domain(self) -> str:
        current = self.current
        return (current.extra.get("api_domain") if current else None) or self._settings.api_domain

    def _fetch(self) -> Token:
        now = time.time()
        s = self._settings
        try:
            resp = self._http.post(
                f"{s.accounts_url}/oauth/v2/token",
                data={
                    "grant_type": "refresh_token",
                    "client_id": s.client_id,
                    "client_secret": s.client_secret.get_secret_value(),
                    "refresh_token": s.refresh_token.get_secret_value(),
                },
            )
        except httpx.HTTPError as exc:
            raise TransientError(f"ZOHO token refresh failed: {exc!r}") from exc
        body = _json_or_none(resp)
        if resp.status_code >= 500 or body is None:
            raise TransientError(f"ZOHO token refresh answered {resp.status_code}")
        if "access_token" not in body:
            error = body.get("error", "unknown")
            if "too many requests" in str(body.get("error_description", "")).lower():
                raise TokenUnavailable("ZOHO refused the token refresh: too many requests")
            raise PermanentError(f"ZOHO token refresh refused: {error}", code=str(error))
        extra = {"api_domain": str(body["api_domain"])} if body.get("api_domain") else {}
        return Token(str(body["access_token"]),
                     now + float(body.get("expires_in", 3600)) - TOKEN_EXPIRY_MARGIN_S, extra)


def _json_or_none(resp: httpx.Response) -> dict[str, Any] | None:
    try:
        body = orjson.loads(resp.content)  # answers of 100 records: a fifth of the standard library's cost
    except orjson.JSONDecodeError:
        try:  # what orjson refuses (NaN, integers beyond 64 bits, another encoding) the standard library may read
            body = resp.json()
        except (json.JSONDecodeError, ValueError):
            return None
    return body if isinstance(body, dict) else None


def _encode_json(kwargs: dict[str, Any]) -> Any:
    """Take a ``json=`` body out of ``kwargs`` and put it in as orjson wrote it (what httpx would send, at a fifth
    of the cost); what orjson refuses stays for httpx.  Returns the body (None without one)."""
    body = kwargs.get("json")
    if body is None:
        return None
    try:
        kwargs["content"] = orjson.dumps(body)
    except TypeError:
        return body
    del kwargs["json"]
    kwargs["headers"] = {**(kwargs.get("headers") or {}), "Content-Type": "application/json"}
    return body


CREDITS_HEADER = "X-API-CREDITS-REMAINING"
LIST_PER_PAGE = 200
LIST_MAX_FIELDS = 50


class ZohoClient:
    """Thread-safe; one per process.  Calls raise ``TransientError``/``PermanentError`` (see module doc)."""

    def __init__(self, settings: ZohoSettings, http: httpx.Client | None = None) -> None:
        self.settings = settings
        self._http = http or httpx.Client(timeout=settings.timeout_s)
        self.tokens = TokenManager(settings, self._http)
        #: The org's concurrency limit, shared by every process of the installation.
        self._slots = SharedSlots(f"zoho-{settings.client_id}", settings.max_concurrency)
        self._current_user_id: str | None = None

    def close(self) -> None:
        self._http.close()

    def _url(self, path: str) -> str:
        return f"{self.tokens.api_domain}/crm/{self.settings.api_version}/{path.lstrip('/')}"

    def request(self, method: str, path: str, **kwargs: Any) -> tuple[int, dict[str, Any] | None]:
        """One call; returns (status, parsed body, or None for 204 and 304).  A refused token is replaced once."""
        sent = _encode_json(kwargs)
        extra_headers = kwargs.pop("headers", None) or {}
        for attempt in (1, 2):
            token = self.tokens.token()
            headers = {"Authorization": f"Zoho-oauthtoken {token}", **extra_headers}
            try:
                with self._slots.hold():
                    resp = self._http.request(method, self._url(path), headers=headers, **kwargs)
            except httpx.TimeoutException as exc:
                raise TransientError(f"ZOHO {method} {path} timed out") from exc
            except httpx.HTTPError as exc:
                raise TransientError(f"ZOHO {method} {path} failed: {exc!r}") from exc
            METER.record(method, path, len(sent.get("data") or []) if isinstance(sent, dict) else 0,
                         resp.status_code, resp.headers.get(CREDITS_HEADER))
            if resp.status_code in (204, 304):  # no rows; nothing modified after If-Modified-Since
                return resp.status_code, None
            body = _json_or_none(resp)
            code = (body or {}).get("code")
            if resp.status_code == 401 and code == "INVALID_TOKEN" and attempt == 1:
                self.tokens.invalidate(token)
                continue
            if resp.status_code == 401 and code == "OAUTH_SCOPE_MISMATCH":
                raise _missing_scope(method, path, resp)
            if resp.status_code == 429:
                retry_after = resp.headers.get("Retry-After")
                raise RateLimited(
                    f"ZOHO {method} {path}: 429 {code or ''}", retry_after=float(retry_after) if retry_after else None
                )
            if resp.status_code >= 500:
                raise TransientError(f"ZOHO {method} {path}: HTTP {resp.status_code} {code or ''}")
            if body is None:
                raise TransientError(f"ZOHO {method} {path}: HTTP {resp.status_code} with a malformed body")
            if resp.status_code >= 400 and not isinstance(body.get("data"), list):
                raise PermanentError(
                    f"ZOHO {method} {path}: HTTP {resp.status_code} {code}: {body.get('message')}", code=code
                )
            return resp.status_code, body
        raise TransientError(f"ZOHO {method} {path}: token refused twice")

    def upsert(
        self, module: str, records: list[dict[str, Any]], duplicate_check_fields: list[str]
    ) -> list[dict[str, Any]]:
        """Upsert ≤ 100 records; returns one result per record, in order (``status`` success or error)."""
        if len(records) > MAX_RECORDS_PER_WRITE:
            raise ValueError(f"at most {MAX_RECORDS_PER_WRITE} records per write, got {len(records)}")
        _, body = self.request(
            "POST",
            f"{module}/upsert",
            json={"data": records, "duplicate_check_fields": duplicate_check_fields, "trigger": []},
        )
        results = (body or {}).get("data")
        if not isinstance(results, list) or len(results) != len(records):
            raise TransientError(f"ZOHO upsert {module}: answer does not hold one result per record")
        return results

    def update(self, module: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Update ≤ 100 records by ``id``; one result per record, in order; a refused record raises."""
        if len(records) > MAX_RECORDS_PER_WRITE:
            raise ValueError(f"at most {MAX_RECORDS_PER_WRITE} records per write, got {len(records)}")
        _, body = self.request("PUT", module, json={"data": records, "trigger": []})
        results = (body or {}).get("data")
        if not isinstance(results, list) or len(results) != len(records):
            raise TransientError(f"ZOHO update {module}: answer does not hold one result per record")
        for result in results:
            if result.get("status") != "success":
                raise PermanentError(f"ZOHO update {module}: {result.get('code')} {result.get('message')} "
                                     f"{result.get('details') or ''}", code=result.get("code"))
        return results

    def update_unless_modified(self, module: str, records: list[dict[str, Any]],
                               modified_time: str) -> list[dict[str, Any]]:
        """Update ≤ 100 records by ``id`` unless modified after ``modified_time`` (``If-Unmodified-Since``, the
        ``Modified_Time`` they were read with): one result per record, in order, not raised — a record changed since
        comes back with code ``ALREADY_MODIFIED`` (HTTP 412 when none was written)."""
        if len(records) > MAX_RECORDS_PER_WRITE:
            raise ValueError(f"at most {MAX_RECORDS_PER_WRITE} records per write, got {len(records)}")
        _, body = self.request("PUT", module, json={"data": records, "trigger": []},
                               headers={"If-Unmodified-Since": modified_time})
        results = (body or {}).get("data")
        if not isinstance(results, list) or len(results) != len(records):
            raise TransientError(f"ZOHO update {module}: answer does not hold one result per record")
        return results

    def current_user_id(self) -> str | None:
        """The CRM user this integration acts as (``Modified_By`` of its own writes); asked once."""
        if self._current_user_id is None:
            _, body = self.request("GET", "users", params={"type": "CurrentUser"})
            users = (body or {}).get("users") or []
            self._current_user_id = str(users[0]["id"]) if users else ""
        return self._current_user_id or None

    def get(self, module: str, record_id: str) -> dict[str, Any] | None:
        status, body = self.request("GET", f"{module}/{record_id}")
        if status == 204 or not body:
            return None
        data = body.get("data") or []
        return data[0] if data else None

    def search(self, module: str, field: str, value: str) -> list[dict[str, Any]]:
        escaped = value.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)").replace(",", "\\,")
        status, body = self.request("GET", f"{module}/search", params={"criteria": f"({field}:equals:{escaped})"})
        return [] if status == 204 or not body else list(body.get("data") or [])

    def list_records(self, module: str, fields: list[str]) -> Iterator[dict[str, Any]]:
        """Every record of a module with these fields (≤ 50): pages of 200, page tokens past 2,000 records — one
        credit per 200 records, where reading them one by one costs one each."""
        params: dict[str, Any] = {"fields": ",".join(fields[:LIST_MAX_FIELDS]), "per_page": LIST_PER_PAGE, "page": 1}
        while True:
            status, body = self.request("GET", module, params=params)
            if status == 204 or not body:
                return
            yield from body.get("data") or []
            info = body.get("info") or {}
            if not info.get("more_records"):
                return
            if info.get("next_page_token"):
                params = {"fields": params["fields"], "per_page": LIST_PER_PAGE, "page_token": info["next_page_token"]}
            else:
                params["page"] = int(params.get("page", 1)) + 1

    # --- notes and attachments of one record ---------------------------------------------------------------------
    def _related(self, module: str, record_id: str, kind: str) -> list[dict[str, Any]]:
        """Every note or attachment of a record (all pages; 204 = none)."""
        found: list[dict[str, Any]] = []
        page = 1
        while True:
            status, body = self.request("GET", f"{module}/{record_id}/{kind}",
                                        params={"page": page, "per_page": RELATED_PER_PAGE})
            if status == 204 or not body:
                return found
            found.extend(body.get("data") or [])
            if not (body.get("info") or {}).get("more_records"):
                return found
            page += 1

    def notes(self, module: str, record_id: str) -> list[dict[str, Any]]:
        return self._related(module, record_id, "Notes")

    def add_note(self, module: str, record_id: str, title: str, content: str) -> str:
        """A note on a record; returns its id.  Not idempotent: callers check first (see ``notes``)."""
        _, body = self.request("POST", f"{module}/{record_id}/Notes",
                               json={"data": [{"Note_Title": title, "Note_Content": content}]})
        return _created_id(body, f"note on {module} {record_id}")

    def attachments(self, module: str, record_id: str) -> list[dict[str, Any]]:
        return self._related(module, record_id, "Attachments")

    def upload_attachment(self, module: str, record_id: str, path: Path, name: str, content_type: str) -> str:
        """Upload a file as an attachment of a record, streamed from disk (multipart part ``file``); returns its id.
        Not idempotent: callers check first (see ``attachments``)."""
        with path.open("rb") as handle:
            _, body = self.request("POST", f"{module}/{record_id}/Attachments",
                                   files={"file": (name, handle, content_type)})
        return _created_id(body, f"attachment of {module} {record_id}")


RELATED_PER_PAGE = 200


def _missing_scope(method: str, path: str, resp: httpx.Response) -> MissingScope:
    scope = scope_for(method, path)
    url = resp.request.url.copy_with(query=None)
    return MissingScope(
        f"ZOHO refused {method} {url}: the OAuth grant of cdchub's refresh token lacks scope {scope} (or a broader "
        f"one) — OAUTH_SCOPE_MISMATCH; make a new grant with the scopes in README (ZOHO OAuth scopes) and set "
        f"CDCHUB_ZOHO__REFRESH_TOKEN to its refresh token", scope=scope, url=str(url))


def _created_id(body: dict[str, Any] | None, what: str) -> str:
    results = (body or {}).get("data")
    if not isinstance(results, list) or not results:
        raise TransientError(f"ZOHO {what}: no result in the answer")
    result = results[0]
    if result.get("status") != "success" or not (result.get("details") or {}).get("id"):
        raise PermanentError(f"ZOHO {what}: {result.get('code')} {result.get('message')} {result.get('details') or ''}",
                             code=result.get("code"))
    return str(result["details"]["id"])
