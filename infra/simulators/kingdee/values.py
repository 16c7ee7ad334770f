"""Field values in and out: what a Save may send for each kind of field, and how reads show stored values.

In: amounts accept numbers and numeric strings; dates accept ``yyyy-MM-dd``, ``yyyy-MM-dd HH:mm:ss`` and the ISO
``T`` form; ``lang`` accepts a string or ``[{"Key": 2052, "Value": ".."}]``; references accept ``{"FNumber": ..}``
(any case), ``{"FID"|"Id": ..}`` or a bare id. Out: dates as ``2024-05-08T10:25:21.837`` (no zone, China local
time as stored), decimals as JSON numbers, blanks (Kingdee's one-space text) as they are stored.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.kingdee.models import LOCALE_ZH_CN
from infra.simulators.kingdee.forms import BILL_TYPES, FieldDef

DATE_FORMATS = (
    "%Y-%m-%d %H:%M:%S.%f",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d",
)


class BadValue(ValueError):
    """A value a field cannot take; the message is the Chinese text the client sees."""


def parse_date(raw: Any) -> datetime | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, datetime):
        return raw
    if isinstance(raw, str):
        text = raw.strip().replace("T", " ")
        if text.endswith("Z"):
            text = text[:-1]
        for fmt in DATE_FORMATS:
            try:
                return datetime.strptime(text, fmt)
            except ValueError:
                continue
    raise BadValue(f"“{raw}”不是有效的日期格式")


def parse_decimal(raw: Any) -> Decimal:
    if isinstance(raw, bool):
        raise BadValue(f"“{raw}”不是有效的数值")
    if raw is None or raw == "":
        return Decimal(0)
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation as exc:
        raise BadValue(f"“{raw}”不是有效的数值") from exc
    if not value.is_finite() or abs(value) >= Decimal(10) ** 13:
        raise BadValue(f"“{raw}”超出了数值的有效范围")
    return value


def parse_int(raw: Any) -> int:
    if isinstance(raw, bool):
        raise BadValue(f"“{raw}”不是有效的整数")
    if raw is None or raw == "":
        return 0
    try:
        return int(str(raw).strip())
    except ValueError as exc:
        raise BadValue(f"“{raw}”不是有效的整数") from exc


def ref_number(raw: Any) -> tuple[str, str | int] | None:
    """A reference as sent: ``("number", "C001")``, ``("id", 100001)``, or None for an empty reference."""
    if raw is None or raw == "" or raw == 0:
        return None
    if isinstance(raw, dict):
        lowered = {str(k).lower(): v for k, v in raw.items()}
        for key in ("fnumber", "number"):
            if lowered.get(key) not in (None, ""):
                return ("number", str(lowered[key]).strip())
        for key in ("fid", "id", "fuserid", "fstaffid"):
            if lowered.get(key) not in (None, "", 0, "0"):
                return ("id", parse_int(lowered[key]))
        return None
    if isinstance(raw, int | str) and not isinstance(raw, bool):
        return ("id", parse_int(raw))
    raise BadValue(f"“{raw}”不是有效的基础资料引用")


def parse_plain(f: FieldDef, raw: Any) -> Any:
    """The stored value of a non-reference field (references are resolved by the save)."""
    if f.kind == "amount":
        return parse_decimal(raw)
    if f.kind == "int":
        return parse_int(raw)
    if f.kind == "date":
        return parse_date(raw)
    if f.kind == "billtype":
        ref = ("number", raw.strip()) if isinstance(raw, str) and raw.strip() else ref_number(raw)
        if ref is None:
            return " "
        value = str(ref[1])
        if value in BILL_TYPES.values():
            return value
        if value not in BILL_TYPES:
            raise BadValue(f"单据类型“{value}”在系统中不存在")
        return BILL_TYPES[value]
    if f.kind == "status":
        text = "" if raw is None else str(raw).strip()
        if len(text) > 1:
            raise BadValue(f"“{raw}”不是有效的状态值")
        return text or " "
    if f.kind == "lang":
        if isinstance(raw, list):
            by_locale = {int(item.get("Key", 0)): item.get("Value") for item in raw if isinstance(item, dict)}
            raw = by_locale.get(LOCALE_ZH_CN, next(iter(by_locale.values()), ""))
        if isinstance(raw, dict):
            raise BadValue(f"“{raw}”不是有效的文本")
    if isinstance(raw, dict | list):
        raise BadValue(f"“{raw}”不是有效的文本")
    text = "" if raw is None else str(raw)
    if len(text) > 255:
        raise BadValue("文本长度超过了255个字符")
    return text if text else " "


def to_json(value: Any) -> Any:
    """A stored value as the WebAPI shows it."""
    if isinstance(value, Decimal):
        normal = value.normalize()
        return int(normal) if normal == normal.to_integral_value() and abs(normal) < 2**53 else float(normal)
    if isinstance(value, datetime):
        text = value.strftime("%Y-%m-%dT%H:%M:%S")
        return text + f".{value.microsecond // 1000:03d}" if value.microsecond else text
    if isinstance(value, date):
        return value.strftime("%Y-%m-%dT00:00:00")
    return value
