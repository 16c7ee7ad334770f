"""Huilianyi (汇联易) Open API client: OAuth client credentials, expense report queries and write-backs.

Auth: ``POST {base_url}/oauth/token`` with HTTP Basic ``appId:appSecret`` and
``grant_type=client_credentials``. The token is cached until shortly before ``expires_in`` runs out; a 401
makes the client fetch a token and retry the call **once**. The server (Spring Security OAuth2) hands out the
*same* token again while it is valid, with the remaining ``expires_in``: when that happens the cache trusts
the full remaining time instead of minting again and again.

Reading: :meth:`HuilianyiClient.expense_reports` pages through ``POST /api/open/expenseReport/v2`` (bare JSON
array, pages from 1) until a page is empty or shorter than the page size. The window is ``lastModifyStartDate
<= lastModifiedDate < lastModifyEndDate`` on the simulator (inclusive start, exclusive end); request times are
sent as UTC+8 wall-clock strings to the second, so poll with whole-second boundaries and use each window's end
as the next start. Paging is by offset over live data: a report modified during the walk moves to a later
window and shifts the pages after it (one report may be skipped in this walk and is seen again in the next
window). Deduplicate by ``(businessCode, lastModifiedDate)``.

Errors (decided in :func:`_raise_for`): timeouts, transport errors, 429 (``RateLimited``), 5xx and unparseable
bodies are ``TransientError``; any other 4xx is ``PermanentError`` whose ``code`` is the answer's
``errorCode`` (or OAuth ``error``). Write-backs are not idempotent on the server except ``update_journal_no``:
retrying ``audit_pass`` after a lost answer may get ``EXPENSE_REPORT_STATUS_ERROR`` although the first call
worked — check :meth:`detail` then.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx

from connectors.common.token_cache import CachedToken, Token
from connectors.huilianyi.settings import HuilianyiSettings
from core.errors import PermanentError, RateLimited, TransientError

log = logging.getLogger(__name__)

CHINA_TZ = timezone(timedelta(hours=8))
MAX_PAGE_SIZE = 100
TOKEN_EXPIRY_MARGIN_S = 60.0
EXPENSE_REPORT_ENTITY_TYPE = 1002  # approvals/pass entityType of an expense report
NOT_FOUND_CODE = "EXPENSE_REPORT_NOT_FOUND"


def request_time(moment: datetime) -> str:
    """An aware datetime → ``yyyy-MM-dd HH:mm:ss`` in UTC+8 as the API expects (drops sub-seconds)."""
    if moment.tzinfo is None:
        raise ValueError("give an aware datetime: Huilianyi request times are UTC+8 wall-clock times")
    return moment.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M:%S")


def parse_instant(text: str) -> datetime:
    """A response time (``2024-05-02T03:17:33Z`` or ``...33.250Z``) → an aware datetime in UTC."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _json_or_none(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except (json.JSONDecodeError, ValueError):
        return None


def _error_code(body: Any) -> str | None:
    if isinstance(body, dict):
        code = body.get("errorCode") or body.get("error")
        return str(code) if code is not None else None
    return None


def _raise_for(what: str, resp: httpx.Response, body: Any) -> None:
    """The one place that decides which answers are errors, and whether they are worth retrying."""
    status = resp.status_code
    code = _error_code(body)
    message = (body.get("message") or body.get("error_description")) if isinstance(body, dict) else None
    if status == 429:
        retry_after = resp.headers.get("Retry-After")
        raise RateLimited(
            f"Huilianyi {what}: 429 {code or ''}",
            retry_after=float(retry_after) if retry_after and retry_after.isdigit() else None,
        )
    if status >= 500:
        raise TransientError(f"Huilianyi {what}: HTTP {status} {code or ''}")
    if body is None:
        raise TransientError(f"Huilianyi {what}: HTTP {status} with a malformed body")
    if status >= 400:
        raise PermanentError(f"Huilianyi {what}: HTTP {status} {code}: {message}", code=code)


class TokenManager(CachedToken):
    """Caches the access token; fetches one only when it is missing, about to expire, or refused."""

    def __init__(self, settings: HuilianyiSettings, http: httpx.Client) -> None:
        super().__init__(f"huilianyi-{settings.base_url}-{settings.app_id}")
        self._settings = settings
        self._http = http

    @property
    def fetch_count(self) -> int:
        return self.mint_count

    def _fetch(self) -> Token:
        s = self._settings
        now = time.time()
        try:
            resp = self._http.post(
                f"{s.base_url}/oauth/token",
                auth=(s.app_id, s.app_secret.get_secret_value()),
                data={"grant_type": "client_credentials", "scope": s.scope},
            )
        except httpx.HTTPError as exc:
            raise TransientError(f"Huilianyi token request failed: {exc!r}") from exc
        body = _json_or_none(resp)
        _raise_for("token request", resp, body)
        if not isinstance(body, dict) or not body.get("access_token"):
            raise TransientError(f"Huilianyi token request answered {resp.status_code} without access_token")
        token = str(body["access_token"])
        expires_in = float(body.get("expires_in") or 0)
        # The same token again means the server's clock decides: use it for all of its remaining time.
        previous = self.current.value if self.current else None
        margin = 0.0 if token == previous else min(TOKEN_EXPIRY_MARGIN_S, expires_in / 10)
        return Token(token, now + expires_in - margin)


class HuilianyiClient:
    """Thread-safe; one per process. Calls raise ``TransientError``/``PermanentError`` (see module doc)."""

    def __init__(self, settings: HuilianyiSettings, http: httpx.Client | None = None) -> None:
        self.settings = settings
        self._http = http or httpx.Client(timeout=settings.timeout_s)
        self.tokens = TokenManager(settings, self._http)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HuilianyiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """One API call → the parsed JSON body. A refused token is replaced and the call retried once."""
        what = f"{method} {path}"
        extra_headers = kwargs.pop("headers", None) or {}
        for attempt in (1, 2):
            token = self.tokens.token()
            headers = {**extra_headers, "Authorization": f"Bearer {token}"}
            try:
                resp = self._http.request(method, f"{self.settings.base_url}{path}", headers=headers, **kwargs)
            except httpx.TimeoutException as exc:
                raise TransientError(f"Huilianyi {what} timed out") from exc
            except httpx.HTTPError as exc:
                raise TransientError(f"Huilianyi {what} failed: {exc!r}") from exc
            body = _json_or_none(resp)
            if resp.status_code == 401:
                self.tokens.invalidate(token)
                if attempt == 1:
                    log.info("Huilianyi refused the access token (%s); fetching a new one", _error_code(body))
                    continue
                raise TransientError(f"Huilianyi {what}: token refused twice ({_error_code(body)})")
            _raise_for(what, resp, body)
            return body
        raise AssertionError("unreachable")

    # -- reading ---------------------------------------------------------------------------------------------
    def expense_reports(
        self,
        start: datetime | None,
        end: datetime | None,
        statuses: Sequence[int] | None = None,
        *,
        page_size: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Reports with ``start <= lastModifiedDate < end`` (and a status in ``statuses``), page by page."""
        size = page_size or self.settings.page_size
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be from 1 to {MAX_PAGE_SIZE}")
        query: dict[str, Any] = {"size": size}
        if start is not None:
            query["lastModifyStartDate"] = request_time(start)
        if end is not None:
            query["lastModifyEndDate"] = request_time(end)
        if statuses:
            query["statusList"] = [int(s) for s in statuses]
        page = 1
        while True:
            body = self.request("POST", "/api/open/expenseReport/v2", json={**query, "page": page})
            if not isinstance(body, list):
                if _error_code(body):
                    raise PermanentError(f"Huilianyi expenseReport/v2: {body}", code=_error_code(body))
                raise TransientError(f"Huilianyi expenseReport/v2 page {page}: not a JSON array")
            yield from body
            if len(body) < size:
                return
            page += 1

    def detail(self, business_code: str) -> dict[str, Any] | None:
        """One report by business code; ``None`` if the server does not know it."""
        try:
            body = self.request("GET", "/api/open/expenseReport/detail", params={"businessCode": business_code})
        except PermanentError as exc:
            if exc.code == NOT_FOUND_CODE:
                return None
            raise
        if not isinstance(body, dict):
            raise TransientError(f"Huilianyi detail {business_code}: not a JSON object")
        return body

    # -- write-backs -----------------------------------------------------------------------------------------
    def audit_pass(
        self, business_code: str, *, operator: str, approval_txt: str = "", company_oid: str | None = None
    ) -> None:
        """Finance audit passed: 1003 → 1004."""
        self._audit("pass", business_code, operator, approval_txt, company_oid)

    def audit_reject(
        self, business_code: str, *, operator: str, approval_txt: str, company_oid: str | None = None
    ) -> None:
        """Finance rejects: 1003 → 1001 with ``rejectType`` 1003."""
        self._audit("reject", business_code, operator, approval_txt, company_oid)

    def _audit(
        self, verdict: str, business_code: str, operator: str, approval_txt: str, company_oid: str | None
    ) -> None:
        body = {"businessCode": business_code, "operator": operator, "approvalTxt": approval_txt}
        if company_oid:
            body["companyOID"] = company_oid
        self.request("POST", f"/api/open/expenseReport/audit/{verdict}", json=body)

    def approvals_pass(
        self,
        business_code: str,
        *,
        operator: str,
        approver: str | None = None,
        approval_txt: str = "",
        entity_type: int = EXPENSE_REPORT_ENTITY_TYPE,
    ) -> None:
        """Approve in the approval chain: 1002 → 1003."""
        self.request(
            "POST",
            "/api/open/approvals/pass",
            json={
                "businessCode": business_code,
                "entityType": entity_type,
                "operator": operator,
                "approver": approver or operator,
                "approvalTxt": approval_txt,
            },
        )

    def update_journal_no(self, business_code: str, journal_no: str, company_code: str | None = None) -> None:
        """Write the ERP bill/voucher number back. Idempotent: the same number again changes nothing."""
        params = {"businessKey": business_code, "journalNo": journal_no}
        if company_code:
            params["companyCode"] = company_code
        self.request("PUT", "/api/open/expenseReport/update/journalNo", params=params)
