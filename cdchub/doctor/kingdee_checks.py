"""The Kingdee database as the configured capture mode needs it.

``log`` (PostgreSQL's write-ahead log): the role connects, ``wal_level`` is ``logical`` with a free slot, the role may
open a replication connection, the slot exists, is ``pgoutput``, not lost and read, the publication holds every
captured table (``connectors/kingdee/publication.py``, asked never to change anything), the role may ``SELECT`` them
(the snapshot reads them).  ``query`` (any database SQLAlchemy reaches): the URL connects and every captured table
can be read.  Both: the database's clock against ours.  (``webapi`` reads no database: ``target_checks.py``.)
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import psycopg2
from psycopg2.extras import LogicalReplicationConnection
from sqlalchemy import create_engine, false, literal, literal_column, select, table, text
from sqlalchemy.engine import make_url

from cdchub.doctor.base import (
    CONNECT_TIMEOUT_S,
    STATEMENT_TIMEOUT_MS,
    Context,
    Finding,
    cursor,
    describe,
    fail,
    ok,
    warn,
)
from connectors.kingdee.documents import DocumentCatalog
from connectors.kingdee.publication import PublicationError, ensure_publication

#: Clock skew above this is reported (⚠); in the polled modes, above ``CDCHUB_CAPTURE__MARGIN_S`` it is a ✗.
CLOCK_SKEW_WARN_S = 2.0
#: An inactive slot holding more WAL than this, or inactive longer than that (PostgreSQL 17 tells), is a ✗.
SLOT_RETAINED_FAIL_BYTES = 1 << 30
SLOT_INACTIVE_FAIL_S = 600.0


def captured_tables() -> list[str]:
    return list(DocumentCatalog().by_table)


def _role(ctx: Context) -> str:
    db = ctx.settings.kingdee_db
    return f"{db.user}@{db.host}:{db.port}/{db.database}"


# --- log mode ---------------------------------------------------------------------------------------------------

def _connect(ctx: Context, **extra: Any) -> Any:
    return psycopg2.connect(ctx.settings.kingdee_db.dsn(), connect_timeout=int(CONNECT_TIMEOUT_S),
                            options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}", **extra)


def check_kingdee_db(ctx: Context) -> Finding:
    db = ctx.settings.kingdee_db
    try:
        conn = _connect(ctx)
    except psycopg2.Error as exc:
        message = describe(exc)
        if "password" in message or "authentication" in message:
            fix = (f"set CDCHUB_KINGDEE_DB__USER / CDCHUB_KINGDEE_DB__PASSWORD to the capture's role (the DBA: "
                   f"ALTER ROLE {db.user} PASSWORD '…')")
        elif "pg_hba" in message or "SSL" in message or "ssl" in message:
            fix = ("pg_hba.conf must allow this host for the role and database (hostssl … scram-sha-256); "
                   "CDCHUB_KINGDEE_DB__SSLMODE / CDCHUB_KINGDEE_DB__SSLROOTCERT must match the server's TLS")
        else:
            fix = ("check CDCHUB_KINGDEE_DB__HOST / CDCHUB_KINGDEE_DB__PORT / CDCHUB_KINGDEE_DB__DATABASE, that the "
                   "server listens there (listen_addresses) and that no firewall is in between")
        return fail("kingdee-db", f"cannot connect as {_role(ctx)}: {message}", fix)
    conn.autocommit = True
    ctx.pg = ctx.closing(conn)
    return ok("kingdee-db", f"connected as {_role(ctx)} (PostgreSQL {conn.server_version // 10000}."
                            f"{conn.server_version % 10000})")


def check_wal_level(ctx: Context) -> Finding:
    slot = ctx.settings.kingdee_db.slot
    with cursor(ctx) as cur:
        cur.execute("SELECT current_setting('wal_level'), current_setting('max_replication_slots')::int, "
                    "current_setting('max_wal_senders')::int, (SELECT count(*) FROM pg_replication_slots), "
                    "EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = %s)", (slot,))
        level, max_slots, senders, used, ours = cur.fetchone()
    what = f"wal_level={level}, max_replication_slots={max_slots} ({used} used), max_wal_senders={senders}"
    if level != "logical":
        return fail("wal_level", what, "as a superuser: ALTER SYSTEM SET wal_level = logical; then restart "
                                      "PostgreSQL (a reload is not enough)")
    if not ours and used >= max_slots:
        return fail("wal_level", what + ": no free slot for the capture's",
                    "raise max_replication_slots (and max_wal_senders) in postgresql.conf and restart PostgreSQL")
    if senders < 1:
        return fail("wal_level", what, "set max_wal_senders to at least the number of captures plus what the "
                                       "server already uses, and restart PostgreSQL")
    return ok("wal_level", what)


def check_replication(ctx: Context) -> Finding:
    ctx.needs("kingdee-db", ctx.pg)
    db = ctx.settings.kingdee_db
    try:
        conn = _connect(ctx, connection_factory=LogicalReplicationConnection)
    except psycopg2.Error as exc:
        return fail("replication", f"{db.user} may not open a replication connection: {describe(exc)}",
                    f"as a superuser: ALTER ROLE {db.user} REPLICATION; pg_hba.conf must allow {db.user} on database "
                    f"{db.database} from this host (logical replication matches the database's own lines, not the "
                    "`replication` keyword)")
    conn.close()
    return ok("replication", f"{db.user} opens logical replication connections")


def check_slot(ctx: Context) -> Finding:
    db = ctx.settings.kingdee_db
    with cursor(ctx) as cur:
        cur.execute("SELECT to_jsonb(s), pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn)::bigint "
                    "FROM pg_replication_slots s WHERE s.slot_name = %s", (db.slot,))
        row = cur.fetchone()
    if row is None:
        store = ctx.settings.state_dir / f"capture-{db.slot}.sqlite"
        if store.exists():
            return fail("slot", f"replication slot {db.slot!r} is gone although the capture has a position "
                                f"({store.name}): changes may be lost (SlotLost)",
                        "cdchub capture --resnapshot (once: re-sends every document; the sinks make that a no-op)")
        return warn("slot", f"replication slot {db.slot!r} does not exist yet",
                    "the capture creates it (after the publication) at its first start: cdchub capture")
    info, retained = row[0], int(row[1] or 0)
    size = f"{retained / (1 << 20):,.0f} MB of WAL retained"
    if info.get("plugin") != "pgoutput":
        return fail("slot", f"slot {db.slot!r} decodes with {info.get('plugin')!r}, not pgoutput (SlotInvalid)",
                    "cdchub capture --resnapshot (once: replaces it with a pgoutput slot)")
    if info.get("database") != db.database:
        return fail("slot", f"slot {db.slot!r} belongs to database {info.get('database')!r}, not {db.database!r}",
                    "set CDCHUB_KINGDEE_DB__SLOT to a slot name of its own for this database")
    if info.get("wal_status") in ("lost", "unreserved"):
        return fail("slot", f"slot {db.slot!r} is {info['wal_status']}: the WAL it needs is (about to be) removed "
                            f"(max_slot_wal_keep_size); {size}",
                    "lost: cdchub capture --resnapshot; unreserved: start the capture now and raise "
                    "max_slot_wal_keep_size")
    if info.get("active"):
        return ok("slot", f"slot {db.slot!r} (pgoutput) is read by pid {info.get('active_pid')}, {size}")
    inactive_s = _age_s(info.get("inactive_since"))
    since = f" for {inactive_s / 60:,.0f} min" if inactive_s is not None else ""
    if retained > SLOT_RETAINED_FAIL_BYTES or (inactive_s or 0) > SLOT_INACTIVE_FAIL_S:
        return fail("slot", f"slot {db.slot!r} has been inactive (no capture reads it){since}, {size}",
                    "start the capture (systemctl start cdchub-capture); a slot nobody reads keeps WAL until the "
                    f"disk is full — if this installation is gone: SELECT pg_drop_replication_slot('{db.slot}')")
    return warn("slot", f"slot {db.slot!r} (pgoutput) is inactive{since}: no capture reads it now, {size}",
                "start the capture if it should be running (systemctl start cdchub-capture)")


def _age_s(stamp: object) -> float | None:
    if not isinstance(stamp, str) or not stamp:
        return None
    try:
        return time.time() - datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return None


def check_publication(ctx: Context) -> Finding:
    db = ctx.settings.kingdee_db
    with cursor(ctx) as cur:
        cur.execute("SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = %s), "
                    "EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = %s)", (db.publication, db.slot))
        exists, slot_exists = cur.fetchone()
    if not exists and db.publication_autocreate and not slot_exists:
        return warn("publication", f"publication {db.publication!r} does not exist yet",
                    "the capture creates it before its slot (CDCHUB_KINGDEE_DB__PUBLICATION_AUTOCREATE=true) when its "
                    "role owns the tables; on a production database the DBA creates it (docs/deploy.md)")
    try:
        ensure_publication(ctx.pg, db.publication, captured_tables(), autocreate=False)  # checks, changes nothing
    except PublicationError as exc:
        first, _, rest = str(exc).partition("\n")
        what, _, lead = first.partition("; ")  # "<problem>; as the tables' owner run:" + the statements
        fix = " ".join(f"{lead} {rest}".split()) or "create the Kingdee tables first (docs/deploy.md)"
        if not exists and slot_exists:
            fix += (f" — the slot {db.slot!r} is older than that publication and cannot decode what came before it: "
                    "then cdchub capture --resnapshot once; or set CDCHUB_KINGDEE_DB__PUBLICATION to the name of the "
                    "publication the DBA made")
        return fail("publication", what.rstrip(":; "), fix)
    return ok("publication", f"publication {db.publication!r} publishes inserts, updates, deletes and truncates of "
                             f"the captured tables, each with REPLICA IDENTITY FULL")


def check_grants(ctx: Context) -> Finding:
    db = ctx.settings.kingdee_db
    tables = captured_tables()
    with cursor(ctx) as cur:
        cur.execute("SELECT t, to_regclass(quote_ident(t)) IS NOT NULL AND has_table_privilege("
                    "to_regclass(quote_ident(t)), 'SELECT'), to_regclass(quote_ident(t)) IS NULL "
                    "FROM unnest(%s::text[]) AS t", (tables,))
        rows = cur.fetchall()
    absent = [t for t, _, missing in rows if missing]
    refused = [t for t, allowed, missing in rows if not allowed and not missing]
    if refused:
        listed = ", ".join(f'"{t}"' for t in refused)
        return fail("grants", f"{db.user} may not SELECT {len(refused)} captured table(s): "
                              + ", ".join(refused[:5]) + (" …" if len(refused) > 5 else ""),
                    f"as the tables' owner: GRANT SELECT ON {listed} TO {db.user};")
    if absent:
        return warn("grants", f"{db.user} may SELECT the captured tables; {len(absent)} are not in this database: "
                              + ", ".join(absent),
                    "documents of those tables are not captured (their Kingdee module is not installed?)")
    return ok("grants", f"{db.user} may SELECT all {len(tables)} captured tables")


def check_clock_pg(ctx: Context) -> Finding:
    with cursor(ctx) as cur:
        started = time.time()
        cur.execute("SELECT now()")
        (now,) = cur.fetchone()
        ended = time.time()
    return _skew(ctx, now.timestamp() - (started + ended) / 2, ended - started)


def _skew(ctx: Context, skew_s: float, round_trip_s: float) -> Finding:
    what = f"the database's clock is {skew_s:+.3f} s from this host's (round trip {round_trip_s * 1000:.0f} ms)"
    fix = "run chrony/ntpd (NTP) on both hosts"
    margin = ctx.settings.capture.margin_s
    if ctx.settings.capture.mode != "log" and abs(skew_s) > margin:
        return fail("clock", what + f", more than CDCHUB_CAPTURE__MARGIN_S ({margin:g} s): polls can miss changes",
                    fix + f", or raise CDCHUB_CAPTURE__MARGIN_S above {abs(skew_s):.0f}")
    if abs(skew_s) > CLOCK_SKEW_WARN_S:
        return warn("clock", what + " (latencies and commit times are off by as much)", fix)
    return ok("clock", what)


# --- query mode -------------------------------------------------------------------------------------------------

#: A connect timeout per SQLAlchemy dialect's driver.
_CONNECT_TIMEOUT_ARGS = {"postgresql": "connect_timeout", "mssql": "timeout", "oracle": "tcp_connect_timeout",
                         "mysql": "connect_timeout"}
#: The database's time, in UTC or with its zone, per dialect.
_NOW_SQL = {"postgresql": "SELECT now()", "mssql": "SELECT SYSUTCDATETIME()",
            "oracle": "SELECT SYS_EXTRACT_UTC(SYSTIMESTAMP) FROM DUAL", "mysql": "SELECT UTC_TIMESTAMP(6)"}


def query_url(ctx: Context) -> str:
    url = ctx.settings.capture.query_url
    return url.get_secret_value() if url else ctx.settings.kingdee_db.sqlalchemy_url()


def check_query_db(ctx: Context) -> Finding:
    url = make_url(query_url(ctx))
    shown = url.render_as_string(hide_password=True)
    key = _CONNECT_TIMEOUT_ARGS.get(url.get_backend_name())
    engine = ctx.closing(create_engine(url, connect_args={key: int(CONNECT_TIMEOUT_S)} if key else {}))
    try:
        with engine.connect() as conn:
            conn.execute(select(literal(1))).scalar()
    except Exception as exc:  # any driver's error: the finding names it
        return fail("kingdee-db", f"cannot connect to {shown}: {describe(exc)}",
                    "check CDCHUB_CAPTURE__QUERY_URL (driver, host, database, user and password; the driver package "
                    "— pyodbc, oracledb — must be installed) and that this host reaches the database")
    ctx.engine = engine
    return ok("kingdee-db", f"connected to {shown}")


def check_query_grants(ctx: Context) -> Finding:
    engine = ctx.needs("kingdee-db", ctx.engine)
    schema = ctx.settings.capture.query_schema
    refused: list[str] = []
    with engine.connect() as conn:
        for name in captured_tables():
            try:
                conn.execute(select(literal_column("1")).select_from(table(name, schema=schema)).where(false()))
            except Exception:  # no such table, or no right to read it: both named below
                refused.append(name)
                conn.rollback()
    where = f"schema {schema}" if schema else "the connection's default schema"
    if refused:
        return fail("grants", f"{len(refused)} captured table(s) cannot be read in {where}: "
                              + ", ".join(refused[:5]) + (" …" if len(refused) > 5 else ""),
                    "GRANT SELECT on them to cdchub's login (SQL Server: GRANT SELECT ON dbo.<table> TO cdchub), and "
                    "set CDCHUB_CAPTURE__QUERY_SCHEMA to the schema of Kingdee's tables")
    return ok("grants", f"all {len(captured_tables())} captured tables can be read in {where}")


def check_clock_query(ctx: Context) -> Finding:
    engine = ctx.needs("kingdee-db", ctx.engine)
    sql = _NOW_SQL.get(engine.dialect.name)
    if sql is None:
        return Finding("clock", "skip", f"no clock query known for {engine.dialect.name}")
    with engine.connect() as conn:
        started = time.time()
        now = conn.execute(text(sql)).scalar()
        ended = time.time()
    if not isinstance(now, datetime):
        return Finding("clock", "skip", f"the database answered {type(now).__name__} for its time")
    stamp = (now if now.tzinfo else now.replace(tzinfo=UTC)).timestamp()
    return _skew(ctx, stamp - (started + ended) / 2, ended - started)
