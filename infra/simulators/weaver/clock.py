"""OA server time: dates and times in the OA's own zone (China, UTC+8) as ``2023-08-04`` / ``16:23:28``."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone


def now_ms() -> int:
    return int(time.time() * 1000)


class OaClock:
    def __init__(self, utc_offset_h: int = 8) -> None:
        self.tz = timezone(timedelta(hours=utc_offset_h))

    def date_time(self, ms: int) -> tuple[str, str]:
        moment = datetime.fromtimestamp(ms / 1000, UTC).astimezone(self.tz)
        return moment.strftime("%Y-%m-%d"), moment.strftime("%H:%M:%S")

    def stamp(self, ms: int) -> str:
        return " ".join(self.date_time(ms))
