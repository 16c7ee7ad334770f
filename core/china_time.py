"""The hub's business time zone: China Standard Time (UTC+8, no daylight saving).

Kingdee keeps wall-clock times without a zone, and business people say times in China time; wherever a naive
time has to become an instant, it is this zone.
"""

from __future__ import annotations

from datetime import timedelta, timezone

CHINA_TIME = timezone(timedelta(hours=8))
