"""Single-material transactions at a steady rate, from several writer processes, for ``make bench-debezium``.

The rows are the project's: ``template`` reads back one material that ``infra.simulators.kingdee.erp.
insert_material`` wrote (header, zh-CN texts, 基本 tab: every column), and each writer inserts copies of those three
rows with new ids, number, name and times, as one transaction.  What differs is only the client: ``insert_material``
costs ~2 ms of client CPU per transaction (SQLAlchemy), more than two cores at 1,000 transactions/s, so each
transaction here is one round trip of plain psycopg2: one simple query of five statements — the ids (``nextval`` of
the identity sequences, as ``next_ids`` allocates them), the three INSERTs (``currval``), the header's id back —
which PostgreSQL runs as one implicit transaction, committed when it returns.  Each writer records, by material id,
the time that query returned.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from datetime import datetime
from typing import Any

import psycopg2
from psycopg2 import sql
from sqlalchemy import Engine

from connectors.kingdee.models import china_now

#: The material's tables in the order ``insert_material`` writes them, with their own key column.
MATERIAL_KEYS = {"T_BD_MATERIAL": "FMATERIALID", "T_BD_MATERIAL_L": "FPKID", "T_BD_MATERIALBASE": "FENTRYID"}

Template = dict[str, dict[str, Any]]


def template(engine: Engine, material_id: int) -> Template:
    """Every column of one material's three rows, as written."""
    out: Template = {}
    with engine.connect() as conn:
        for table in MATERIAL_KEYS:
            row = conn.exec_driver_sql(f'SELECT * FROM "{table}" WHERE "FMATERIALID" = %s', (material_id,))
            out[table] = dict(row.mappings().one())
    return out


def _statement(tpl: Template, sequences: dict[str, str]) -> tuple[sql.Composable, list[str]]:
    """One simple query: the three ids (``nextval``), the three INSERTs naming them (``currval``), the header's id
    back; and the template's columns it takes as parameters, in order."""
    def seq(table: str, fn: str) -> sql.Composable:
        return sql.SQL("{}({})").format(sql.SQL(fn), sql.Literal(sequences[table]))

    ids = {"FMATERIALID": seq("T_BD_MATERIAL", "currval")}
    params: list[str] = []
    parts = [sql.SQL("SELECT ") + sql.SQL(", ").join(seq(t, "nextval") for t in MATERIAL_KEYS)]
    for table, key in MATERIAL_KEYS.items():
        own = {**ids, key: seq(table, "currval")}
        if table == "T_BD_MATERIAL":
            own["FMASTERID"] = ids["FMATERIALID"]
        values = []
        for column in tpl[table]:
            if column in own:
                values.append(own[column])
            else:
                values.append(sql.Placeholder())
                params.append(f"{table}.{column}")
        parts.append(sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, tpl[table])), sql.SQL(", ").join(values)))
    parts.append(sql.SQL("SELECT ") + ids["FMATERIALID"])
    return sql.SQL("; ").join(parts), params


def _values(tpl: Template, params: list[str], number: str, name: str) -> list[Any]:
    now = china_now()
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # Kingdee's clock, in milliseconds
    changed = {"T_BD_MATERIAL.FNUMBER": number, "T_BD_MATERIAL_L.FNAME": name}
    out = []
    for param in params:
        table, column = param.split(".", 1)
        value = changed.get(param, tpl[table][column])
        out.append(now if isinstance(value, datetime) else value)
    return out


def write_materials(dsn: str, tpl: Template, worker: int, writers: int, n: int, rate: float, prefix: str,
                    barrier: Any, results: Any) -> None:
    """One writer process: materials ``worker``, ``worker + writers``, … each at its slot of the common schedule;
    puts (start time, [(material id, commit time)]) on ``results``."""
    conn = psycopg2.connect(dsn)
    conn.autocommit = True  # one simple query of several statements = one implicit transaction
    cur = conn.cursor()
    cur.execute("SELECT " + ", ".join(f"pg_get_serial_sequence('\"{t}\"', '{k}')" for t, k in MATERIAL_KEYS.items()))
    sequences = dict(zip(MATERIAL_KEYS, cur.fetchone() or (), strict=True))
    statement, params = _statement(tpl, sequences)
    query = statement.as_string(conn)
    barrier.wait()
    start = time.time()
    out: list[tuple[str, float]] = []
    for k in range(worker, n, writers):
        time.sleep(max(0.0, start + k / rate - time.time()))  # pacing the load generator
        cur.execute(query, _values(tpl, params, f"{prefix}{k:06d}", f"麻醉面罩 {k}"))
        row = cur.fetchone()
        assert row is not None
        out.append((str(row[0]), time.time()))
    results.put((start, out))
    conn.close()


class SteadyWriters:
    """``writers`` processes writing ``n`` materials at ``rate`` a second between them (``write_materials``), started
    together: ``go()`` releases them, ``collect()`` gives when they began and every material's commit time; leaving
    the ``with`` block stops any still running."""

    def __init__(self, dsn: str, tpl: Template, writers: int, n: int, rate: float, prefix: str) -> None:
        ctx = mp.get_context("spawn")
        self._barrier = ctx.Barrier(writers + 1)
        self._results = ctx.Queue()
        self._procs = [ctx.Process(target=write_materials, daemon=True,
                                   args=(dsn, tpl, w, writers, n, rate, prefix, self._barrier, self._results))
                       for w in range(writers)]
        self._timeout = n / rate * 10 + 120

    def __enter__(self) -> SteadyWriters:
        for p in self._procs:
            p.start()
        return self

    def go(self) -> None:
        self._barrier.wait(120)

    def collect(self) -> tuple[float, dict[str, float]]:
        """(the earliest writer's start, material id → commit time)."""
        begun: list[float] = []
        committed: dict[str, float] = {}
        for _ in self._procs:
            start, out = self._results.get(timeout=self._timeout)
            begun.append(start)
            committed.update(out)
        return min(begun), committed

    def __exit__(self, *_: object) -> None:
        for p in self._procs:
            p.join(10)
            if p.is_alive():
                p.kill()
