"""Which OA person a CRM user is: the campaign owner who should be the OA request's creator.

The OA's people come from its HRM directory (``WeaverClient.users``), read when first needed and again when a CRM
user is not found (at most every ``REFRESH_S``: a person added to the OA today is found without a restart, and a
CRM user who has no OA account does not cost a directory read per campaign).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)
REFRESH_S = 300.0


class OaPeople:
    def __init__(self, read: Callable[[], list[dict[str, Any]]], match: tuple[str, ...],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.read = read
        self.match = match
        self.clock = clock
        self._by: dict[str, dict[str, int]] = {}
        self._read_at: float | None = None

    def _load(self) -> None:
        people = [p for p in self.read() if str(p.get("status", "1")) in ("0", "1", "2", "3")]  # 在职 states
        self._by = {
            "email": {str(p["email"]).strip().lower(): int(p["id"]) for p in people if p.get("email")},
            "loginid": {str(p["loginid"]).strip().lower(): int(p["id"]) for p in people if p.get("loginid")},
        }
        self._read_at = self.clock()

    def _find(self, email: str) -> int | None:
        for how in self.match:
            key = email if how == "email" else email.split("@", 1)[0]
            if key in self._by.get(how, {}):
                return self._by[how][key]
        return None

    def user_for(self, email: str | None) -> int | None:
        """The OA user id of the CRM user with this email, or None."""
        if not email or not str(email).strip():
            return None
        wanted = str(email).strip().lower()
        if self._read_at is None:
            self._load()
        found = self._find(wanted)
        if found is None and self.clock() - (self._read_at or 0.0) >= REFRESH_S:
            self._load()
            found = self._find(wanted)
        return found
