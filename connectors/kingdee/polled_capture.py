"""Polled capture: the same whole-document events as the log capture, found by asking the source what changed.

For Kingdee installations whose database gives no log to read (SQL Server, Oracle, or no database at all: Kingdee
Cloud), a ``DocumentReader`` (``query_reader.py``: any database through SQLAlchemy; ``webapi_reader.py``: the
WebAPI) answers three questions, and this capture turns the answers into events on the same topics, built by the
same assembler from the same document store as the log capture's — so no flow can tell the modes apart, except by
what a poll cannot see (docs/capture-modes.md):

- **Changes**, every ``interval_s``: per document kind, the documents whose modified time (``FMODIFYDATE``) is at or
  after the watermark minus ``margin_s`` (commit lag: a save whose time was taken before a later one committed;
  clock skew between Kingdee's application servers).  Each is read whole and compared with its stored image: the
  rows that differ become the row changes of one synthetic transaction, and the assembler emits the documents that
  changed (a re-read of an unchanged document emits nothing).  A document already read at the modified time it
  shows is not read again once the source's clock (the newest modified time seen) is ``resolution_s`` past it.
- **Deletions**, every ``keyset_interval_s``: the header keys are summarised by the database per bucket of
  ``bucket_size`` keys (count and sum), compared with the store's, and only the buckets that differ are listed
  key by key; a stored document whose key is gone is emitted as deleted (its last image as the before-image, then
  the tombstone).  A key the database has and the store does not (inserted with an old modified time) is read.
- **Full compare**, every ``full_compare_interval_s``: every document is read and compared — what changed without
  moving its modified time (a script, a database repair) is sent then.

Crash safety is the log capture's: the events of a batch are produced, Kafka acknowledges them, then the store
commits the documents' images together with the watermark and the documents read at it — a crash re-reads the
batch and, the images not being committed, sends it again (duplicates the idempotent sinks ignore); nothing is
skipped.  Versions are the read time in microseconds, increasing, so they sort after any log position (a switch from
the log capture keeps its store and goes on; back to the log capture needs a re-snapshot on new topics, see
docs/capture-modes.md).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from connectors.kingdee.assembly import RowChange, Transaction, row_pk
from connectors.kingdee.document_reader import DocumentReader, TableRows
from connectors.kingdee.documents import DocumentSpec
from connectors.kingdee.row_types import RowTypes
from connectors.kingdee.source import MODE_KEY, CaptureConfig, KingdeeCdcSource

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PollConfig:
    interval_s: float = 1.0
    margin_s: float = 10.0
    resolution_s: float = 1.0
    keyset_interval_s: float = 30.0
    full_compare_interval_s: float = 3600.0
    bucket_size: int = 1024
    batch_documents: int = 500


@dataclass
class PollStats:
    polls: int = 0
    keyset_cycles: int = 0
    full_compares: int = 0
    documents_read: int = 0


class PolledCapture(KingdeeCdcSource):
    def __init__(self, config: CaptureConfig, types: RowTypes, reader: DocumentReader, poll: PollConfig,
                 mode: str) -> None:
        super().__init__(config, types)
        self.reader = reader
        self.poll = poll
        self.mode = mode
        self.poll_stats = PollStats()
        self.stats.mode = mode
        self._version = self.store.lsn or 0
        #: Per document kind: the newest modified time seen, and the documents read at their modified time.
        self._watermarks: dict[str, datetime] = {}
        self._seen: dict[str, dict[str, str]] = {}
        #: When a document was first read at a modified time (in memory: after a restart, read once more).
        self._first_read: dict[tuple[str, str, datetime], float] = {}
        self._clock = time.monotonic
        for spec in self.catalog.specs:
            if (mark := self.store.get_meta(f"watermark:{spec.name}")) is not None:
                self._watermarks[spec.name] = datetime.fromisoformat(mark)
            self._seen[spec.name] = json.loads(self.store.get_meta(f"seen:{spec.name}") or "{}")

    def _column_types(self, table: str, columns: list[str]) -> dict[str, tuple[str, int | None, int | None]]:
        catalog = getattr(self.reader, "column_types", None)
        if catalog is None:  # the reader cannot tell: text, which holds any value
            return {c: ("text", None, None) for c in columns}
        types: dict[str, tuple[str, int | None, int | None]] = catalog(table, columns)
        return types

    # --- main loop --------------------------------------------------------------------------------------------
    def run(self, *, until_idle: bool = False) -> None:
        self._prepare_kafka()
        try:
            if self.store.lsn is None:
                self._snapshot()
            else:
                log.info("%s capture resumes at version %s", self.mode, self.store.lsn)
            next_keyset = next_full = 0.0
            if self.store.get_meta(MODE_KEY) != self.mode:  # the first start of this mode on this store
                next_keyset = next_full = time.monotonic()
            else:
                next_full = time.monotonic() + self.poll.full_compare_interval_s
            while not self._stop:
                started = time.monotonic()
                if started >= next_full and self.poll.full_compare_interval_s > 0:
                    self.full_compare()
                    next_full = time.monotonic() + self.poll.full_compare_interval_s
                    next_keyset = time.monotonic() + self.poll.keyset_interval_s
                found = self.poll_changes()
                if time.monotonic() >= next_keyset:
                    found += self.compare_keys()
                    next_keyset = time.monotonic() + self.poll.keyset_interval_s
                self._write_stats()
                if until_idle and not found:
                    return
                self._pause(self.poll.interval_s - (time.monotonic() - started))
        finally:
            if self._producer is not None:
                self._producer.flush(10)
            self._write_stats()
            self.store.close()
            self.reader.close()

    def _write_stats(self) -> None:
        self.stats.source_calls, self.stats.source_rows = self.reader.calls, self.reader.rows_read
        self.stats.documents_read, self.stats.polls = self.poll_stats.documents_read, self.poll_stats.polls
        self.stats.write(self.stats_path)

    def _pause(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._stop and time.monotonic() < deadline:
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))

    def _next_version(self) -> int:
        self._version = max(self._version + 1, time.time_ns() // 1000)
        return self._version

    # --- the initial snapshot ---------------------------------------------------------------------------------
    def _snapshot(self) -> None:
        """Every document into the store, then each as a read event (``op`` r), as the log capture's snapshot."""
        log.info("%s capture: reading the initial snapshot", self.mode)
        self.store.clear()
        for spec in self.catalog.specs:
            modified = self.reader.changed_since(spec, None)  # before the read: what changes during it is re-read
            if modified:
                self._watermarks[spec.name] = max(m for _, m in modified)
            ids = sorted(self.reader.keys(spec, self.poll.bucket_size), key=_id_order)
            for chunk in _chunks(ids, self.poll.batch_documents):
                rows = self.reader.read(spec, chunk)
                self._learn_columns([(table, row) for table, found in rows.items() for row in found])
                for part in (spec.header, *spec.parts):
                    self.store.put_many(part.table, [(row_pk(part, r), str(r[part.doc_key]), r)
                                                     for r in rows.get(part.table, [])])
                self.poll_stats.documents_read += len(chunk)
        tx = Transaction(xid=None, commit_lsn=self._next_version(), commit_time_ms=int(time.time() * 1000))
        sent = self._emit_documents(self.catalog.specs, tx)
        self._acknowledge(None, tx.commit_lsn, meta={**self._meta(self.catalog.specs), MODE_KEY: self.mode})
        self.stats.snapshot_events += sent
        log.info("%s capture: snapshot of %d documents sent", self.mode, sent)

    # --- changes ------------------------------------------------------------------------------------------------
    def poll_changes(self) -> int:
        """One poll of every document kind; returns how many documents were read."""
        read = 0
        for spec in self.catalog.specs:
            mark = self._watermarks.get(spec.name)
            since = None if mark is None else mark - timedelta(seconds=self.poll.margin_s)
            changed = self.reader.changed_since(spec, since)  # oldest first
            newest = max([m for _, m in changed] + ([mark] if mark else []), default=None)
            wanted = [(d, m) for d, m in changed if self._unread(spec, d, m, newest)]
            for chunk in _chunks(wanted, self.poll.batch_documents):
                for doc_id, modified in chunk:
                    self._seen[spec.name][doc_id] = modified.isoformat()
                    self._first_read.setdefault((spec.name, doc_id, modified), self._clock())
                # the watermark moves with what was read: a crash between chunks re-reads the rest
                self._watermarks[spec.name] = max([m for _, m in chunk] + ([mark] if mark else []))
                self._publish_documents(spec, [d for d, _ in chunk])
                read += len(chunk)
            if newest is not None and newest != self._watermarks.get(spec.name):
                self._watermarks[spec.name] = newest
                self.store.commit(None, **self._meta([spec]))
            if newest is not None:  # forget what fell out of the margin
                floor = newest - timedelta(seconds=self.poll.margin_s)
                self._seen[spec.name] = {d: m for d, m in self._seen[spec.name].items()
                                         if datetime.fromisoformat(m) >= floor}
                self._first_read = {k: v for k, v in self._first_read.items()
                                    if k[0] != spec.name or k[2] >= floor}
        self.poll_stats.polls += 1
        return read

    def _unread(self, spec: DocumentSpec, doc_id: str, modified: datetime, newest: datetime | None) -> bool:
        """Whether to read a document the poll found: not read at this modified time yet, or read while another
        save within the same tick of the modified time could still follow (the newest times, for a while)."""
        if self._seen[spec.name].get(doc_id) != modified.isoformat():
            return True
        settled = newest is not None and modified <= newest - timedelta(seconds=self.poll.resolution_s)
        first = self._first_read.get((spec.name, doc_id, modified))  # None after a restart: read once more
        waited = first is not None and self._clock() - first >= self.poll.resolution_s + self.poll.margin_s
        return not (settled or waited)

    def _publish_documents(self, spec: DocumentSpec, doc_ids: Sequence[str]) -> None:
        """Read the documents, emit the ones that changed, and commit after Kafka acknowledged them."""
        rows = self.reader.read(spec, doc_ids)
        self.poll_stats.documents_read += len(doc_ids)
        tx = self._transaction(spec, doc_ids, rows)
        if tx.changes:
            self._publish(tx)
        self._acknowledge(None, tx.commit_lsn, meta=self._meta([spec]))

    def _transaction(self, spec: DocumentSpec, doc_ids: Iterable[str], now: TableRows) -> Transaction:
        """The row changes that turn the stored images of ``doc_ids`` into what the source holds ``now``."""
        tx = Transaction(xid=None, commit_lsn=self._next_version(), commit_time_ms=int(time.time() * 1000))
        wanted = set(doc_ids)
        for part in (spec.header, *spec.parts):
            current = {}
            for row in now.get(part.table, []):  # wire values already (DocumentReader.read)
                if str(row.get(part.doc_key)) in wanted:
                    current[row_pk(part, row)] = row
            stored = {row_pk(part, r): r for d in sorted(wanted) for r in self.store.rows(part.table, d)}
            for pk, row in current.items():
                before = stored.get(pk)
                if before is None:
                    tx.changes.append(RowChange(part.table, "I", None, row))
                elif before != row:
                    tx.changes.append(RowChange(part.table, "U", before, row))
            for pk, before in stored.items():
                if pk not in current:
                    tx.changes.append(RowChange(part.table, "D", before, None))
        return tx

    # --- deletions ------------------------------------------------------------------------------------------------
    def compare_keys(self) -> int:
        """Documents deleted at the source (or inserted behind the watermark) since the last cycle; returns how
        many were sent or read."""
        found = 0
        size = self.poll.bucket_size
        for spec in self.catalog.specs:
            stored = set(self.store.doc_ids(spec.header.table))
            summary = self.reader.key_buckets(spec, size)
            if summary is None:
                keys, mine = self.reader.keys(spec, size), stored
            else:
                ours = _summary(stored, size)
                differing = {b for b in set(summary) | set(ours) if summary.get(b) != ours.get(b)}
                keys = self.reader.keys(spec, size, differing)
                mine = {d for d in stored if int(d) // size in differing}
            changed = sorted((mine - keys) | (keys - mine), key=_id_order)
            for chunk in _chunks(changed, self.poll.batch_documents):
                self._publish_documents(spec, chunk)
            found += len(changed)
            if changed:
                log.info("%s capture: %d %s document(s) deleted or found behind the watermark", self.mode,
                         len(changed), spec.name)
        self.poll_stats.keyset_cycles += 1
        return found

    def full_compare(self) -> int:
        """Every document read and compared with its stored image (changes that did not move the modified time).
        Tables are read as the source has them now (columns added since the start come along)."""
        if (refresh := getattr(self.reader, "refresh", None)) is not None:
            refresh()
        read = 0
        for spec in self.catalog.specs:
            ids = set(self.reader.keys(spec, self.poll.bucket_size)) | set(self.store.doc_ids(spec.header.table))
            for chunk in _chunks(sorted(ids, key=_id_order), self.poll.batch_documents):
                self._publish_documents(spec, chunk)
                read += len(chunk)
        self.store.commit(None, **{MODE_KEY: self.mode})
        self.poll_stats.full_compares += 1
        log.info("%s capture: full compare of %d documents done", self.mode, read)
        return read

    def _meta(self, specs: Iterable[DocumentSpec]) -> dict[str, str]:
        meta = {MODE_KEY: self.mode} if self.store.get_meta(MODE_KEY) == self.mode else {}
        for spec in specs:
            if (mark := self._watermarks.get(spec.name)) is not None:
                meta[f"watermark:{spec.name}"] = mark.isoformat()
            meta[f"seen:{spec.name}"] = json.dumps(self._seen[spec.name])
        return meta


def _summary(ids: Iterable[str], size: int) -> dict[int, tuple[int, int]]:
    out: dict[int, list[int]] = {}
    for doc_id in ids:
        key = int(doc_id)
        out.setdefault(key // size, []).append(key)
    return {b: (len(keys), sum(keys)) for b, keys in out.items()}


def _chunks(items: Sequence[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield list(items[start:start + size])


def _id_order(doc_id: str) -> tuple[int, int | str]:
    return (0, int(doc_id)) if doc_id.lstrip("-").isdigit() else (1, doc_id)
