"""KingdeeCdcSource: log-based capture of Kingdee documents from PostgreSQL into Avro Kafka topics.

Delivery guarantee: at-least-once into Kafka, effectively-once per transaction on resume.
- The replication slot (``pgoutput``, reading the capture's publication) is created with an exported snapshot;
  the initial snapshot is read under that snapshot, so nothing between the snapshot and the stream is lost or doubled.
- Events of a batch of transactions are produced, Kafka acknowledges them (flush), then the document store commits
  the batch's end LSN, and only then is the slot acknowledged (``flush_lsn``).  On resume, transactions at or below
  the store's LSN are skipped; so a crash anywhere re-sends at most the unacknowledged batch (duplicates in Kafka
  that idempotent sinks ignore), and never skips one.  Many rows in one transaction share one commit and travel as
  one unit, so a bulk insert is neither skipped nor doubled.
- Heartbeats (``pg_logical_emit_message``) move the slot forward while the captured tables are idle, so the slot
  does not pin WAL.
- A missing slot while the store has a position, or a slot of another plugin, fails loudly (``SlotLost``/
  ``SlotInvalid``) — never a silent restart that would skip changes.  So does a slot that moved ahead of the store's
  position (``SlotAhead``: someone advanced it, the transactions in between are gone), unless the operator accepts
  the gap for that start (``cdchub capture --accept-gap``); an accepted gap is recorded (``capture-gaps.json``,
  the metrics, ``cdchub status``).
- A document that cannot be typed or encoded, or whose event is bigger than the topics take (``max_event_bytes``,
  see docs/capture.md "Document size"), goes to ``cdchub.dlq.capture`` with the reason, its key, size and position;
  the rest flows.  No single document can stop the capture.
"""

from __future__ import annotations

import gc
import json
import logging
import select
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.extras
from confluent_kafka import KafkaError, KafkaException, Producer

from connectors.common import failpoints
from connectors.common.avro import AvroEncoder, load_schema_text, registry_client
from connectors.common.dead_letters import DeadLetter, dlq_topic
from connectors.common.kafka import CHANGE_TOPIC_CONFIG, DLQ_TOPIC_CONFIG, ensure_topics, producer
from connectors.kingdee.assembly import DocumentAssembler, DocumentChange, Transaction
from connectors.kingdee.document_store import DocumentStore
from connectors.kingdee.documents import DocumentCatalog, DocumentSpec
from connectors.kingdee.pgoutput import (
    PLUGIN,
    Heartbeat,
    TransactionReader,
    Truncated,
    format_lsn,
    options,
    parse_lsn,
)
from connectors.kingdee.publication import ensure_publication
from connectors.kingdee.resnapshot import SNAPSHOT_PREFIX, SnapshotProgress, SnapshotRequest, read_tables
from connectors.kingdee.row_types import BadValue, RowTypes
from connectors.kingdee.schema_evolution import SchemaEvolver
from core.settings import KafkaSettings, RegistrySettings

log = logging.getLogger(__name__)

CAPTURE_FLOW = "capture"
HEARTBEAT_PREFIX = "cdchub.heartbeat"
SNAPSHOT_FETCH = 5000
#: While streaming, the cyclic garbage collector runs at batch ends (young objects) and this often in full; by
#: itself only after 100,000 allocations (a long transaction, a re-snapshot), never in full.
FULL_GC_S = 60.0
STREAM_GC_THRESHOLDS = (100_000, 50, 1_000_000)
#: The batch's changed rows go to SQLite when the stream is idle once this many wait: one ``executemany`` per few
#: dozen transactions rather than per transaction at 1,000 tx/s, and at most this many left for the batch's commit.
WRITE_WHEN_IDLE_ROWS = 64


GAPS_FILE = "capture-gaps.json"
#: Store meta key naming the capture mode that wrote the store (``log``, or a polled mode: ``polled_capture.py``).
MODE_KEY = "capture_mode"
#: Store meta key: the slot has been confirmed by :func:`confirm` (never past the store's position) since it was set.
CONFIRM_RULE = "confirm_rule"


def accepted_gaps(state_dir: Path) -> list[dict[str, Any]]:
    """The gaps operators accepted (``--accept-gap``): slot, from/to LSN, when — oldest first."""
    path = state_dir / GAPS_FILE
    return list(json.loads(path.read_text())) if path.exists() else []


class SlotLost(RuntimeError):
    pass


class SlotInvalid(RuntimeError):
    pass


class SlotAhead(RuntimeError):
    pass


class DeliveryFailed(RuntimeError):
    pass


class DocumentTooLarge(ValueError):
    """A document's event is bigger than the change topics take."""


@dataclass
class CaptureConfig:
    dsn: str
    database: str
    slot: str
    kafka: KafkaSettings
    registry_url: str
    state_dir: Path
    heartbeat_s: float = 5.0
    #: A batch — the transactions whose events Kafka acknowledges together before the store and the slot move on —
    #: ends at this many transactions or this age (100 ms: its commit writes a few hundred rows, a short pause).
    #: Events are produced as their transaction is read, so these bound what a crash re-sends and how often the
    #: capture waits for Kafka and commits its store, not the latency.
    max_batch_tx: int = 5000
    max_batch_s: float = 0.1
    documents: list[str] | None = None
    publication: str = "cdchub_kingdee"
    #: Create the publication (or add missing tables to it) when the role may; else stop naming the DBA's SQL.
    publication_autocreate: bool = True
    #: Start even if the slot moved ahead of the capture's position (the changes in between are lost): once, by an
    #: operator who read the error; the gap is recorded.
    accept_gap: bool = False
    #: The registry with its credentials (``registry_url`` alone: one that needs none).
    registry: RegistrySettings | None = None


@dataclass
class CaptureStats:
    events: int = 0
    transactions: int = 0
    snapshot_events: int = 0
    dead_letters: int = 0
    gaps_accepted: int = 0
    acked_lsn: int = 0
    last_commit_ms: int = 0
    #: How the capture reads Kingdee (``log``, ``query``, ``webapi``), and the polled modes' load on the source:
    #: statements or API calls made, rows read, documents read, polls.
    mode: str = "log"
    source_calls: int = 0
    source_rows: int = 0
    documents_read: int = 0
    polls: int = 0
    #: Why the document store cannot be synced to disk (the slot is not confirmed meanwhile), or empty.
    store_sync_problem: str = ""
    started_ms: int = field(default_factory=lambda: int(time.time() * 1000))

    def write(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({**self.__dict__, "acked_lsn_text": format_lsn(self.acked_lsn)}))
        tmp.replace(path)


class KingdeeCdcSource:
    def __init__(self, config: CaptureConfig, types: RowTypes, catalog: DocumentCatalog | None = None) -> None:
        self.config = config
        self.catalog = (catalog or DocumentCatalog()).only(config.documents) if config.documents else (
            catalog or DocumentCatalog())
        config.state_dir.mkdir(parents=True, exist_ok=True)
        self.store = DocumentStore(config.state_dir / f"capture-{config.slot}.sqlite")
        self.assembler = DocumentAssembler(self.catalog, self.store, types)
        self.stats = CaptureStats(gaps_accepted=len(accepted_gaps(config.state_dir)))
        self.stats_path = config.state_dir / "capture-stats.json"
        self._stop = False
        self._delivery_errors: list[str] = []
        self._producer: Producer | None = None
        self._encoders: dict[str, AvroEncoder] = {}
        #: The highest WAL end the server has shown (psycopg2 may report up to it by itself), and what is written
        #: down of it before feedback (see :meth:`_confirm`).
        self._reported_path = config.state_dir / f"capture-{config.slot}.reported"
        self._reported = int(self._reported_path.read_text()) if self._reported_path.exists() else 0
        self._wal_seen = self._reported
        #: The largest event the change topics take (key + value); bigger documents are dead-lettered.
        self.event_limit = config.kafka.max_event_bytes
        #: Events the broker refused as too large, found by the delivery reports: (topic, key, size).
        self._refused_too_large: list[tuple[str, str, int]] = []

    # --- setup ----------------------------------------------------------------------------------------------------
    def _prepare_kafka(self) -> None:
        topics = [self._topic(spec.topic) for spec in self.catalog.specs]
        kafka = self.config.kafka
        self.event_limit = ensure_topics(kafka, topics, kafka.topic_partitions, CHANGE_TOPIC_CONFIG)
        ensure_topics(kafka, [self._topic(dlq_topic(CAPTURE_FLOW))], 1, DLQ_TOPIC_CONFIG)
        registry = registry_client(self.config.registry or self.config.registry_url)
        for spec in self.catalog.specs:
            self._encoders[spec.name] = AvroEncoder(
                registry, f"{self._topic(spec.topic)}-value", load_schema_text(spec.topic)
            )
        self.evolver = SchemaEvolver(self.catalog, self.assembler.types, registry,
                                     lambda spec: f"{self._topic(spec.topic)}-value", self._column_types)
        self._producer = producer(kafka)

    def _column_types(self, table: str, columns: list[str]) -> dict[str, tuple[str, int | None, int | None]]:
        with psycopg2.connect(self.config.dsn) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT column_name, data_type, numeric_precision, numeric_scale FROM information_schema.columns "
                "WHERE table_name = %s AND column_name = ANY(%s)", (table, columns))
            return {name: (dtype, prec, scale) for name, dtype, prec, scale in cur.fetchall()}

    def _learn_columns(self, rows: list[tuple[str, dict[str, Any]]]) -> None:
        new: dict[str, list[str]] = {}
        shapes: set[tuple[str, tuple[str, ...]]] = set()
        for table, row in rows:
            shape = (table, tuple(row))  # the rows of one table in a transaction mostly have the same columns
            if shape in shapes:
                continue
            shapes.add(shape)
            for column in self.evolver.unknown_columns(table, row):
                if column not in new.setdefault(table, []):
                    new[table].append(column)
        new = {t: c for t, c in new.items() if c}
        if new:
            self.evolver.evolve(new, self._encoders)
            self.store.forget_typed()

    def _topic(self, name: str) -> str:
        return self.config.kafka.topic(name)

    def stop(self, *_: Any) -> None:
        self._stop = True

    def _slot_row(self, conn: Any) -> tuple[str, str | None] | None:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT plugin, confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %s",
                (self.config.slot,),
            )
            row = cur.fetchone()
        return (row[0], row[1]) if row else None

    # --- main loop --------------------------------------------------------------------------------------------
    def run(self, *, until_idle: bool = False) -> None:
        """Capture until stopped (SIGINT/SIGTERM), or — with ``until_idle`` — until the stream has no more data."""
        written_by = self.store.get_meta(MODE_KEY)
        if written_by not in (None, "log") and self.store.lsn is not None:
            self.store.close()
            raise SlotInvalid(
                f"the capture's document store was written by the {written_by} capture mode, whose versions are "
                "read times, later than any log position: the flows would take the log's events for old ones. Go "
                "back to the log capture on new topics (CDCHUB_KAFKA__TOPIC_PREFIX) with `cdchub capture "
                "--resnapshot`, see docs/capture-modes.md."
            )
        self._prepare_kafka()
        admin = psycopg2.connect(self.config.dsn)
        admin.autocommit = True
        thresholds = gc.get_threshold()
        repl = psycopg2.connect(self.config.dsn, connection_factory=psycopg2.extras.LogicalReplicationConnection)
        cur = repl.cursor()
        try:
            slot = self._slot_row(admin)
            if slot is not None and slot[0] != PLUGIN and self.store.lsn is not None:
                raise SlotInvalid(
                    f"replication slot {self.config.slot!r} uses the output plugin {slot[0]!r}; the capture reads "
                    f"{PLUGIN!r} (PostgreSQL's built-in decoder). Replace the slot with `cdchub capture "
                    f"--resnapshot` (drops it, creates a {PLUGIN} slot and re-sends every document; the sinks are "
                    "idempotent, so the targets do not change)."
                )
            ensure_publication(admin, self.config.publication, self.catalog.by_table,
                               autocreate=self.config.publication_autocreate)
            if self.store.lsn is None:
                if slot is not None:
                    log.warning("slot %s exists but no snapshot was completed; dropping and starting over",
                                self.config.slot)
                    with admin.cursor() as c:
                        c.execute("SELECT pg_drop_replication_slot(%s)", (self.config.slot,))
                self._create_slot_and_snapshot(cur)
            elif slot is None:
                raise SlotLost(
                    f"replication slot {self.config.slot!r} is missing but the capture holds position "
                    f"{format_lsn(self.store.lsn)}: changes since then may be lost. Start over with "
                    f"`cdchub capture --resnapshot` (re-sends every document; sinks are idempotent)."
                )
            assert self.store.lsn is not None
            if slot is not None and slot[1] is not None and parse_lsn(slot[1]) > self.store.lsn:
                if parse_lsn(slot[1]) <= self._reported:
                    log.debug("slot %s at %s: moved on by psycopg2 over WAL without changes", self.config.slot,
                              slot[1])
                elif self.store.get_meta(CONFIRM_RULE) is None:  # confirmed by a version before this rule
                    log.info("slot %s confirmed %s, past the capture's %s, as versions before this one let it; "
                             "from now on a slot ahead stops the capture", self.config.slot, slot[1],
                             format_lsn(self.store.lsn))
                else:
                    self._slot_ahead(parse_lsn(slot[1]))
            self.store.commit(None, **{CONFIRM_RULE: "below", MODE_KEY: "log"})
            cur.start_replication(slot_name=self.config.slot, decode=False, start_lsn=0,
                                  options=options(self.config.publication))
            log.info("streaming from slot %s after %s", self.config.slot, format_lsn(self.store.lsn))
            # what setup built (modules, models, schemas, clients: ~10^5 objects) never becomes garbage: out of the
            # collector's sight, a full collection no longer walks it; and the collector runs when a batch is
            # acknowledged (young objects) and once a minute (all), seldom amid a transaction — its full
            # collections had paused the stream 60-120 ms every few seconds at 1,000 transactions/s
            gc.collect()
            gc.freeze()
            gc.set_threshold(*STREAM_GC_THRESHOLDS)
            self._stream(cur, admin, until_idle)
        finally:
            gc.set_threshold(*thresholds)
            if self._producer is not None:
                self._producer.flush(10)
            self.stats.write(self.stats_path)
            self.store.close()
            repl.close()
            admin.close()

    def _slot_ahead(self, slot_lsn: int) -> None:
        """The slot confirms a position after the capture's own: the transactions in between were skipped."""
        held = self.store.lsn or 0
        if not self.config.accept_gap:
            raise SlotAhead(
                f"replication slot {self.config.slot!r} is at {format_lsn(slot_lsn)}, ahead of the capture's "
                f"position {format_lsn(held)}: someone advanced it, and the changes committed in between will "
                "never be streamed. Either re-send every document with `cdchub capture --resnapshot` (safe: the "
                "sinks are idempotent), or start once with `cdchub capture --accept-gap` to go on from the slot "
                "and accept that loss (it is recorded)."
            )
        gaps_path = self.config.state_dir / GAPS_FILE
        gaps = accepted_gaps(self.config.state_dir)
        gaps.append({"slot": self.config.slot, "from_lsn": format_lsn(held), "to_lsn": format_lsn(slot_lsn),
                     "accepted_at_ms": int(time.time() * 1000)})
        tmp = gaps_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(gaps, indent=1))
        tmp.replace(gaps_path)
        self.store.commit(slot_lsn)
        self.stats.gaps_accepted = len(gaps)
        log.warning("accepted a gap in the capture: changes between %s and %s were skipped (recorded in %s); "
                    "`cdchub capture --resnapshot` re-sends every document", format_lsn(held), format_lsn(slot_lsn),
                    gaps_path)

    def _create_slot_and_snapshot(self, cur: Any) -> None:
        cur.execute(f"CREATE_REPLICATION_SLOT {self.config.slot} LOGICAL {PLUGIN} EXPORT_SNAPSHOT")
        _, consistent_point, snapshot_name, _ = cur.fetchone()
        lsn = int(consistent_point.split("/")[0], 16) << 32 | int(consistent_point.split("/")[1], 16)
        log.info("created slot %s at %s; reading the initial snapshot", self.config.slot, consistent_point)
        self.store.clear()
        snap = psycopg2.connect(self.config.dsn)
        try:
            with snap.cursor() as c:
                c.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                c.execute("SET TRANSACTION SNAPSHOT %s", (snapshot_name,))
            read_tables(lambda table: snap.cursor(name=f"snap_{table.lower()}"),
                        {table: part for table, (_, part) in self.catalog.by_table.items()}, self.store,
                        lambda table, cols: self._learn_columns([(table, dict.fromkeys(cols))]))
            snap.rollback()
        finally:
            snap.close()
        tx = Transaction(xid=None, commit_lsn=lsn, commit_time_ms=int(time.time() * 1000))
        self.stats.snapshot_events += self._emit_documents(self.catalog.specs, tx)
        self._acknowledge(None, lsn)
        log.info("initial snapshot done: %d documents", self.stats.snapshot_events)

    def _resnapshot(self, cur: Any, message: Heartbeat) -> None:
        """A re-snapshot request met in the stream (``resnapshot.py``): read, emit, acknowledge the message."""
        try:
            request = SnapshotRequest.from_message(message.content)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring a malformed snapshot request at %s: %s", format_lsn(message.lsn), exc)
            return
        if request.slot != self.config.slot:
            return  # for another capture of this database
        specs = [self.catalog.by_name[d] for d in request.documents if d in self.catalog.by_name]
        progress = SnapshotProgress(request.id, "reading", [s.name for s in specs])
        parts = {p.table: p for spec in specs for p in (spec.header, *spec.parts)}
        log.info("re-snapshot %s of %s requested at %s", request.id, ", ".join(progress.documents),
                 format_lsn(message.lsn))
        seen: dict[str, set[str]] = {table: set() for table in parts}
        snap = psycopg2.connect(self.config.dsn)
        try:
            with snap.cursor() as c:
                c.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                c.execute("SELECT pg_current_wal_lsn()::text")  # the snapshot is taken here; commits after it
                (position,) = c.fetchone()                        # have later LSNs
                for table in parts:
                    c.execute(f'SELECT count(*) FROM "{table}"')
                    progress.rows_total += int(c.fetchone()[0])
            progress.save(self.config.state_dir)

            def rows_read(table: str, rows: list[tuple[str, str, dict[str, Any]]]) -> None:
                seen[table].update(pk for pk, _, _ in rows)
                progress.rows_read += len(rows)
                progress.save(self.config.state_dir)

            read_tables(lambda table: snap.cursor(name=f"resnap_{table.lower()}"), parts, self.store,
                        lambda table, cols: self._learn_columns([(table, dict.fromkeys(cols))]), rows_read)
            snap.rollback()
        except Exception as exc:
            self.store.rollback()
            progress.status, progress.error = "failed", str(exc)
            progress.save(self.config.state_dir)
            raise
        finally:
            snap.close()
        tx = Transaction(xid=None, commit_lsn=parse_lsn(position), commit_time_ms=int(time.time() * 1000))
        vanished: list[DocumentChange] = []
        for spec in specs:  # documents whose header the database no longer has: deleted, as their last image says
            for doc_id in sorted({d for d, pk in self.store.row_keys(spec.header.table) if pk not in
                                  seen[spec.header.table]}):
                try:
                    vanished.append(DocumentChange(spec, doc_id, "d", self.assembler.build(spec, doc_id), None,
                                                   spec.tables))
                except BadValue as exc:
                    self._dead_letter(spec.name, doc_id, exc, tx)
        for table in parts:
            for doc_id, pk in self.store.row_keys(table):
                if pk not in seen[table]:
                    self.store.delete(table, doc_id, pk)
        progress.status = "emitting"
        progress.documents_total = sum(len(self.store.doc_ids(spec.header.table)) for spec in specs)

        def emitted() -> None:
            progress.documents_emitted += 1
            if progress.documents_emitted % 500 == 0:
                progress.save(self.config.state_dir)

        self._emit_documents(specs, tx, emitted)
        for change in vanished:
            self._emit(change, tx, snapshot=True)
            progress.deleted += 1
        self._acknowledge(cur, message.lsn)
        progress.status = "done"
        progress.save(self.config.state_dir)
        log.info("re-snapshot %s done: %d documents, %d deleted", request.id, progress.documents_emitted,
                 progress.deleted)

    def _emit_documents(self, specs: Iterable[DocumentSpec], tx: Transaction,
                        emitted: Callable[[], None] = lambda: None) -> int:
        """Every document of ``specs`` in the store as a read event of a snapshot; returns how many were sent."""
        sent = 0
        for spec in specs:
            for doc_id in self.store.doc_ids(spec.header.table):
                try:
                    doc = self.assembler.build(spec, doc_id)
                except BadValue as exc:
                    self._dead_letter(spec.name, doc_id, exc, tx)
                    continue
                self._emit(DocumentChange(spec, doc_id, "r", None, doc, spec.tables), tx, snapshot=True)
                sent += 1
                emitted()
                failpoints.reach("capture.snapshot_document_sent")
        return sent

    def _messages(self, cur: Any, timeout: float) -> Iterator[Any]:
        msg = cur.read_message()
        if msg is None and self.store.has_pending(WRITE_WHEN_IDLE_ROWS):
            self.store.write_pending()  # nothing to read: the batch's rows go to SQLite now, not at its commit
            msg = cur.read_message()
        if msg is None:
            ready, _, _ = select.select([cur], [], [], timeout)
            if ready:
                msg = cur.read_message()
        while msg is not None:
            yield msg
            msg = cur.read_message()
        self._wal_seen = max(self._wal_seen, int(getattr(cur, "wal_end", 0) or 0))  # keepalives were read too

    def _stream(self, cur: Any, admin: Any, until_idle: bool) -> None:
        # of an old row only its keys are read: the before-image is built from the document store
        reader = TransactionReader({table: {part.doc_key, *part.pk}
                                    for table, (_, part) in self.catalog.by_table.items()})
        last_heartbeat = 0.0
        last_feedback = 0.0
        pending_lsn: int | None = None
        batch_started = 0.0
        batch_tx = 0
        last_full_gc = time.monotonic()
        while not self._stop:
            now = time.monotonic()
            if now - last_heartbeat >= self.config.heartbeat_s:
                with admin.cursor() as c:
                    c.execute("SELECT pg_logical_emit_message(false, %s, now()::text)", (HEARTBEAT_PREFIX,))
                last_heartbeat = now
            got_any = False
            # with a batch open between transactions, wait for messages only until it is due (a wait ends as soon as
            # a message comes: it never delays one)
            wait = 0.2 if pending_lsn is None or reader.in_transaction else max(
                0.0, batch_started + self.config.max_batch_s - now)
            for msg in self._messages(cur, timeout=wait):
                got_any = True
                item = reader.feed(msg.payload, msg.data_start)
                if isinstance(item, Transaction):
                    if item.commit_lsn <= (self.store.lsn or 0):
                        continue  # already emitted before a restart
                    self._publish(item)
                    pending_lsn = item.commit_lsn
                    batch_tx += 1
                    batch_started = batch_started or time.monotonic()
                elif isinstance(item, Heartbeat) and item.prefix == SNAPSHOT_PREFIX:
                    if item.lsn <= (self.store.lsn or 0):
                        continue  # done before a restart
                    if pending_lsn is not None:
                        self._acknowledge(cur, pending_lsn)
                        pending_lsn, batch_tx, batch_started = None, 0, 0.0
                    self._resnapshot(cur, item)
                elif isinstance(item, Heartbeat) and not reader.in_transaction and pending_lsn is None:
                    if item.lsn > (self.store.lsn or 0):
                        self._acknowledge(cur, item.lsn)
                elif isinstance(item, Truncated):
                    for table in item.tables:
                        self._dead_letter("truncate", table, RuntimeError(
                            f"TRUNCATE of {table}: no row events; run `cdchub snapshot {table}` (a re-snapshot)"),
                            None)
                if batch_tx >= self.config.max_batch_tx or (
                    pending_lsn and time.monotonic() - batch_started >= self.config.max_batch_s
                ):
                    break
            due = batch_tx >= self.config.max_batch_tx or (
                time.monotonic() - batch_started >= self.config.max_batch_s) or (until_idle and not got_any)
            if pending_lsn is not None and not reader.in_transaction and due:
                self._acknowledge(cur, pending_lsn, batch=True)
                pending_lsn, batch_tx, batch_started = None, 0, 0.0
                gc.collect(1)
            if time.monotonic() - last_full_gc >= FULL_GC_S:
                gc.collect()
                last_full_gc = time.monotonic()
            if time.monotonic() - last_feedback >= 1.0:
                self._confirm(cur, self.store.make_durable() or 0, reply=True)
                self.stats.store_sync_problem = self.store.sync_problem()
                self.stats.write(self.stats_path)
                last_feedback = time.monotonic()
            if until_idle and not got_any and pending_lsn is None and not reader.in_transaction:
                return
        if pending_lsn is not None and not reader.in_transaction:  # stopped: what was sent is acknowledged
            self._acknowledge(cur, pending_lsn)

    # --- producing ----------------------------------------------------------------------------------------------
    def _on_delivery(self, err: KafkaError | None, msg: Any) -> None:
        if err is None:
            return
        if err.code() == KafkaError.MSG_SIZE_TOO_LARGE and msg.topic() != self._topic(dlq_topic(CAPTURE_FLOW)):
            # the broker's limit is below ours (a cluster that refused to raise it): this document is dead-lettered
            self._refused_too_large.append((msg.topic(), (msg.key() or b"").decode(), len(msg.value() or b"")))
            return
        self._delivery_errors.append(str(err))

    def _produce(self, topic: str, key: bytes, value: bytes | None) -> None:
        assert self._producer is not None
        while True:
            try:
                self._producer.produce(topic, key=key, value=value, on_delivery=self._on_delivery)
                return
            except BufferError:
                self._producer.poll(0.05)

    def _publish(self, tx: Transaction) -> None:
        self._learn_columns([(ch.table, row) for ch in tx.changes for row in (ch.before, ch.after) if row])
        for change in self.assembler.changes_of(tx):
            self._emit(change, tx, snapshot=False)
        for failed in self.assembler.failures:
            self._dead_letter(failed.spec.name, failed.doc_id, failed.error, tx)
        self.stats.transactions += 1
        self.stats.last_commit_ms = tx.commit_time_ms

    def _emit(self, change: DocumentChange, tx: Transaction, *, snapshot: bool) -> None:
        spec = change.spec
        envelope = {
            "before": change.before,
            "after": change.after,
            "op": change.op,
            "ts_ms": int(time.time() * 1000),
            "source": {
                "system": "kingdee", "db": self.config.database, "form_id": spec.form_id,
                "table": spec.header.table, "tables": list(change.tables), "number": change.number,
                "lsn": tx.commit_lsn, "tx_id": tx.xid, "commit_time": tx.commit_time_ms, "snapshot": snapshot,
            },
        }
        try:
            value = self._encoders[spec.name].encode(envelope)
        except Exception as exc:  # a value the schema cannot hold: dead-letter this document only
            self._dead_letter(spec.name, change.doc_id, exc, tx, record=envelope)
            return
        key = change.doc_id.encode()
        topic = self._topic(spec.topic)
        if len(key) + len(value) > self.event_limit:
            self._too_large(spec.name, change.doc_id, len(key) + len(value), tx, change)
            return
        try:
            self._produce(topic, key, value)
        except KafkaException as exc:  # the producer's own size check (a limit set below the topics')
            if exc.args[0].code() != KafkaError.MSG_SIZE_TOO_LARGE:
                raise
            self._too_large(spec.name, change.doc_id, len(key) + len(value), tx, change)
            return
        if change.op == "d":
            self._produce(topic, key, None)  # tombstone: compaction forgets the document
        self.stats.events += 1
        self._producer.poll(0)  # type: ignore[union-attr]

    def _too_large(self, document: str, doc_id: str, size: int, tx: Transaction | None,
                   change: DocumentChange | None = None) -> None:
        """A document whose event is bigger than Kafka takes: dead-lettered with its size; the capture goes on."""
        summary = {"document": document, "id": doc_id, "size_bytes": size, "limit_bytes": self.event_limit}
        if change is not None:
            summary.update(op=change.op, number=change.number, tables=list(change.tables))
        self._dead_letter(document, doc_id, DocumentTooLarge(
            f"{document} {doc_id}{f' ({change.number})' if change is not None and change.number else ''}: its "
            f"event is {size:,} bytes, above the {self.event_limit:,} bytes the topics take (CDCHUB_KAFKA__"
            "MAX_EVENT_BYTES); not sent — shorten the document in Kingdee (its next change is captured again) or "
            "raise the limit and re-snapshot it"), tx, record=summary)

    def _dead_letter(self, document: str, doc_id: str, exc: BaseException, tx: Transaction | None,
                     record: Any = None) -> None:
        letter = DeadLetter.of(
            CAPTURE_FLOW, f"assemble:{document}", exc, key=doc_id, record=record,
            topic=self._topic(f"kingdee.{document}"), offset=tx.commit_lsn if tx else None,
        )
        letter.log()
        self._produce(self._topic(dlq_topic(CAPTURE_FLOW)), doc_id.encode(), letter.to_json())
        self.stats.dead_letters += 1

    def _confirm(self, cur: Any, lsn: int, *, reply: bool = False) -> None:
        """Tell the server the slot may move to just before ``lsn`` — the store's position, always committed and
        synced to disk first (``DocumentStore.make_durable``: a power loss cannot take the store behind the slot).

        One below, on purpose: psycopg2 moves the reported position on by itself to the WAL end of a server
        keepalive whenever the position it was last given is at or past the last message received (and at the start
        of a connection, before any message), and reports that with the next feedback.  The slot would then sit
        ahead of the store, which is what a slot someone advanced looks like (``SlotAhead``).  Reporting ``lsn - 1``
        keeps psycopg2 from doing so once messages flow; for the rest, the highest WAL end the server has shown is
        written down (``<state>/capture-<slot>.reported``) before each feedback, and a slot at or below it is not a
        gap.  On a restart the server re-sends at most the message at ``lsn``, which the capture skips."""
        self._wal_seen = max(self._wal_seen, int(getattr(cur, "wal_end", 0) or 0))
        if self._wal_seen > self._reported:
            tmp = self._reported_path.with_suffix(".tmp")
            tmp.write_text(str(self._wal_seen))
            tmp.replace(self._reported_path)
            self._reported = self._wal_seen
        cur.send_feedback(flush_lsn=max(0, lsn - 1), reply=reply)

    def _acknowledge(self, cur: Any, lsn: int, *, batch: bool = False, meta: dict[str, str] | None = None) -> None:
        """Kafka first, then the store, then the slot: the order that makes a crash safe."""
        assert self._producer is not None
        remaining = self._producer.flush(30)
        if self._refused_too_large and not remaining:
            refused, self._refused_too_large = self._refused_too_large, []
            at = Transaction(xid=None, commit_lsn=lsn, commit_time_ms=0)
            for topic, key, size in refused:
                self._too_large(topic.removeprefix(self._topic("kingdee.")), key, size, at)
            remaining = self._producer.flush(30)
        if remaining or self._delivery_errors:
            self.store.rollback()
            raise DeliveryFailed(f"Kafka did not acknowledge {remaining} events: {self._delivery_errors[:3]}")
        if batch:
            failpoints.reach("capture.batch_acked_by_kafka")  # a crash here re-sends the batch, nothing more
        self.store.commit(lsn, **(meta or {}))
        if cur is not None and not batch:  # batches are confirmed by the stream's feedback, once durable (1 s)
            self._confirm(cur, self.store.make_durable() or 0)
        self.stats.acked_lsn = lsn
        self.stats.store_sync_problem = self.store.sync_problem()


def run_capture(config: CaptureConfig, types: RowTypes, *, until_idle: bool = False) -> CaptureStats:
    source = KingdeeCdcSource(config, types)
    signal.signal(signal.SIGTERM, source.stop)
    signal.signal(signal.SIGINT, source.stop)
    source.run(until_idle=until_idle)
    return source.stats
