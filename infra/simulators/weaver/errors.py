"""Weaver's two error shapes.

- Auth gateway (``/api/ec/dev/auth/*`` and the token check before every business call), HTTP 200::

      {"msg": "token不存在或者超时：<token>", "code": -1, "status": false}

- Workflow services (``/api/workflow/paService/*``), HTTP 200, ``code`` one of ``SUCCESS``, ``PARAM_ERROR``,
  ``NO_PERMISSION``, ``USER_EXCEPTION``, ``SYSTEM_INNER_ERROR``::

      {"code": "PARAM_ERROR", "data": {}, "errMsg": {"errorMsg": "..."}, "reqFailMsg": {...}}

  The ``errMsg``/``reqFailMsg`` contents are [L] in the reference: clients should read ``code`` only.
"""

from __future__ import annotations

from typing import Any

SUCCESS = "SUCCESS"
PARAM_ERROR = "PARAM_ERROR"
NO_PERMISSION = "NO_PERMISSION"
USER_EXCEPTION = "USER_EXCEPTION"
SYSTEM_INNER_ERROR = "SYSTEM_INNER_ERROR"


def auth_error_body(msg: str) -> dict[str, Any]:
    return {"msg": msg, "code": -1, "status": False}


class AuthFailure(Exception):
    """Answered with :func:`auth_error_body` (HTTP 200, like the real gateway)."""

    def __init__(self, msg: str, status: int = 200) -> None:
        super().__init__(msg)
        self.msg = msg
        self.status = status

    def body(self) -> dict[str, Any]:
        return auth_error_body(self.msg)


def token_not_found(token: str) -> AuthFailure:
    return AuthFailure(f"token不存在或者超时：{token}")


def service_body(code: str, data: Any = None, message: str | None = None) -> dict[str, Any]:
    if code == SUCCESS:
        return {"code": SUCCESS, "data": data if data is not None else {}, "errMsg": {}}
    return {
        "code": code,
        "data": data if data is not None else {},
        "errMsg": {"errorMsg": message or code},
        "reqFailMsg": {"keyParameters": {}, "msgInfo": {"msg": message or code}, "otherParams": {}},
    }


class ServiceError(Exception):
    """A workflow-service failure, answered as :func:`service_body` with HTTP 200."""

    def __init__(self, code: str, message: str, status: int = 200) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status

    def body(self) -> dict[str, Any]:
        return service_body(self.code, message=self.message)


def param_error(message: str) -> ServiceError:
    return ServiceError(PARAM_ERROR, message)


def no_permission(message: str) -> ServiceError:
    return ServiceError(NO_PERMISSION, message)


def fault_error_body(status: int) -> dict[str, Any]:
    """Body of an injected HTTP error: the service shape with ``SYSTEM_INNER_ERROR``."""
    return service_body(SYSTEM_INNER_ERROR, message=f"系统内部错误 (HTTP {status})")
