"""Time as Huilianyi uses it: requests in UTC+8 wall-clock strings, responses as ISO instants in UTC (``Z``).

- Request times [H]: ``yyyy-MM-dd HH:mm:ss`` in UTC+8. Also accepted (lenient, [L]): a fraction of a second,
  ``yyyy-MM-dd`` alone (midnight), a ``T`` separator, and an explicit offset or ``Z``.
- Response times [H: ISO with ``Z``; L: the fraction]: formatted like Java's
  ``DateTimeFormatter.ISO_INSTANT``, which the Spring/Jackson stack behind the API uses:
  ``2024-05-02T03:17:33Z`` when the milliseconds are zero, else ``2024-05-02T03:17:33.250Z``. Internally every
  time is epoch milliseconds.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta, timezone

CHINA_TZ = timezone(timedelta(hours=8))
_REQUEST_TIME = re.compile(
    r"^(\d{4}-\d{2}-\d{2})(?:[ T](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?))?\s*(Z|[+-]\d{2}:?\d{2})?$"
)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def parse_request_time(text: str) -> int:
    """A request time string → epoch ms; naive times are UTC+8. ``ValueError`` names the expected form."""
    match = _REQUEST_TIME.match(text.strip()) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"expected yyyy-MM-dd HH:mm:ss (UTC+8), got {text!r}")
    day, clock, offset = match.groups()
    iso = f"{day}T{clock or '00:00:00'}"
    if offset:
        iso += "+00:00" if offset == "Z" else offset
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError as exc:
        raise ValueError(f"not a valid time: {text!r}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=CHINA_TZ)
    return int(moment.timestamp() * 1000)


def format_request_time(moment: datetime) -> str:
    """An aware datetime → the request form ``yyyy-MM-dd HH:mm:ss`` in UTC+8 (sub-seconds dropped)."""
    if moment.tzinfo is None:
        raise ValueError("give an aware datetime; Huilianyi request times are UTC+8")
    return moment.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M:%S")


def format_instant(ms: int | None) -> str | None:
    """Epoch ms → ISO instant in UTC, the way ``ISO_INSTANT`` prints it (fraction only when non-zero)."""
    if ms is None:
        return None
    moment = datetime.fromtimestamp(ms // 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = ms % 1000
    return f"{moment}.{fraction:03d}Z" if fraction else f"{moment}Z"
