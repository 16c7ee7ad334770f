"""Whether a target record holds what a flow would write: field-by-field comparison as the target shows values.

The flow's record is compared with the record read back from the target, only on the fields the flow writes:
empty values (None, "", absent) are equal; numbers compare as numbers (ZOHO returns ``200`` for ``200.0``, and
amounts to the cent); a lookup compares by id (``{"id": …, "name": …}`` in the target); date-times compare as
instants (``+08:00`` and ``Z`` forms of one time are equal); line items (lists of rows) compare row by row on the
fields the flow sends, so the target's own row ids and computed columns do not count.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _instant(value: str) -> datetime | None:
    if len(value) < 19 or value[4] != "-" or "T" not in value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def same(desired: Any, current: Any) -> bool:
    if _empty(desired) or _empty(current):
        return _empty(desired) and _empty(current)
    if isinstance(desired, bool) or isinstance(current, bool):
        return desired is current or desired == current
    if isinstance(desired, int | float | Decimal) and isinstance(current, int | float | Decimal | str):
        try:
            return abs(Decimal(str(desired)) - Decimal(str(current))) < Decimal("0.005")
        except ArithmeticError:
            return False
    if isinstance(desired, dict):
        if "id" in desired and set(desired) <= {"id", "name"} and isinstance(current, dict):  # a lookup
            return str(desired["id"]) == str(current.get("id"))
        return isinstance(current, dict) and all(same(v, current.get(k)) for k, v in desired.items())
    if isinstance(desired, list):
        return (isinstance(current, list) and len(desired) == len(current)
                and all(same(d, c) for d, c in zip(desired, current, strict=True)))
    if isinstance(desired, str) and isinstance(current, str):
        a, b = _instant(desired), _instant(current)
        if a is not None and b is not None:
            return a == b
    return bool(desired == current)


def differing_fields(desired: dict[str, Any], current: dict[str, Any], identity: set[str]) -> dict[str, Any]:
    """The fields of ``desired`` (other than identity fields) whose target value differs:
    field -> {"target": …, "replay": …}."""
    return {name: {"target": current.get(name), "replay": value}
            for name, value in desired.items() if name not in identity and not same(value, current.get(name))}
