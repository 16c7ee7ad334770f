"""ZOHO CRM error shapes: ``{"code", "details", "message", "status": "error"}`` — top level or per record."""

from __future__ import annotations

from typing import Any


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"code": code, "details": details or {}, "message": message, "status": "error"}


class ZohoApiError(Exception):
    """A request-level error: answered as ``error_body`` with ``status``."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message, self.details)


def invalid_token() -> ZohoApiError:
    return ZohoApiError(401, "INVALID_TOKEN", "invalid oauth token")


def invalid_module(name: str) -> ZohoApiError:
    return ZohoApiError(
        400, "INVALID_MODULE", "the module name given seems to be invalid", {"api_name": name}
    )


def invalid_url() -> ZohoApiError:
    return ZohoApiError(
        404, "INVALID_URL_PATTERN", "Please check if the URL trying to access is a correct one"
    )


def invalid_method() -> ZohoApiError:
    return ZohoApiError(405, "INVALID_REQUEST_METHOD", "The http request method type is not a valid one")


def limit_exceeded(limit: int, what: str = "records") -> ZohoApiError:
    return ZohoApiError(
        400, "LIMIT_EXCEEDED", f"the maximum number of {what} allowed is {limit}", {"limit": limit}
    )


def required_param(param: str) -> ZohoApiError:
    return ZohoApiError(
        400, "REQUIRED_PARAM_MISSING", "One of the expected parameter is missing", {"param": param}
    )


def invalid_param(param: str, message: str) -> ZohoApiError:
    return ZohoApiError(400, "INVALID_DATA", message, {"param": param})


def invalid_query(reason: str) -> ZohoApiError:
    return ZohoApiError(400, "INVALID_QUERY", "Invalid query formed", {"reason": reason})


def too_many_requests(reason: str, limit: int) -> ZohoApiError:
    messages = {
        "concurrency": "The concurrency limit for this org has been exceeded",
        "credits": "The API credit limit for this org has been exceeded",
    }
    return ZohoApiError(429, "TOO_MANY_REQUESTS", messages[reason], {"reason": reason, "limit": limit})


def already_modified(record_id: str) -> dict[str, Any]:
    """A record refused by a conditional update: changed after the request's ``If-Unmodified-Since`` [L: the code
    and HTTP 412 are documented, the message and details are not]."""
    return error_body("ALREADY_MODIFIED", "the record has been modified since the given time", {"id": record_id})


def fault_error_body(status: int) -> dict[str, Any]:
    """The body of an injected fault with this HTTP status, shaped like the real API's answer."""
    known = {
        400: ("INVALID_DATA", "invalid data"),
        401: ("INVALID_TOKEN", "invalid oauth token"),
        403: ("NO_PERMISSION", "permission denied"),
        404: ("INVALID_URL_PATTERN", "Please check if the URL trying to access is a correct one"),
        412: ("ALREADY_MODIFIED", "the record has been modified since the given time"),
        429: ("TOO_MANY_REQUESTS", "The concurrency limit for this org has been exceeded"),
    }
    code, message = known.get(status, ("INTERNAL_ERROR", "Internal Server Error"))
    return error_body(code, message)
