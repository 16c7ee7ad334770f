"""Parse the body of ``POST /api/open/expenseReport/v2`` into a :class:`WindowQuery`, or a 400 naming the
field.

Lenient where the docs are vague [L]: every key is optional (no start or end: unbounded; no ``statusList``:
every status), numbers may come as numeric strings, ``statusList`` may be a comma-separated string. Strict
where a silent fallback would hide a client bug: ``page`` from 1, ``size`` from 1 to :data:`MAX_PAGE_SIZE` (a
larger size is a 400, not a quietly shorter page that a client would read as the last one), start before end.
"""

from __future__ import annotations

from typing import Any

from infra.simulators.huilianyi.errors import invalid_parameter
from infra.simulators.huilianyi.reports import WindowQuery
from infra.simulators.huilianyi.timefmt import parse_request_time

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 100


def _int(body: dict[str, Any], name: str, default: int) -> int:
    value = body.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise invalid_parameter(name, "must be an integer")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise invalid_parameter(name, "must be an integer") from None


def _time(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None or value == "":
        return None
    try:
        return parse_request_time(value)
    except ValueError as exc:
        raise invalid_parameter(name, str(exc)) from None


def _statuses(raw: Any) -> tuple[int, ...]:
    if raw is None or raw == "":
        return ()
    items = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(items, list):
        raise invalid_parameter("statusList", "must be an array of status codes")
    try:
        return tuple(sorted({int(str(s).strip()) for s in items if not isinstance(s, bool)}))
    except ValueError:
        raise invalid_parameter("statusList", "must be an array of status codes") from None


def parse_window_query(body: Any) -> WindowQuery:
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise invalid_parameter("body", "must be a JSON object")
    start = _time(body, "lastModifyStartDate")
    end = _time(body, "lastModifyEndDate")
    if start is not None and end is not None and start > end:
        raise invalid_parameter("lastModifyEndDate", "must not be before lastModifyStartDate")
    page = _int(body, "page", 1)
    size = _int(body, "size", DEFAULT_PAGE_SIZE)
    if page < 1:
        raise invalid_parameter("page", "starts from 1")
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise invalid_parameter("size", f"must be between 1 and {MAX_PAGE_SIZE}")
    return WindowQuery(start, end, _statuses(body.get("statusList")), page, size)
