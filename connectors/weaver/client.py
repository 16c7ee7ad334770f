"""Weaver e-cology 9 OA REST client: RSA token auth, workflow requests, attachments.

Auth (``/api/ec/dev/auth/*``):

1. ``regist`` once per app id with this client's RSA public key (``cpk``) → ``secrit`` and the server key
   ``spk``. Both are kept in ``state_file`` (JSON, mode 0600) with the client key pair, so a restart does not
   register again. A registration the server no longer knows (``applytoken`` refused) is redone once.
2. ``applytoken`` with ``secret = base64(RSA_PKCS1v1_5(secrit, spk))`` → a token, cached until shortly before
   its lifetime (``token_ttl_s``, sent as the ``time`` header) runs out.
3. Every business call sends ``appid``, ``token`` and ``userid = base64(RSA(spk, <OA user id>))``. The answer
   ``{"code":-1,"status":false,"msg":"token不存在或者超时：…"}`` (HTTP 200!) gets one new token and one retry.

Errors (one table, :func:`classify_service_code`): timeouts, transport errors, 429, 5xx, unparseable bodies
and ``SYSTEM_INNER_ERROR`` or unknown codes are :class:`TransientError`; ``PARAM_ERROR``, ``NO_PERMISSION``,
``USER_EXCEPTION``, other auth refusals and other 4xx are :class:`PermanentError`.

Idempotency: ``create_request`` is **not** idempotent — a timeout after the OA stored the request and a retry
make two requests. Callers that retry should first look for their request (e.g. ``my_requests``) by a business
key in the form (a CRM id).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pydantic import BaseModel, ConfigDict, SecretStr

from connectors.common.token_cache import CachedToken, Token
from core.errors import PermanentError, RateLimited, TransientError

log = logging.getLogger(__name__)

REGIST_PATH = "/api/ec/dev/auth/regist"
APPLY_TOKEN_PATH = "/api/ec/dev/auth/applytoken"
SERVICE_PATH = "/api/workflow/paService"
UPLOAD_PATH = "/api/doc/upload/uploadFile2Doc"
HRM_USERS_PATH = "/api/hrm/resful/getHrmUserInfoWithPage"
TOKEN_ERROR_MARK = "token不存在或者超时"
TOKEN_EXPIRY_MARGIN_S = 60.0
CLIENT_KEY_BITS = 2048
DOWNLOAD_CHUNK = 64 * 1024
PERMANENT_CODES = frozenset({"PARAM_ERROR", "NO_PERMISSION", "USER_EXCEPTION"})


class WeaverConfig(BaseModel):
    """Where the OA is and who the client is; validated at start."""

    model_config = ConfigDict(frozen=True)

    base_url: str
    app_id: SecretStr
    user_id: int = 1  # the OA user business calls act as (1 = 系统管理员), overridable per call
    state_file: Path  # regist answer (secrit, spk) and the client key pair, JSON, mode 0600
    token_ttl_s: int = 1800  # asked for with the `time` header; the client renews before it runs out
    timeout_s: float = 30.0


def classify_service_code(code: str) -> type[TransientError] | type[PermanentError] | None:
    """None for ``SUCCESS``; the error class for anything else (unknown codes count as transient)."""
    if code == "SUCCESS":
        return None
    return PermanentError if code in PERMANENT_CODES else TransientError


@dataclass(frozen=True)
class Registration:
    app_id: str
    secrit: str
    spk: str
    client_private_pem: str


@dataclass(frozen=True)
class DownloadedFile:
    path: Path
    name: str
    content_type: str
    size: int


def _encrypt(spk_b64: str, text: str) -> str:
    key = serialization.load_der_public_key(base64.b64decode(spk_b64))
    assert isinstance(key, rsa.RSAPublicKey)
    return base64.b64encode(key.encrypt(text.encode("utf-8"), padding.PKCS1v15())).decode("ascii")


def _public_b64(private_pem: str) -> str:
    key = serialization.load_pem_private_key(private_pem.encode("ascii"), password=None)
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode("ascii")


def _new_private_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=CLIENT_KEY_BITS)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


def _json_or_none(resp: httpx.Response) -> dict[str, Any] | None:
    try:
        body = resp.json()
    except (json.JSONDecodeError, ValueError):
        return None
    return body if isinstance(body, dict) else None


def _is_token_error(body: Mapping[str, Any] | None) -> bool:
    return bool(body) and body.get("status") is False and TOKEN_ERROR_MARK in str(body.get("msg", ""))  # type: ignore[union-attr]


def _filename(disposition: str | None) -> str | None:
    """A Content-Disposition's file name: ``filename*`` (RFC 5987) first, else ``filename`` (%-decoded)."""
    if not disposition:
        return None
    plain = None
    for part in disposition.split(";"):
        key, _, value = part.strip().partition("=")
        value = value.strip().strip('"')
        if key.lower() == "filename*":
            _, _, rest = value.partition("'")
            return unquote(rest.partition("'")[2])
        if key.lower() == "filename":
            plain = unquote(value)
    return plain


def _field_list(values: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"fieldName": k, "fieldValue": v} for k, v in values.items()]


def detail_table(table_db_name: str, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One ``detailData`` entry from plain row dicts."""
    return {
        "tableDBName": table_db_name,
        "workflowRequestTableRecords": [
            {"recordOrder": i, "workflowRequestTableFields": _field_list(row)} for i, row in enumerate(rows)
        ],
    }


class WeaverToken(CachedToken):
    def __init__(self, client: WeaverClient) -> None:
        config = client.config
        super().__init__(f"weaver-{config.base_url}-{config.app_id.get_secret_value()[:12]}")
        self._client = client

    def _fetch(self) -> Token:
        return self._client._new_token()


class WeaverClient:
    """Thread-safe; one per process. Calls raise ``TransientError``/``PermanentError`` (see module doc)."""

    def __init__(self, config: WeaverConfig, http: httpx.Client | None = None) -> None:
        self.config = config
        self._http = http or httpx.Client(timeout=config.timeout_s)
        self._lock = threading.RLock()
        self._registration: Registration | None = None
        #: The OA token, shared by every process of the installation (``token_cache.py``).
        self.tokens = WeaverToken(self)
        self.regist_count = 0

    @property
    def token_count(self) -> int:
        """Tokens this client applied for (tests check renewals)."""
        return self.tokens.mint_count

    def close(self) -> None:
        self._http.close()

    def _url(self, path: str) -> str:
        return path if path.startswith("http") else f"{self.config.base_url.rstrip('/')}/{path.lstrip('/')}"

    def _post(self, path: str, headers: dict[str, str]) -> dict[str, Any]:
        try:
            resp = self._http.post(self._url(path), headers=headers)
        except httpx.HTTPError as exc:
            raise TransientError(f"Weaver {path} failed: {exc!r}") from exc
        body = _json_or_none(resp)
        if resp.status_code >= 500 or resp.status_code == 429 or body is None:
            raise TransientError(f"Weaver {path}: HTTP {resp.status_code}, body unusable")
        return body

    # -- registration and tokens -----------------------------------------------------------------------------
    def _load_registration(self) -> Registration | None:
        try:
            raw = json.loads(self.config.state_file.read_text(encoding="utf-8"))
            registration = Registration(**raw)
        except (OSError, ValueError, TypeError):
            return None
        return registration if registration.app_id == self.config.app_id.get_secret_value() else None

    def _save_registration(self, registration: Registration) -> None:
        path = self.config.state_file
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:  # mkstemp: mode 0600
            json.dump(registration.__dict__, handle)
        os.replace(tmp, path)

    def regist(self) -> Registration:
        """Register this client (its public key) with the OA and persist the answer."""
        with self._lock:
            previous = self._registration or self._load_registration()
            private_pem = previous.client_private_pem if previous else _new_private_pem()
            app_id = self.config.app_id.get_secret_value()
            body = self._post(REGIST_PATH, {"appid": app_id, "cpk": _public_b64(private_pem)})
            if body.get("status") is not True or not body.get("secrit") or not body.get("spk"):
                raise PermanentError(f"Weaver regist refused: {body.get('msg')}", code=str(body.get("code")))
            self._registration = Registration(app_id, str(body["secrit"]), str(body["spk"]), private_pem)
            self._save_registration(self._registration)
            self.regist_count += 1
            log.info("registered with the Weaver OA as app %s…", app_id[:8])
            return self._registration

    def registration(self) -> Registration:
        with self._lock:
            if self._registration is None:
                self._registration = self._load_registration() or self.regist()
            return self._registration

    def _apply(self, registration: Registration) -> dict[str, Any]:
        headers = {
            "appid": registration.app_id,
            "secret": _encrypt(registration.spk, registration.secrit),
            "time": str(self.config.token_ttl_s),
        }
        return self._post(APPLY_TOKEN_PATH, headers)

    def token(self) -> str:
        return self.tokens.token()

    def _new_token(self) -> Token:
        """Apply for a token with the installation's registration (re-read: another process may have renewed it),
        registering again once if the OA has forgotten us."""
        with self._lock:
            self._registration = self._load_registration() or self._registration
            body = self._apply(self.registration())
            if body.get("status") is not True:
                # The OA may have forgotten us (registration reset, new server key): register again, once.
                log.warning("Weaver applytoken refused (%s); registering again", body.get("msg"))
                body = self._apply(self.regist())
            if body.get("status") is not True or not body.get("token"):
                raise PermanentError(
                    f"Weaver applytoken refused: {body.get('msg')}", code=str(body.get("code"))
                )
            return Token(str(body["token"]), time.time() + max(1.0, self.config.token_ttl_s - TOKEN_EXPIRY_MARGIN_S))

    def invalidate(self, token: str) -> None:
        self.tokens.invalidate(token)

    def _headers(self, token: str, user_id: int | None) -> dict[str, str]:
        registration = self.registration()
        user = str(user_id if user_id is not None else self.config.user_id)
        return {"appid": registration.app_id, "token": token, "userid": _encrypt(registration.spk, user)}

    # -- calls -----------------------------------------------------------------------------------------------
    def call(self, method: str, path: str, *, user_id: int | None = None, checked: bool = True,
             **kwargs: Any) -> dict[str, Any]:
        """One business call; returns the whole answer. A refused token is replaced once.  ``checked=False``:
        the answer's ``code`` is the caller's to read (APIs outside the workflow services use other codes)."""
        for attempt in (1, 2):
            token = self.token()
            try:
                resp = self._http.request(
                    method, self._url(path), headers=self._headers(token, user_id), **kwargs
                )
            except httpx.TimeoutException as exc:
                raise TransientError(f"Weaver {method} {path} timed out") from exc
            except httpx.HTTPError as exc:
                raise TransientError(f"Weaver {method} {path} failed: {exc!r}") from exc
            body = _json_or_none(resp)
            if _is_token_error(body) and attempt == 1:
                self.invalidate(token)
                continue
            if not checked and body is not None and resp.status_code < 400:
                return body
            return self._checked(method, path, resp, body)
        raise TransientError(f"Weaver {method} {path}: token refused twice")

    def _checked(
        self, method: str, path: str, resp: httpx.Response, body: dict[str, Any] | None
    ) -> dict[str, Any]:
        where = f"Weaver {method} {path}"
        if resp.status_code == 429:
            retry_after = resp.headers.get("Retry-After")
            raise RateLimited(f"{where}: 429", retry_after=float(retry_after) if retry_after else None)
        if resp.status_code >= 500:
            raise TransientError(f"{where}: HTTP {resp.status_code} {(body or {}).get('code', '')}")
        if body is None:
            raise TransientError(f"{where}: HTTP {resp.status_code} with a malformed body")
        if body.get("status") is False and isinstance(body.get("code"), int):
            raise PermanentError(f"{where}: refused: {body.get('msg')}", code=str(body.get("code")))
        if resp.status_code >= 400:
            raise PermanentError(f"{where}: HTTP {resp.status_code}: {body}", code=str(body.get("code")))
        code = str(body.get("code", ""))
        error = classify_service_code(code)
        if error is PermanentError:
            raise PermanentError(f"{where}: {code}: {body.get('errMsg')}", code=code)
        if error is not None:
            raise TransientError(f"{where}: {code or 'no code'}: {body.get('errMsg')}")
        return body

    def _service(self, name: str, *, user_id: int | None = None, **kwargs: Any) -> Any:
        method = "GET" if name.startswith("get") and "params" in kwargs else "POST"
        return self.call(method, f"{SERVICE_PATH}/{name}", user_id=user_id, **kwargs).get("data")

    # -- people --------------------------------------------------------------------------------------------
    def users(self, *, page_size: int = 500) -> list[dict[str, Any]]:
        """The OA's people (HRM ``getHrmUserInfoWithPage``): ``id``, ``loginid``, ``lastname``, ``email``, …,
        every page."""
        out: list[dict[str, Any]] = []
        page = 1
        while True:
            body = self.call("POST", HRM_USERS_PATH, data={"params": json.dumps({"curpage": page,
                                                                               "pagesize": page_size})},
                             checked=False)
            if str(body.get("code")) != "1":
                raise PermanentError(f"Weaver HRM user list refused: {body.get('errMsg') or body}",
                                     code=str(body.get("code")))
            data = body.get("data") or {}
            rows = list(data.get("dataList") or [])
            out += rows
            if not rows or len(out) >= int(data.get("totalSize") or 0):
                return out
            page += 1

    # -- workflow requests -----------------------------------------------------------------------------------
    def create_request(
        self,
        workflow_id: int,
        main_data: Mapping[str, Any],
        *,
        request_name: str | None = None,
        detail_data: Sequence[Mapping[str, Any]] = (),
        submit: bool = True,
        remark: str | None = None,
        user_id: int | None = None,
        as_json: bool = False,
    ) -> int:
        """Create (and with ``submit`` send on to the first approval node) a request; returns its id.

        ``detail_data`` entries are :func:`detail_table` dicts. Form-encoded with JSON strings by default (the
        common deployment); ``as_json`` sends a JSON body instead.
        """
        payload: dict[str, Any] = {
            "workflowId": str(workflow_id),
            "requestName": request_name or "",
            "mainData": _field_list(main_data),
            "detailData": list(detail_data),
            "otherParams": {"isnextflow": "1" if submit else "0"},
            "remark": remark or "",
        }
        if as_json:
            data = self._service("doCreateRequest", user_id=user_id, json=payload)
        else:
            form = {
                k: v if isinstance(v, str) else json.dumps(v, ensure_ascii=False) for k, v in payload.items()
            }
            data = self._service("doCreateRequest", user_id=user_id, data=form)
        try:
            return int(data["requestid"])
        except (TypeError, KeyError, ValueError) as exc:
            raise TransientError(f"Weaver doCreateRequest: no requestid in {data!r}") from exc

    def submit_request(
        self,
        request_id: int,
        *,
        remark: str | None = None,
        main_data: Mapping[str, Any] | None = None,
        user_id: int | None = None,
    ) -> None:
        """Approve (or, on the create node, submit — with edited ``main_data`` after a rejection)."""
        form: dict[str, str] = {"requestId": str(request_id), "remark": remark or ""}
        if main_data is not None:
            form["mainData"] = json.dumps(_field_list(main_data), ensure_ascii=False)
        self._service("submitRequest", user_id=user_id, data=form)

    def reject_request(self, request_id: int, *, remark: str, user_id: int | None = None) -> None:
        self._service("rejectRequest", user_id=user_id, data={"requestId": str(request_id), "remark": remark})

    def request_status(self, request_id: int, *, user_id: int | None = None) -> dict[str, Any]:
        return dict(self._service("getRequestStatus", user_id=user_id, params={"requestId": request_id}))

    def workflow_request(self, request_id: int, *, user_id: int | None = None) -> dict[str, Any]:
        return dict(self._service("getWorkflowRequest", user_id=user_id, params={"requestId": request_id}))

    def request_log(self, request_id: int, *, user_id: int | None = None) -> list[dict[str, Any]]:
        return list(self._service("getRequestLog", user_id=user_id, params={"requestId": request_id}) or [])

    def request_resources(self, request_id: int, *, user_id: int | None = None) -> list[dict[str, Any]]:
        data = self._service("getRequestResources", user_id=user_id, params={"requestId": request_id})
        return list(data or [])

    def todo_requests(self, *, page_size: int = 100, user_id: int | None = None) -> list[dict[str, Any]]:
        params = {"pageNo": 1, "pageSize": page_size}
        return list(self._service("getToDoWorkflowRequestList", user_id=user_id, params=params) or [])

    def my_requests(self, *, page_size: int = 100, user_id: int | None = None) -> list[dict[str, Any]]:
        params = {"pageNo": 1, "pageSize": page_size}
        return list(self._service("getMyWorkflowRequestList", user_id=user_id, params=params) or [])

    # -- files -----------------------------------------------------------------------------------------------
    def upload(self, path: Path, *, name: str | None = None, user_id: int | None = None) -> int:
        """Upload a file as a document attachment; returns its ``fileid``."""
        with path.open("rb") as handle:
            body = self.call(
                "POST", UPLOAD_PATH, user_id=user_id, files={"file": (name or path.name, handle)}
            )
        try:
            return int(body["data"]["fileid"])
        except (TypeError, KeyError, ValueError) as exc:
            raise TransientError(f"Weaver upload: no fileid in {body!r}") from exc

    @contextmanager
    def _stream(self, url: str, user_id: int | None) -> Iterator[httpx.Response]:
        for attempt in (1, 2):
            token = self.token()
            try:
                with self._http.stream("GET", self._url(url), headers=self._headers(token, user_id)) as resp:
                    if resp.headers.get("content-type", "").startswith("application/json"):
                        resp.read()
                        body = _json_or_none(resp)
                        if _is_token_error(body) and attempt == 1:
                            self.invalidate(token)
                            continue
                        self._checked("GET", url, resp, body)
                    elif resp.status_code >= 400:
                        resp.read()
                        self._checked("GET", url, resp, _json_or_none(resp))
                    yield resp
                    return
            except httpx.TimeoutException as exc:
                raise TransientError(f"Weaver download {url} timed out") from exc
            except httpx.HTTPError as exc:
                raise TransientError(f"Weaver download {url} failed: {exc!r}") from exc
        raise TransientError(f"Weaver download {url}: token refused twice")

    def download(self, download_url: str, dest_dir: Path, *, user_id: int | None = None) -> DownloadedFile:
        """Stream a file (``downloadUrl`` of a resource) into ``dest_dir`` under its OA name; never in memory.

        Written to a temporary file first and renamed, so a broken transfer leaves no half file behind.
        """
        dest_dir.mkdir(parents=True, exist_ok=True)
        with self._stream(download_url, user_id) as resp:
            name = Path(_filename(resp.headers.get("content-disposition")) or "download.bin").name
            fd, tmp = tempfile.mkstemp(dir=dest_dir, prefix=".download-")
            size = 0
            try:
                with os.fdopen(fd, "wb") as handle:
                    for chunk in resp.iter_bytes(DOWNLOAD_CHUNK):
                        handle.write(chunk)
                        size += len(chunk)
                expected = resp.headers.get("content-length")
                if expected is not None and int(expected) != size:
                    raise TransientError(f"Weaver download {download_url}: got {size} of {expected} bytes")
                target = dest_dir / name
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        content_type = resp.headers.get("content-type", "application/octet-stream").split(";")[0]
        return DownloadedFile(target, name, content_type, size)


def client_for(base_url: str, app_id: SecretStr, user_id: int, token_ttl_s: int, timeout_s: float,
               state_file: Path) -> WeaverClient:
    """A client from cdchub's Weaver settings.  Every process of an installation uses one ``state_file``
    (registration and key pair) and one token: registering and applying happen under the token store's lock, so
    two processes never write the file at once."""
    return WeaverClient(WeaverConfig(base_url=base_url, app_id=app_id, user_id=user_id, state_file=state_file,
                                     token_ttl_s=token_ttl_s, timeout_s=timeout_s))
