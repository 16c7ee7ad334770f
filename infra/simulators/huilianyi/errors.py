"""Huilianyi's error shapes.

- Auth errors [M]: the API sits behind Spring Security OAuth2, whose answers are ``{"error": "invalid_token",
  "error_description": "Access token expired: <token>"}`` (401, plus a ``WWW-Authenticate: Bearer ...``
  header); bad app credentials on ``/oauth/token`` get 401 ``{"error": "unauthorized", "error_description":
  "Bad credentials"}``.
- Business errors [L, chosen here]: ``{"errorCode": "<CODE>", "message": "<中文说明>"}`` with HTTP 400 (bad
  parameter, wrong status), 404 (unknown business code or URL), 405, 429 or 500. A connector should key on the
  HTTP status and treat ``errorCode`` as informative only.
"""

from __future__ import annotations

from typing import Any

SUCCESS = {"errorCode": "0000", "message": "SUCCESS"}  # body of a successful write-back [L]


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"errorCode": code, "message": message}


class HuilianyiApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message)


class OAuthError(HuilianyiApiError):
    """An error of the OAuth layer: answered in Spring Security's ``error``/``error_description`` shape."""

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "error_description": self.message}


def invalid_parameter(name: str, problem: str) -> HuilianyiApiError:
    return HuilianyiApiError(400, "INVALID_PARAMETER", f"参数 {name} 不合法: {problem}")


def report_not_found(business_code: str) -> HuilianyiApiError:
    return HuilianyiApiError(404, "EXPENSE_REPORT_NOT_FOUND", f"报销单不存在: {business_code}")


def wrong_status(business_code: str, current: int, required: int) -> HuilianyiApiError:
    return HuilianyiApiError(
        400,
        "EXPENSE_REPORT_STATUS_ERROR",
        f"报销单 {business_code} 当前状态为 {current}, 该操作要求状态 {required}",
    )


def bearer_error(token: str | None, expired: bool = False) -> OAuthError:
    if token is None:
        return OAuthError(
            401,
            "unauthorized",
            "Full authentication is required to access this resource",
            {"WWW-Authenticate": 'Bearer realm="oauth2-resource", error="unauthorized"'},
        )
    message = f"Access token expired: {token}" if expired else f"Invalid access token: {token}"
    return OAuthError(
        401,
        "invalid_token",
        message,
        {"WWW-Authenticate": (f'Bearer realm="oauth2-resource", error="invalid_token", error_description="{message}"')},
    )


def fault_error_body(status: int) -> dict[str, Any]:
    """The body of an injected fault with this HTTP status, in the shape the real API would use for it."""
    if status == 401:
        return {"error": "invalid_token", "error_description": "Invalid access token: (lost)"}
    known = {
        400: ("INVALID_PARAMETER", "参数不合法"),
        403: ("FORBIDDEN", "无权限访问"),
        404: ("NOT_FOUND", "资源不存在"),
        429: ("TOO_MANY_REQUESTS", "请求过于频繁, 请稍后再试"),
        502: ("BAD_GATEWAY", "网关错误"),
        503: ("SERVICE_UNAVAILABLE", "服务暂不可用"),
        504: ("GATEWAY_TIMEOUT", "网关超时"),
    }
    code, message = known.get(status, ("SYSTEM_ERROR", "系统异常"))
    return error_body(code, message)
