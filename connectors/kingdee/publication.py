"""The publication ``pgoutput`` reads, and the table settings the capture relies on, checked before streaming.

``pgoutput`` only decodes tables of the publications it is given.  The capture makes sure, before it creates its
slot and each time it starts, that

- the publication exists and holds every captured table (creating it, or adding the missing tables, when the
  capture's role owns them and ``publication_autocreate`` is on — the local stack; otherwise it stops and prints the
  statements for the DBA);
- it publishes inserts, updates, deletes and truncates;
- every captured table has ``REPLICA IDENTITY FULL``: deletes and updates must carry the whole old row (a deleted
  entry row names its document only through its ``FID``).

The publication must exist before the slot: ``pgoutput`` looks publications up as of each change's position, so a
slot older than its publication cannot decode the changes in between.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import psycopg2
from psycopg2 import sql

log = logging.getLogger(__name__)

PUBLISHED_ACTIONS = ("pubinsert", "pubupdate", "pubdelete", "pubtruncate")


class PublicationError(RuntimeError):
    """The database is not set up for the capture; the message holds the SQL that fixes it."""


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def ensure_publication(conn: Any, publication: str, tables: Iterable[str], *, autocreate: bool) -> None:
    """Check (and where allowed, create or complete) the publication of ``tables``; raise
    :class:`PublicationError` naming the fix otherwise.  ``conn`` is an autocommit psycopg2 connection."""
    wanted = set(tables)
    with conn.cursor() as cur:
        cur.execute(
            "SELECT c.relname, c.relreplident FROM pg_class c WHERE c.relkind IN ('r', 'p') "
            "AND c.relname = ANY(%s) AND pg_table_is_visible(c.oid)", (sorted(wanted),))
        present = {name: ident for name, ident in cur.fetchall()}
        missing_tables = sorted(wanted - present.keys())
        if not present:
            raise PublicationError(f"none of the captured tables is in the database ({', '.join(sorted(wanted))}); "
                                   "create the Kingdee tables first (the local stack: `cdchub prepare`)")
        if missing_tables:
            log.warning("captured tables not in the database (not published): %s", ", ".join(missing_tables))
        wanted = set(present)
        cur.execute(f"SELECT {', '.join(PUBLISHED_ACTIONS)} FROM pg_publication WHERE pubname = %s", (publication,))
        row = cur.fetchone()
        if row is None:
            _change(conn, autocreate, publication, wanted,
                    sql.SQL("CREATE PUBLICATION {} FOR TABLE {}").format(
                        sql.Identifier(publication), sql.SQL(", ").join(map(sql.Identifier, sorted(wanted)))),
                    f"publication {publication!r} does not exist")
        else:
            off = [a[3:] for a, on in zip(PUBLISHED_ACTIONS, row, strict=True) if not on]
            if off:
                raise PublicationError(
                    f"publication {publication!r} does not publish {', '.join(off)}; the capture needs all four:\n"
                    f"  ALTER PUBLICATION {_ident(publication)} SET (publish = 'insert, update, delete, truncate');")
            cur.execute("SELECT tablename FROM pg_publication_tables WHERE pubname = %s", (publication,))
            absent = sorted(wanted - {name for (name,) in cur.fetchall()})
            if absent:
                _change(conn, autocreate, publication, set(absent),
                        sql.SQL("ALTER PUBLICATION {} ADD TABLE {}").format(
                            sql.Identifier(publication), sql.SQL(", ").join(map(sql.Identifier, absent))),
                        f"publication {publication!r} lacks {', '.join(absent)}")
    not_full = sorted(t for t, ident in present.items() if ident != "f")
    if not_full:
        raise PublicationError(
            "captured tables without REPLICA IDENTITY FULL (deletes and updates would not carry their old rows): "
            f"{', '.join(not_full)}; as their owner run:\n"
            + "\n".join(f"  ALTER TABLE {_ident(t)} REPLICA IDENTITY FULL;" for t in not_full))


def _change(conn: Any, autocreate: bool, publication: str, tables: set[str], statement: sql.Composed,
            problem: str) -> None:
    text = statement.as_string(conn) + ";"
    if not autocreate:
        raise PublicationError(f"{problem}; as the tables' owner run:\n  {text}\n"
                               "(or set CDCHUB_KINGDEE_DB__PUBLICATION_AUTOCREATE=true to let the capture do it)")
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
    except psycopg2.errors.InsufficientPrivilege as exc:
        raise PublicationError(f"{problem}, and the capture's role may not change it ({str(exc).strip()}); "
                               f"as the tables' owner run:\n  {text}") from exc
    log.info("%s: ran %s", problem, text)
