"""The capture's copy of the captured tables, so a change to one entry row can be emitted as the whole document.

Logical decoding delivers rows, not documents: an entry-only change carries no header and no sibling rows.  The
store keeps the current image of every captured row (filled by the initial snapshot, kept current by the stream)
and assembles documents from it.  Its changes are committed together with the LSN they reach, and only after Kafka
has acknowledged the events of those transactions; a transaction at or below the stored LSN is skipped on resume,
so a replayed transaction is neither applied twice nor emitted from a half-applied state.

Values are kept in JSON as decoded from the wire (numbers as exact strings), typed again when a document is built.

The capture's hot path does not go to SQLite per row: the rows of recently used documents are held in memory
(bounded by ``cache_rows``), reads of a batch's documents are loaded in a few queries (:meth:`load`), and changes
are written with one ``executemany`` per run of writes when the batch commits (or before any query that needs them,
or when the cache evicts).  A rollback forgets the cache, so nothing uncommitted is ever read back.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger(__name__)

#: ``row_image`` is an ordinary (rowid) table: its rows are whole Kingdee rows as JSON (~1 KB), too big for a
#: WITHOUT ROWID table's B-tree, where writes cost twice as much (60,000 rows: 0.76 against 0.40 CPU-s; 20,000
#: replaced: 0.43 against 0.20).  A store made before keeps its layout; both read and write the same.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS row_image (
    tbl TEXT NOT NULL, doc TEXT NOT NULL, pk TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (tbl, doc, pk)
);
DROP INDEX IF EXISTS row_image_bill_no;
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
"""


def _ref_index(table: str, column: str) -> str:
    return f"ref_{table}_{column}"


def _units(rows: _Rows) -> int:
    """What a (table, document) entry counts against the cache's bound: its rows, and an empty one as one."""
    return len(rows) or 1


#: Rows kept in memory between transactions (an empty entry counts as one row).  Within a transaction the cache may
#: hold up to :data:`CACHE_HARD_FACTOR` times as many — a transaction's own rows are in memory anyway, and a large
#: one is applied a few thousand documents at a time (``assembly.CHUNK_DOCUMENTS``).  75,000: a transaction of
#: 20,000 materials (60,000 rows) stays in memory for the next one (3× faster updates of them than from SQLite);
#: the capture's peak RSS at 1,000,000 changes stays under 300 MB (measured, docs/capture.md).
CACHE_ROWS = 75_000
CACHE_HARD_FACTOR = 2
_IN_LIST = 500

_Rows = dict[str, dict[str, Any]]  # row key → row
#: An existing row's data is updated in place (its key and index entry stay): a fifth to half of what ``INSERT OR
#: REPLACE`` costs, which deletes the row and inserts it again (20,000 updated rows: 0.07-0.09 vs 0.18-0.47 CPU-s).
_UPSERT = ("INSERT INTO row_image (tbl, doc, pk, data) VALUES (?, ?, ?, ?) "
           "ON CONFLICT (tbl, doc, pk) DO UPDATE SET data = excluded.data")
_UNKNOWN = object()


def _dumps(row: dict[str, Any]) -> str:
    """A row as the store keeps it: JSON text (SQLite's ``json_extract`` indexes read it)."""
    try:
        return orjson.dumps(row).decode()
    except TypeError:  # what orjson refuses (an integer beyond 64 bits) the standard library writes
        return json.dumps(row, ensure_ascii=False, separators=(",", ":"))


def _loads(data: str) -> dict[str, Any]:
    try:
        return orjson.loads(data)  # type: ignore[no-any-return]
    except orjson.JSONDecodeError:  # NaN or Infinity, which older stores wrote for non-finite floats
        return json.loads(data)  # type: ignore[no-any-return]


class _FileSync:
    """fsync of the store's files (database and write-ahead log) in a thread, one at a time."""

    def __init__(self, path: Path) -> None:
        self._files = (path, path.with_name(path.name + "-wal"))
        self._thread: threading.Thread | None = None
        self._target: int | None = None
        self._done: int | None = None
        #: Why the last sync failed (the file and the error) and since when; empty once a sync succeeds.
        self.problem = ""
        self.failing_since: float | None = None

    def sync(self) -> None:
        for file in self._files:
            try:
                fd = os.open(file, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                try:
                    os.fsync(fd)
                except OSError as exc:
                    exc.filename = exc.filename or str(file)
                    raise
            finally:
                os.close(fd)

    def _run(self) -> None:
        try:
            self.sync()
        except OSError as exc:
            # the durable position stops moving, so the slot stops being confirmed: say so, once per new error
            # (the next batch tries again), instead of letting the database's WAL grow without a word
            problem = f"fsync of {exc.filename or self._files[0]} failed: {exc.strerror or exc}"
            if problem != self.problem:
                log.error("document store: %s; the slot is not confirmed past %s until a sync succeeds",
                          problem, self._done)
            self.problem = problem
            self.failing_since = self.failing_since or time.time()
            return
        if self.problem:
            log.info("document store: fsync works again (%s)", self.problem)
        self.problem, self.failing_since = "", None
        self._done = self._target

    def start(self, lsn: int | None) -> None:
        """Sync what is committed at ``lsn`` unless a sync is running (the next call will)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._target = lsn
        self._thread = threading.Thread(target=self._run, name="store-fsync", daemon=True)
        self._thread.start()

    def finished(self) -> int | None:
        """The position the last finished sync made durable."""
        return self._done


class DocumentStore:
    """Single-threaded; changes stay uncommitted until :meth:`commit`.  Rows returned are the store's own: callers
    read them and never change them."""

    def __init__(self, path: Path | str, cache_rows: int = CACHE_ROWS) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), isolation_level="DEFERRED")
        self._db.execute("PRAGMA journal_mode=WAL")
        # commits are not synced one by one (each fsync stalled the stream for a batch's worth of time): what must
        # survive a power loss is made so by make_durable(), and the slot is confirmed only up to there
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._db.commit()
        self.cache_rows = cache_rows
        self._indexes: set[str] = set()
        self._lsn: int | None | object = _UNKNOWN
        #: The committed position that is on disk for sure (``make_durable``).
        self._sync = None if str(path) == ":memory:" else _FileSync(Path(path))
        if self._sync is not None:
            self._sync.sync()  # what an earlier run committed is on disk before anything counts on it
        self.durable_lsn: int | None = self.lsn
        #: (table, document) → its rows, complete (an empty dict: known to have none); insertion order = age.
        self._cache: OrderedDict[tuple[str, str], _Rows] = OrderedDict()
        self._cached_rows = 0
        #: (table, document) → its rows typed (:meth:`typed_rows`), while its rows do not change.
        self._typed: dict[tuple[str, str], list[dict[str, Any]]] = {}
        #: Changes not yet written to SQLite, in order: (table, document, row key, row or None for a delete).
        self._pending: list[tuple[str, str, str, dict[str, Any] | None]] = []
        #: Moves at every change of what the store holds or how it is typed (what was built from it may be stale).
        self.generation = 0

    # --- the in-memory rows -----------------------------------------------------------------------------------
    def _entry(self, table: str, doc: str) -> _Rows:
        entry = self._cache.get((table, doc))
        if entry is None:
            self.load(table, [doc])
            entry = self._cache[(table, doc)]
        return entry

    def load(self, table: str | Iterable[str], docs: Iterable[str]) -> None:
        """Bring the rows of ``docs`` in ``table`` (or in each of several tables) into memory in a few queries: the
        documents a batch will read.  What is not in memory has no pending change, so SQLite has it as it is."""
        tables = [table] if isinstance(table, str) else list(table)
        missing = [(t, d) for d in dict.fromkeys(docs) for t in tables if (t, d) not in self._cache]
        if not missing:
            return
        self._evict(self.cache_rows * CACHE_HARD_FACTOR)  # before, so what is loaded now stays for its reader
        wanted = list(dict.fromkeys(d for _, d in missing))
        table_marks = ", ".join("?" for _ in tables)
        for start in range(0, len(wanted), _IN_LIST):
            chunk = wanted[start:start + _IN_LIST]
            in_chunk = set(chunk)
            found: dict[tuple[str, str], _Rows] = {key: {} for key in missing if key[1] in in_chunk}
            marks = ", ".join("?" for _ in chunk)
            for tbl, doc, pk, data in self._db.execute(
                    f"SELECT tbl, doc, pk, data FROM row_image WHERE tbl IN ({table_marks}) AND doc IN ({marks})",
                    (*tables, *chunk)):
                rows = found.get((tbl, doc))
                if rows is not None:
                    rows[pk] = _loads(data)
            for key, rows in found.items():
                self._cache[key] = rows
                self._cached_rows += _units(rows)

    def _evict(self, limit: int) -> None:
        """Forget the oldest documents' rows until at most ``limit`` rows are held (3/4 of it, to evict seldom)."""
        if self._cached_rows <= limit:
            return
        self.write_pending()  # evicted rows must be readable from SQLite (uncommitted, same connection)
        target = limit * 3 // 4
        cache = self._cache
        while self._cached_rows > target and cache:
            key, rows = cache.popitem(last=False)
            self._cached_rows -= _units(rows)
            self._typed.pop(key, None)

    def has_pending(self, at_least: int = 1) -> bool:
        """Whether ``at_least`` changes wait to be written to SQLite."""
        return len(self._pending) >= at_least

    def write_pending(self) -> None:
        """Write the changes made so far to SQLite, uncommitted.  The stream does so whenever it has nothing to
        read, so the commit at the end of a batch has little left to do (writing a whole batch there had stalled
        the stream 6–16 ms, and every transaction that arrived meanwhile waited)."""
        pending, self._pending = self._pending, []
        i = 0
        while i < len(pending):
            j = i
            if pending[i][3] is not None:
                while j < len(pending) and pending[j][3] is not None:
                    j += 1
                self._db.executemany(
                    _UPSERT,
                    ((t, d, k, _dumps(r)) for t, d, k, r in pending[i:j]))  # type: ignore[arg-type]
            else:
                while j < len(pending) and pending[j][3] is None:
                    j += 1
                self._db.executemany("DELETE FROM row_image WHERE tbl = ? AND doc = ? AND pk = ?",
                                     ((t, d, k) for t, d, k, _ in pending[i:j]))
            i = j

    # --- rows -------------------------------------------------------------------------------------------------
    def typed_rows(self, table: str, doc: str,
                   typed: Callable[[str, dict[str, Any]], dict[str, Any]]) -> list[dict[str, Any]]:
        """:meth:`rows` as ``typed`` makes them, remembered until the document's rows change (the before-image of
        a change is the after-image of the last one); callers copy before changing them."""
        key = (table, doc)
        found = self._typed.get(key)
        if found is None:
            found = self._typed[key] = [typed(table, row) for row in self.rows(table, doc)]
        return found

    def forget_typed(self) -> None:
        """Type the rows again from now on (a column was learnt)."""
        self._typed.clear()
        self.generation += 1

    def put(self, table: str, pk: str, doc: str, row: dict[str, Any]) -> None:
        self.generation += 1
        self._typed.pop((table, doc), None)
        entry = self._entry(table, doc)
        if entry and pk not in entry:  # an empty entry already counts as one
            self._cached_rows += 1
        entry[pk] = row
        self._pending.append((table, doc, pk, row))

    def put_many(self, table: str, rows: Iterable[tuple[str, str, dict[str, Any]]]) -> None:
        """Rows of a snapshot: straight to SQLite (not kept in memory)."""
        self.write_pending()
        self.generation += 1
        rows = list(rows)
        for _, doc, _ in rows:
            self._typed.pop((table, doc), None)
            dropped = self._cache.pop((table, doc), None)
            if dropped is not None:
                self._cached_rows -= _units(dropped)
        self._db.executemany(
            _UPSERT,
            ((table, doc, pk, _dumps(row)) for pk, doc, row in rows),
        )

    def delete(self, table: str, doc: str, pk: str) -> None:
        self.generation += 1
        self._typed.pop((table, doc), None)
        entry = self._entry(table, doc)
        if entry.pop(pk, None) is not None and entry:  # the last row's entry still counts as one
            self._cached_rows -= 1
        self._pending.append((table, doc, pk, None))

    def rows(self, table: str, doc: str) -> list[dict[str, Any]]:
        entry = self._entry(table, doc)
        if len(entry) < 2:
            return list(entry.values())
        return [entry[pk] for pk in sorted(entry)]

    def _query(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        """A query over the stored rows, which sees the changes not yet written."""
        self.write_pending()
        return self._db.execute(sql, tuple(params))

    def doc_by_bill_no(self, table: str, bill_no: str) -> str | None:
        """The document whose header row in ``table`` has this ``FBILLNO`` (indexed)."""
        index = _ref_index(table, "FBILLNO")  # made by index_references (partial: other rows skip the JSON parse)
        indexed = f'INDEXED BY "{index}"' if index in self._indexes else ""
        row = self._query(
            f"SELECT doc FROM row_image {indexed} WHERE tbl = '{table}' AND json_extract(data, '$.FBILLNO') = ? "
            "LIMIT 1", (bill_no,)).fetchone()
        return row[0] if row else None

    def index_references(self, references: Iterable[tuple[str, str]]) -> None:
        """An index per (table, id column) that :meth:`docs_referencing` looks up — partial, so only rows of that
        table pay for it — made once at start (``IF NOT EXISTS``)."""
        for table, column in references:
            self._db.execute(f'CREATE INDEX IF NOT EXISTS "{_ref_index(table, column)}" ON row_image '
                             f"(json_extract(data, '$.{column}')) WHERE tbl = '{table}'")
        self._db.commit()

    def docs_referencing(self, table: str, column: str, ref_id: str) -> list[str]:
        """The documents with a row in ``table`` whose ``column`` holds ``ref_id`` (indexed by
        :meth:`index_references`: a customer created is looked up among every sales order)."""
        values: list[Any] = [ref_id]
        if ref_id.lstrip("-").isdigit():
            values.append(int(ref_id))
        marks = ", ".join("?" for _ in values)
        # named: the planner would rather scan the table's rows by the primary key (~20 ms per lookup over 50,000
        # orders, against ~20 µs through the index)
        return [d for (d,) in self._query(
            f'SELECT DISTINCT doc FROM row_image INDEXED BY "{_ref_index(table, column)}" '
            f"WHERE tbl = '{table}' AND json_extract(data, '$.{column}') IN ({marks})", values)]

    def doc_ids(self, table: str) -> list[str]:
        return [d for (d,) in self._query("SELECT DISTINCT doc FROM row_image WHERE tbl = ?", (table,))]

    def row_keys(self, table: str) -> list[tuple[str, str]]:
        """(document, row key) of every row of ``table``."""
        return list(self._query("SELECT doc, pk FROM row_image WHERE tbl = ?", (table,)))

    def clear(self) -> None:
        self._forget()
        self._db.execute("DELETE FROM row_image")
        self._db.execute("DELETE FROM meta")

    # --- position ---------------------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT v FROM meta WHERE k = ?", (key,)).fetchone()
        return row[0] if row else None

    @property
    def lsn(self) -> int | None:
        """The committed position (asked for every transaction the stream delivers: kept in memory)."""
        if self._lsn is _UNKNOWN:
            value = self.get_meta("lsn")
            self._lsn = int(value) if value is not None else None
        return self._lsn  # type: ignore[return-value]

    def commit(self, lsn: int | None = None, **meta: str) -> None:
        if lsn is not None:
            meta["lsn"] = str(lsn)
        self.write_pending()
        for key, value in meta.items():
            self._db.execute("INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)", (key, value))
        self._db.commit()
        self._lsn = _UNKNOWN
        self._evict(self.cache_rows)

    def make_durable(self) -> int | None:
        """The committed position that survives a power loss, and a sync of what is committed now started.

        With ``synchronous=NORMAL`` a commit is written to the write-ahead log without an fsync: it survives a crash
        of the process, not of the machine.  Here the files are synced in a thread (the stream does not wait; the
        sync is what ``synchronous=FULL`` does at each commit), and the position committed before a sync counts as
        durable once that sync has finished — the next call returns it."""
        if self._sync is None:
            self.durable_lsn = self.lsn
        else:
            done = self._sync.finished()
            if done is not None:
                self.durable_lsn = done
            self._sync.start(self.lsn)
        return self.durable_lsn

    def sync_problem(self) -> str:
        """Why the store cannot be made durable right now (and since when), or an empty string."""
        if self._sync is None or not self._sync.problem:
            return ""
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self._sync.failing_since))
        return f"{self._sync.problem} (since {since})"

    def _forget(self) -> None:
        self.generation += 1
        self._lsn = _UNKNOWN
        self._typed.clear()
        self._pending.clear()
        self._cache.clear()
        self._cached_rows = 0

    def rollback(self) -> None:
        self._forget()
        self._db.rollback()

    def close(self) -> None:
        self._forget()
        self._db.close()
