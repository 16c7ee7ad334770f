"""Kingdee K/3 Cloud WebAPI client: a ``LoginBySign`` session, the DynamicFormService calls, one error taxonomy.

Auth: ``AuthService.LoginBySign`` (``sign`` = SHA-256 of acctId, user, appId, appSecret and timestamp sorted
ordinally) opens a session kept in the ``kdservice-sessionid`` cookie. A call answered ``MsgCode`` 1 (会话信息已丢失)
logs in again and is retried **once**; a second loss is transient.
Errors (decided in ``classify`` only): HTTP 5xx/429, timeouts, transport errors, unparseable bodies, ``MsgCode`` 1
(after the retry), 4 (server exception) and 14 (call limit, as ``RateLimited``) are transient; ``MsgCode`` 2, 8, 9,
10, 11, 12 and other 4xx are permanent (``KingdeeApiError`` carries the code and the ``Errors`` list, each naming
its ``FieldName`` and ``DIndex``). Errors come with HTTP 200 on the real server: the status says little.
Idempotency: ``save`` of a new document (``FID`` 0) is **not** idempotent — a retried Save after a lost answer
creates a second document; look the document up by a business key before retrying a create.
Limits: ``execute_bill_query`` pages by ``MAX_QUERY_LIMIT`` (2,000) rows.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from connectors.common.token_cache import CachedToken, Token
from core.errors import PermanentError, RateLimited, TransientError

log = logging.getLogger(__name__)

STUB = "Kingdee.BOS.WebApi.ServicesStub"
MAX_QUERY_LIMIT = 2000
LCID_ZH_CN = 2052
SESSION_LOST = 1
TRANSIENT_MSG_CODES = frozenset({1, 4})
RATE_LIMIT_MSG_CODE = 14


@dataclass(frozen=True)
class KingdeeApiCredentials:
    base_url: str  # e.g. http://host:port/K3Cloud
    acct_id: str
    user: str
    app_id: str
    app_secret: str
    lcid: int = LCID_ZH_CN


class KingdeeApiError(PermanentError):
    """A permanent refusal; ``errors`` are the answer's ``Errors`` (``FieldName``, ``Message``, ``DIndex``)."""

    def __init__(self, message: str, msg_code: int, errors: list[dict[str, Any]]) -> None:
        super().__init__(message, code=f"MsgCode {msg_code}")
        self.msg_code = msg_code
        self.errors = errors

    @property
    def field_names(self) -> list[str]:
        return [str(e["FieldName"]) for e in self.errors if e.get("FieldName")]


class KingdeeTransientError(TransientError):
    def __init__(self, message: str, msg_code: int | None = None) -> None:
        super().__init__(message)
        self.msg_code = msg_code


@dataclass
class OperationResult:
    """What Save/BatchSave/Submit/Audit/UnAudit/Delete did: ``SuccessEntitys`` and ``Errors`` of the answer."""

    successes: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    msg_code: int = 0
    need_return_data: list[Any] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and self.msg_code == 0

    @property
    def ids(self) -> list[Any]:
        return [s["Id"] for s in self.successes]

    @property
    def numbers(self) -> list[str]:
        return [s["Number"] for s in self.successes]


def login_sign(acct_id: str, user: str, app_id: str, app_secret: str, timestamp: str) -> str:
    return hashlib.sha256("".join(sorted([acct_id, user, app_id, app_secret, timestamp])).encode()).hexdigest()


def _status_of(body: Any) -> dict[str, Any] | None:
    """The ``ResponseStatus`` inside an answer, also inside ExecuteBillQuery's ``[[{...}]]`` error wrapping."""
    if isinstance(body, list) and body and isinstance(body[0], list) and body[0] and isinstance(body[0][0], dict):
        body = body[0][0]
    if isinstance(body, dict):
        result = body.get("Result")
        if isinstance(result, dict):
            status = result.get("ResponseStatus")
            return status if isinstance(status, dict) else None
    return None


def classify(status: dict[str, Any], what: str) -> Exception | None:
    """The error a failed ``ResponseStatus`` means, or None if it succeeded. The one place deciding retries."""
    if status.get("IsSuccess", True) and not status.get("Errors"):
        return None
    msg_code = int(status.get("MsgCode") or 0)
    errors = list(status.get("Errors") or [])
    text = "; ".join(f"{e.get('FieldName') or '-'}: {e.get('Message')}" for e in errors) or "failed"
    message = f"Kingdee {what}: MsgCode {msg_code}: {text}"
    if msg_code == RATE_LIMIT_MSG_CODE:
        return RateLimited(message)
    if msg_code in TRANSIENT_MSG_CODES:
        return KingdeeTransientError(message, msg_code)
    return KingdeeApiError(message, msg_code, errors)


#: How long a session is used before a new login (the server ends idle sessions sooner: then MsgCode 1 says so).
SESSION_REUSE_S = 2 * 3600.0
SESSION_COOKIE = "kdservice-sessionid"


class KingdeeSession(CachedToken):
    """The WebAPI session, shared by every process of the installation (``token_cache.py``): one login, renewed
    when the server says it is lost."""

    def __init__(self, client: KingdeeWebApiClient) -> None:
        c = client.credentials
        super().__init__(f"kingdee-{c.base_url}-{c.acct_id}-{c.user}")
        self._client = client

    def _fetch(self) -> Token:
        session_id, user_id = self._client._login_by_sign()
        return Token(session_id, time.time() + SESSION_REUSE_S, {"user_id": user_id or ""})


class KingdeeWebApiClient:
    """Thread-safe; one session shared by all calls (and all processes), re-opened when the server says it is
    lost."""

    def __init__(
        self, credentials: KingdeeApiCredentials, *, timeout_s: float = 30.0, http: httpx.Client | None = None
    ) -> None:
        self.credentials = credentials
        self._http = http or httpx.Client(timeout=timeout_s)
        self._lock = threading.Lock()
        self.session = KingdeeSession(self)

    @property
    def login_count(self) -> int:
        """Logins this client made (tests check re-logins)."""
        return self.session.mint_count

    @property
    def user_id(self) -> str | None:
        """The Kingdee user this integration writes as (``FMODIFIERID`` of its own saves), from the login context."""
        current = self.session.current
        return (current.extra.get("user_id") or None) if current else None

    def close(self) -> None:
        self._http.close()

    # --- transport -----------------------------------------------------------------------------------------

    def _url(self, service: str) -> str:
        return f"{self.credentials.base_url.rstrip('/')}/{STUB}.{service}.common.kdsvc"

    def _post(self, service: str, body: Any) -> Any:
        try:
            resp = self._http.post(self._url(service), json=body)
        except httpx.HTTPError as exc:
            raise KingdeeTransientError(f"Kingdee {service}: {exc!r}") from exc
        if resp.status_code == 429 or resp.status_code >= 500:
            raise KingdeeTransientError(f"Kingdee {service}: HTTP {resp.status_code}")
        try:
            parsed = resp.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise KingdeeTransientError(f"Kingdee {service}: unparseable answer (HTTP {resp.status_code})") from exc
        if resp.status_code >= 400 and _status_of(parsed) is None:
            raise KingdeeApiError(f"Kingdee {service}: HTTP {resp.status_code}", 0, [])
        return parsed

    def _login_by_sign(self) -> tuple[str, str | None]:
        """``LoginBySign``: (``KDSVCSessionId``, the user id of the login context). Wrong credentials are
        permanent."""
        c = self.credentials
        timestamp = str(int(time.time()))
        sign = login_sign(c.acct_id, c.user, c.app_id, c.app_secret, timestamp)
        with self._lock:
            self._http.cookies.clear()
            body = self._post(
                "AuthService.LoginBySign", {"parameters": [c.acct_id, c.user, c.app_id, timestamp, sign, c.lcid]}
            )
            if not isinstance(body, dict) or body.get("LoginResultType") != 1:
                message = body.get("Message") if isinstance(body, dict) else body
                raise KingdeeApiError(f"Kingdee login refused: {message}", 0, [])
            context = body.get("Context") or {}
            return str(body.get("KDSVCSessionId") or ""), (
                str(context["UserId"]) if context.get("UserId") is not None else None)

    def _use_session(self) -> str:
        """The installation's session, as this client's cookie."""
        session_id = self.session.token()
        if self._http.cookies.get(SESSION_COOKIE) != session_id:
            with self._lock:
                self._http.cookies.clear()
                self._http.cookies.set(SESSION_COOKIE, session_id)
        return session_id

    def login(self) -> str:
        """Open a new session with ``LoginBySign`` (for every process); returns ``KDSVCSessionId``."""
        current = self.session.current
        if current is not None:
            self.session.invalidate(current.value)
        return self._use_session()

    def call(self, service: str, body: dict[str, Any], what: str | None = None) -> Any:
        """POST one business call; re-login and retry once on a lost session. Returns the parsed answer."""
        what = what or service
        session_id = self._use_session()
        answer = self._post(service, body)
        status = _status_of(answer)
        if status is not None and int(status.get("MsgCode") or 0) == SESSION_LOST and not status.get("IsSuccess"):
            log.info("Kingdee session lost; logging in again")
            self.session.invalidate(session_id)
            self._use_session()
            answer = self._post(service, body)
            status = _status_of(answer)
        if status is not None:
            error = classify(status, what)
            if error is not None and not isinstance(error, KingdeeApiError):
                raise error
        return answer

    def _operation(self, service: str, form_id: str, data: dict[str, Any]) -> OperationResult:
        answer = self.call(f"DynamicFormService.{service}", {"formid": form_id, "data": data}, f"{service} {form_id}")
        result = answer.get("Result", {}) if isinstance(answer, dict) else {}
        status = result.get("ResponseStatus") or {}
        return OperationResult(
            successes=list(status.get("SuccessEntitys") or []),
            errors=list(status.get("Errors") or []),
            msg_code=int(status.get("MsgCode") or 0),
            need_return_data=list(result.get("NeedReturnData") or []),
        )

    @staticmethod
    def _raise_if_failed(result: OperationResult, what: str) -> OperationResult:
        if not result.ok:
            error = classify({"IsSuccess": False, "MsgCode": result.msg_code, "Errors": result.errors}, what)
            assert error is not None
            raise error
        return result

    # --- DynamicFormService --------------------------------------------------------------------------------

    def save(self, form_id: str, model: dict[str, Any], **options: Any) -> OperationResult:
        """Save one document; raises ``KingdeeApiError`` (naming the fields) if it was refused."""
        result = self._operation("Save", form_id, {"Model": model, **options})
        return self._raise_if_failed(result, f"Save {form_id}")

    def batch_save(self, form_id: str, models: Sequence[dict[str, Any]], **options: Any) -> OperationResult:
        """Save several documents; per-document refusals are returned (``errors`` with ``DIndex``), not raised."""
        return self._operation("BatchSave", form_id, {"Model": list(models), **options})

    def _status_change(
        self, op: str, form_id: str, numbers: Sequence[str] = (), ids: Sequence[Any] = ()
    ) -> OperationResult:
        data: dict[str, Any] = {"Numbers": list(numbers)} if numbers else {}
        if ids:
            data["Ids"] = ",".join(str(i) for i in ids)
        return self._raise_if_failed(self._operation(op, form_id, data), f"{op} {form_id}")

    def business_info(self, form_id: str) -> dict[str, Any]:
        """The form's metadata (``QueryBusinessInfo``): ``Entrys`` with their ``Fields`` (``Key``, ``MustInput``)."""
        answer = self.call("DynamicFormService.QueryBusinessInfo", {"formid": form_id, "data": {"FormId": form_id}},
                           f"QueryBusinessInfo {form_id}")
        result = answer.get("Result", {}) if isinstance(answer, dict) else {}
        status = result.get("ResponseStatus") or {}
        if not status.get("IsSuccess", False):
            raise KingdeeApiError(f"QueryBusinessInfo {form_id} refused", int(status.get("MsgCode") or 0),
                                  list(status.get("Errors") or []))
        return dict(result.get("NeedReturnData") or {})

    def push(self, form_id: str, target_form_id: str, numbers: Sequence[str] = (),
             ids: Sequence[Any] = ()) -> OperationResult:
        """下推: a ``target_form_id`` bill made from these source bills by the default conversion rule (saved, not
        submitted); its id and number are in the result's successes."""
        data: dict[str, Any] = {"TargetFormId": target_form_id, "IsEnableDefaultRule": "true"}
        if numbers:
            data["Numbers"] = list(numbers)
        if ids:
            data["Ids"] = ",".join(str(i) for i in ids)
        return self._raise_if_failed(self._operation("Push", form_id, data), f"Push {form_id} → {target_form_id}")

    def submit(self, form_id: str, numbers: Sequence[str] = (), ids: Sequence[Any] = ()) -> OperationResult:
        return self._status_change("Submit", form_id, numbers, ids)

    def audit(self, form_id: str, numbers: Sequence[str] = (), ids: Sequence[Any] = ()) -> OperationResult:
        return self._status_change("Audit", form_id, numbers, ids)

    def unaudit(self, form_id: str, numbers: Sequence[str] = (), ids: Sequence[Any] = ()) -> OperationResult:
        return self._status_change("UnAudit", form_id, numbers, ids)

    def delete(self, form_id: str, numbers: Sequence[str] = (), ids: Sequence[Any] = ()) -> OperationResult:
        return self._status_change("Delete", form_id, numbers, ids)

    def view(self, form_id: str, *, number: str | None = None, id: Any = None) -> dict[str, Any]:
        data = {"Number": number} if number else {"Id": str(id)}
        answer = self.call("DynamicFormService.View", {"formid": form_id, "data": data}, f"View {form_id}")
        status = _status_of(answer)
        if status is not None:
            error = classify(status, f"View {form_id}")
            if error is not None:
                raise error
        result: dict[str, Any] = answer["Result"]["Result"]
        return result

    def execute_bill_query(
        self,
        form_id: str,
        field_keys: Sequence[str] | str,
        *,
        filter_string: str = "",
        order_string: str = "",
        start_row: int = 0,
        limit: int = MAX_QUERY_LIMIT,
    ) -> list[list[Any]]:
        keys = field_keys if isinstance(field_keys, str) else ",".join(field_keys)
        data = {
            "FormId": form_id, "FieldKeys": keys, "FilterString": filter_string, "OrderString": order_string,
            "StartRow": start_row, "Limit": min(limit, MAX_QUERY_LIMIT),
        }  # fmt: skip
        answer = self.call("DynamicFormService.ExecuteBillQuery", {"data": data}, f"ExecuteBillQuery {form_id}")
        status = _status_of(answer)
        if status is not None:
            error = classify(status, f"ExecuteBillQuery {form_id}")
            raise error if error is not None else KingdeeTransientError("ExecuteBillQuery: unexpected answer")
        if not isinstance(answer, list):
            raise KingdeeTransientError(f"ExecuteBillQuery {form_id}: answer is not an array")
        return answer

    def query_all(
        self, form_id: str, field_keys: Sequence[str] | str, *, filter_string: str = "", order_string: str = "",
        page_size: int = MAX_QUERY_LIMIT,
    ) -> Iterator[list[Any]]:  # fmt: skip
        """Every row, page by page. Give an ``order_string`` on a unique key, or pages may overlap."""
        start = 0
        while True:
            rows = self.execute_bill_query(
                form_id, field_keys, filter_string=filter_string, order_string=order_string, start_row=start,
                limit=page_size,
            )  # fmt: skip
            yield from rows
            if len(rows) < min(page_size, MAX_QUERY_LIMIT):
                return
            start += len(rows)
