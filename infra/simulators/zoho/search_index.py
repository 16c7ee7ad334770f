"""The search index of the CRM, which trails writes: ``/search`` sees a record as it was before its latest writes
until ``lag_ms`` after the last of them.

Real ZOHO indexes records for search asynchronously: a record just created is not found by ``/search``, one just
changed is still found by its old values (and shown with them), one just deleted is still found. Get, list,
upsert matching and the duplicate checks read the records themselves and never lag. Here, each write of a record
(insert, update, delete, lead conversion) while none is pending makes search keep showing the record as it was
before that write (nothing, for an insert) until ``lag_ms`` after the record's last write. In memory: a restart
catches the index up. ``lag_ms = 0`` (the default of the simulator alone): search sees every write at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from infra.simulators.zoho.store import StoredRecord
from infra.simulators.zoho.timefmt import now_ms


@dataclass
class _Pending:
    due_ms: int
    shown: StoredRecord | None  # what search shows until due_ms: the record before its unindexed writes


class SearchIndex:
    def __init__(self, lag_ms: int = 0) -> None:
        self.lag_ms = lag_ms
        self._pending: dict[tuple[str, str], _Pending] = {}
        self._lock = threading.Lock()

    def written(self, module: str, record_id: str, before: Callable[[], StoredRecord | None], at_ms: int) -> None:
        """A record is being written (``RecordStore.on_write``); ``before()`` loads how it is until then (None: it
        does not exist, or is deleted)."""
        if self.lag_ms <= 0:
            return
        with self._lock:
            pending = self._pending.get((module, record_id))
            if pending is not None and pending.due_ms > at_ms:
                pending.due_ms = at_ms + self.lag_ms  # not indexed yet: the older view stays, a while longer
            else:
                self._pending[(module, record_id)] = _Pending(at_ms + self.lag_ms, before())

    def pending_ids(self, module: str) -> list[str]:
        """Records of the module whose latest writes search does not see yet."""
        self._catch_up()
        with self._lock:
            return [record_id for (m, record_id) in self._pending if m == module]

    def view(self, module: str, record_id: str, current: StoredRecord | None) -> StoredRecord | None:
        """The record as search sees it, given how it is now (``current``: None when deleted or absent)."""
        with self._lock:
            pending = self._pending.get((module, record_id))
            if pending is None:
                return current
            if pending.due_ms <= now_ms():
                del self._pending[(module, record_id)]
                return current
            return pending.shown

    def reset(self, lag_ms: int | None = None) -> None:
        with self._lock:
            self._pending.clear()
            if lag_ms is not None:
                self.lag_ms = lag_ms

    def _catch_up(self) -> None:
        now = now_ms()
        with self._lock:
            for key in [k for k, p in self._pending.items() if p.due_ms <= now]:
                del self._pending[key]
