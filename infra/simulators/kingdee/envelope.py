"""The WebAPI's answer shapes and ``MsgCode``s, and the error a handler raises to produce one.

Every DynamicFormService answer is ``{"Result": {"ResponseStatus": {...}, ...}}``; ``ExecuteBillQuery`` answers a
bare array of arrays and wraps its errors as ``[[{"Result": {"ResponseStatus": {...}}}]]``. Errors come back with
HTTP 200, as the real server does: a client must look at ``IsSuccess``/``MsgCode``, never at the status.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

# MsgCode values (shared reference, Kingdee "Save / BatchSave").
OK = 0
SESSION_LOST = 1
NO_PERMISSION = 2
EXCEPTION = 4
PARAMETER_ERROR = 8
FIELD_NOT_FOUND = 9
DATA_NOT_FOUND = 10
VALIDATION_FAILED = 11
NOT_OPERABLE = 12
CALL_LIMIT = 14

SESSION_LOST_MESSAGE = "会话信息已丢失，请重新登录"
ERROR_CODE = 500  # ErrorCode of every failed answer


@dataclass
class Problem:
    """One entry of ``ResponseStatus.Errors``."""

    message: str
    field_name: str | None = None
    dindex: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"FieldName": self.field_name, "Message": self.message, "DIndex": self.dindex}


@dataclass
class Success:
    """One entry of ``ResponseStatus.SuccessEntitys``."""

    id: int | str
    number: str | None
    dindex: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"Id": self.id, "Number": self.number, "DIndex": self.dindex}


class KingdeeError(Exception):
    """A whole request failed: answered as a ``ResponseStatus`` with this ``MsgCode`` and problems."""

    def __init__(self, msg_code: int, message: str, field_name: str | None = None, dindex: int = 0) -> None:
        super().__init__(message)
        self.msg_code = msg_code
        self.problems = [Problem(message, field_name, dindex)]


@dataclass
class Outcome:
    """What an operation did to each document: successes and problems, and the ``MsgCode`` of the first failure."""

    successes: list[Success] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    msg_code: int = OK
    return_data: list[Any] = field(default_factory=list)

    def fail(self, msg_code: int, problems: list[Problem]) -> None:
        if self.msg_code == OK:
            self.msg_code = msg_code
        self.problems.extend(problems)

    def status(self) -> dict[str, Any]:
        return response_status(self.msg_code, self.problems, self.successes)


def response_status(
    msg_code: int,
    problems: Sequence[Problem] = (),
    successes: Sequence[Success] = (),
) -> dict[str, Any]:
    ok = not problems and msg_code == OK
    return {
        "ErrorCode": 0 if ok else ERROR_CODE,
        "IsSuccess": ok,
        "Errors": [p.to_json() for p in problems],
        "SuccessEntitys": [s.to_json() for s in successes],
        "SuccessMessages": [],
        "MsgCode": msg_code,
    }


def error_result(msg_code: int, problems: list[Problem]) -> dict[str, Any]:
    return {"Result": {"ResponseStatus": response_status(msg_code, problems)}}


def save_result(outcome: Outcome) -> dict[str, Any]:
    """Save/BatchSave: ``Id``/``Number`` of the first saved document ('' when none), ``NeedReturnData``."""
    first = outcome.successes[0] if outcome.successes else None
    return {
        "Result": {
            "ResponseStatus": outcome.status(),
            "Id": first.id if first else "",
            "Number": first.number if first else "",
            "NeedReturnData": outcome.return_data,
        }
    }


def operation_result(outcome: Outcome) -> dict[str, Any]:
    """Submit/Audit/UnAudit/Delete."""
    return {"Result": {"ResponseStatus": outcome.status()}}


def wrap_query_error(body: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """ExecuteBillQuery errors travel inside the array-of-arrays shape."""
    return [[body]]


def session_lost() -> KingdeeError:
    return KingdeeError(SESSION_LOST, SESSION_LOST_MESSAGE)


def fault_error_body(status: int) -> dict[str, Any]:
    """Body of an injected fault: the envelope with an exception (MsgCode 4), or a lost session for 401/403."""
    if status in (401, 403):
        return error_result(SESSION_LOST, [Problem(SESSION_LOST_MESSAGE)])
    return error_result(EXCEPTION, [Problem(f"服务器内部错误 (HTTP {status})")])
