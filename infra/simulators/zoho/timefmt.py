"""Time as ZOHO shows it: ISO-8601 to the second with the org's UTC offset (``2024-05-02T11:17:33+08:00``).

Records keep milliseconds internally (``modified_ms``), so ``If-Modified-Since`` compares at millisecond
precision while clients only ever see whole seconds — the same mismatch the real API has.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

_OFFSET = re.compile(r"^([+-])(\d{2}):?(\d{2})$")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def parse_offset(text: str) -> timezone:
    if text.upper() in ("Z", "UTC"):
        return UTC
    match = _OFFSET.match(text)
    if not match:
        raise ValueError(f"UTC offset must look like +08:00, got {text!r}")
    sign, hours, minutes = match.groups()
    delta = timedelta(hours=int(hours), minutes=int(minutes))
    return timezone(-delta if sign == "-" else delta)


class ZohoClock:
    """Formats and parses times in the org's time zone (a fixed UTC offset)."""

    def __init__(self, utc_offset: str = "+08:00") -> None:
        self.tz = parse_offset(utc_offset)

    def format(self, ms: int | None) -> str | None:
        if ms is None:
            return None
        moment = datetime.fromtimestamp(ms // 1000, tz=self.tz)
        return moment.isoformat(timespec="seconds")

    def parse(self, text: str) -> int:
        """ISO-8601 (offset optional: the org's zone is assumed) or an RFC 1123 HTTP date → epoch ms."""
        text = text.strip()
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            try:
                moment = parsedate_to_datetime(text)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"not an ISO-8601 time: {text!r}") from exc
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=self.tz)
        return int(moment.timestamp() * 1000)
