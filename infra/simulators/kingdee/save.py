"""``Save``/``BatchSave``: create or update whole documents, one database transaction per document.

- ``FID`` (or the basedata key, e.g. ``FMATERIALID``) 0 or absent: a new document in status A (创建), numbered
  by the coding rule (``erp.bill_numbers``: ``XSDD000042`` continues the highest existing number) when no number
  is sent.
- Otherwise an update of that document, allowed only in status Z/A/D. Only the fields sent are written
  (``NeedUpDateFields`` narrows that further); with ``IsDeleteEntry`` (default true) entry lines not sent are
  deleted; a line with ``FEntryID`` updates that line, one without is added.
- Every write sets ``FMODIFYDATE``/``FMODIFIERID`` (the API user), new ones also ``FCREATEDATE``/``FCREATORID``.
- ``IsAutoSubmitAndAudit``: the same transaction also audits (status C).

A failed document rolls back alone; in a BatchSave the others still commit (``DIndex`` says which failed).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, text, update

from connectors.kingdee import models as m
from infra.simulators.kingdee import envelope as env
from infra.simulators.kingdee.account_forms import LENIENT, AccountForms
from infra.simulators.kingdee.derive import derive
from infra.simulators.kingdee.erp.bill_numbers import BILL_PREFIX, next_bill_no
from infra.simulators.kingdee.erp.company import ORG_ID
from infra.simulators.kingdee.erp.status import set_document_status
from infra.simulators.kingdee.forms import FieldDef, FormDef
from infra.simulators.kingdee.model_input import ModelInput, SaveOptions, read_model
from infra.simulators.kingdee.refs import number_taken, resolve
from infra.simulators.kingdee.values import BadValue, parse_int, parse_plain

EDITABLE = ("Z", "A", "D")
STATUS_NAMES = {"Z": "暂存", "A": "创建", "B": "审核中", "C": "已审核", "D": "重新审核"}


class DocumentRejected(Exception):
    def __init__(self, msg_code: int, problems: list[env.Problem]) -> None:
        super().__init__(problems[0].message if problems else "rejected")
        self.msg_code = msg_code
        self.problems = problems


def now() -> datetime:
    ts = m.china_now()
    return ts.replace(microsecond=ts.microsecond // 1000 * 1000)


def lock(conn: Connection, name: str) -> None:
    """Serialise numbering and uniqueness checks per table (PostgreSQL advisory lock, held to commit)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:n))"), {"n": name})


class DocumentWriter:
    def __init__(self, engine: Engine, user_id: int, forms: AccountForms = LENIENT) -> None:
        self.engine = engine
        self.user_id = user_id
        self.forms = forms

    def save_many(
        self,
        form: FormDef,
        models: list[Any],
        options: SaveOptions,
        returned: Callable[[Connection, FormDef, Any], dict[str, Any]] | None = None,
    ) -> env.Outcome:
        outcome = env.Outcome()
        for dindex, model in enumerate(models):
            if not isinstance(model, dict):
                outcome.fail(env.PARAMETER_ERROR, [env.Problem("Model格式不正确，应为JSON对象", "Model", dindex)])
                continue
            try:
                with self.engine.begin() as conn:
                    doc_id, number = self._save_one(conn, form, model, options, dindex)
                    if returned is not None:
                        outcome.return_data.append(returned(conn, form, doc_id))
                outcome.successes.append(env.Success(doc_id, number, dindex))
            except DocumentRejected as exc:
                outcome.fail(exc.msg_code, exc.problems)
        return outcome

    # --- one document -------------------------------------------------------------------------------------

    def _save_one(
        self, conn: Connection, form: FormDef, model: dict[str, Any], options: SaveOptions, dindex: int
    ) -> tuple[Any, str]:
        data = read_model(form, model, options)
        problems: list[env.Problem] = []
        try:
            doc_id = parse_int(data.doc_id)
        except BadValue as exc:
            raise DocumentRejected(env.VALIDATION_FAILED, [env.Problem(str(exc), form.key, dindex)]) from exc
        header = m.TABLES[form.header]
        key = header.c[form.key]
        ts = now()
        if doc_id:
            row = conn.execute(
                select(header.c.FDOCUMENTSTATUS, header.c[form.number_column]).where(key == doc_id)
            ).first()
            if row is None:
                raise DocumentRejected(
                    env.DATA_NOT_FOUND, [env.Problem(f"内码为“{doc_id}”的{form.caption}不存在", form.key, dindex)]
                )
            if row[0] not in EDITABLE:
                message = f"{form.caption}“{row[1]}”的数据状态为{STATUS_NAMES.get(row[0], row[0])}，不允许修改"
                raise DocumentRejected(env.VALIDATION_FAILED, [env.Problem(message, "FDocumentStatus", dindex)])
        values = self._values(conn, data.header, options, problems, dindex)
        lines = [
            (parse_int(eid) if str(eid).strip().lstrip("-").isdigit() else -1,
             self._values(conn, vals, options, problems, dindex, line=n + 1))
            for n, (eid, vals) in enumerate(data.entry_lines)
        ]  # fmt: skip
        if not doc_id:
            self._check_required(form, data, values, lines, problems, dindex)
        number = self._number(conn, form, values, doc_id, problems, dindex)
        if problems:
            raise DocumentRejected(env.VALIDATION_FAILED, problems)
        if doc_id:
            self._update_header(conn, form, doc_id, values, ts)
        else:
            doc_id = self._insert_header(conn, form, values, number, ts)
        if data.entries is not None and form.entry is not None:
            self._write_entries(conn, form, doc_id, lines, options.is_delete_entry, dindex)
        derive(conn, form, doc_id)
        if options.is_auto_submit_and_audit:
            set_document_status(conn, form.header, doc_id, "C", user_id=self.user_id, now=ts)
        return doc_id, number

    def _values(
        self,
        conn: Connection,
        pairs: list[tuple[FieldDef, Any]],
        options: SaveOptions,
        problems: list[env.Problem],
        dindex: int,
        line: int | None = None,
    ) -> dict[FieldDef, Any]:
        out: dict[FieldDef, Any] = {}
        for f, raw in pairs:
            try:
                if f.kind in ("ref", "org", "id"):
                    out[f] = resolve(conn, f, raw, verify=options.verify_basedata)
                else:
                    out[f] = parse_plain(f, raw)
            except BadValue as exc:
                where = f"第{line}行分录，" if line else ""
                problems.append(env.Problem(f"{where}字段“{f.label}”：{exc}", f.key, dindex))
        return out

    @staticmethod
    def _empty(value: Any) -> bool:
        return value is None or value == 0 or (isinstance(value, str) and not value.strip())

    def _check_required(
        self,
        form: FormDef,
        data: ModelInput,
        values: dict[FieldDef, Any],
        lines: list[tuple[int, dict[FieldDef, Any]]],
        problems: list[env.Problem],
        dindex: int,
    ) -> None:
        sent = {f: v for f, v in values.items()}
        for f in form.header_fields():
            required = f.required or self.forms.requires(form.form_id, f.key)
            if required and self._empty(sent.get(f)) and not any(p.field_name == f.key for p in problems):
                problems.append(env.Problem(f"字段“{f.label}”是必填项", f.key, dindex))
        if form.entry_required and not lines:
            problems.append(
                env.Problem(f"{form.caption}的分录不能为空", form.entry.key if form.entry else None, dindex)
            )
        for n, (_eid, line) in enumerate(lines, start=1):
            for f in form.entry_fields():
                required = f.required or self.forms.requires(form.form_id, f.key)
                if required and self._empty(line.get(f)) and not any(p.field_name == f.key for p in problems):
                    problems.append(env.Problem(f"第{n}行分录，字段“{f.label}”是必填项", f.key, dindex))

    def _number(
        self,
        conn: Connection,
        form: FormDef,
        values: dict[FieldDef, Any],
        doc_id: int,
        problems: list[env.Problem],
        dindex: int,
    ) -> str:
        number_field = next((f for f in values if f.column == form.number_column and f.table == form.header), None)
        number = str(values[number_field]).strip() if number_field else ""
        lock(conn, form.header)
        if number and not doc_id and not form.basedata and not self.forms.keeps_number(form.form_id):
            number = ""  # the bill's coding rule gives the number; the one sent is not kept
            if number_field is not None:
                values.pop(number_field, None)
        if number:
            if number_taken(conn, form.header, form.number_column, number, doc_id):
                message = f"{form.caption}编码“{number}”已经被使用，编码必须唯一"
                problems.append(env.Problem(message, form.number_key, dindex))
            return number
        if doc_id:
            header = m.TABLES[form.header]
            return str(conn.execute(
                select(header.c[form.number_column]).where(header.c[form.key] == doc_id)
            ).scalar_one()).strip()  # fmt: skip
        if form.basedata:
            problems.append(env.Problem(f"字段“{form.number_key}”是必填项", form.number_key, dindex))
            return ""
        return self._next_number(conn, form)

    @staticmethod
    def _next_number(conn: Connection, form: FormDef) -> str:
        if form.header in BILL_PREFIX:
            return next_bill_no(conn, form.header)
        prefix, width = form.bill_prefix or (form.form_id.split("_")[-1][:4].upper(), 6)
        col = m.TABLES[form.header].c.FBILLNO
        numbers = conn.execute(select(col).where(col.like(f"{prefix}%"))).scalars()
        last = max((int(n[len(prefix) :]) for n in numbers if n and n[len(prefix) :].isdigit()), default=0)
        return f"{prefix}{last + 1:0{width}d}"

    # --- writing ----------------------------------------------------------------------------------------------

    @staticmethod
    def _by_table(values: dict[FieldDef, Any]) -> dict[str, dict[str, Any]]:
        tables: dict[str, dict[str, Any]] = {}
        for f, value in values.items():
            tables.setdefault(f.table, {})[f.column] = value
        return tables

    def _insert_header(
        self, conn: Connection, form: FormDef, values: dict[FieldDef, Any], number: str, ts: datetime
    ) -> int:
        by_table = self._by_table(values)
        doc_id = m.next_ids(conn, form.header, 1)[0]
        header = m.TABLES[form.header]
        row: dict[str, Any] = {
            form.key: doc_id, form.number_column: number, "FDOCUMENTSTATUS": "A",
            "FCREATORID": self.user_id, "FCREATEDATE": ts, "FMODIFIERID": self.user_id, "FMODIFYDATE": ts,
        }  # fmt: skip
        for f in form.header_fields():
            if f.table == form.header and f.kind == "org":
                row[f.column] = ORG_ID
        if form.basedata:
            row["FMASTERID"] = doc_id
        else:
            row["FBILLTYPEID"] = form.bill_type
            row["FDATE"] = ts.replace(hour=0, minute=0, second=0, microsecond=0)
        row.update({k: v for k, v in by_table.get(form.header, {}).items() if k in header.c})
        conn.execute(insert(header).values(row))
        for part in form.parts:
            part_row = {part.pk: m.next_ids(conn, part.table, 1)[0], form.key: doc_id, **dict(part.fixed)}
            part_row.update(by_table.get(part.table, {}))
            conn.execute(insert(m.TABLES[part.table]).values(part_row))
        return doc_id

    def _update_header(
        self, conn: Connection, form: FormDef, doc_id: int, values: dict[FieldDef, Any], ts: datetime
    ) -> None:
        by_table = self._by_table(values)
        header = m.TABLES[form.header]
        conn.execute(
            update(header)
            .where(header.c[form.key] == doc_id)
            .values({**by_table.get(form.header, {}), "FMODIFYDATE": ts, "FMODIFIERID": self.user_id})
        )
        for part in form.parts:
            changes = by_table.get(part.table)
            if not changes:
                continue
            t = m.TABLES[part.table]
            where = [t.c[form.key] == doc_id, *(t.c[k] == v for k, v in part.fixed if k == "FLOCALEID")]
            if conn.execute(update(t).where(*where).values(changes)).rowcount == 0:
                row = {part.pk: m.next_ids(conn, part.table, 1)[0], form.key: doc_id, **dict(part.fixed)}
                conn.execute(insert(t).values({**row, **changes}))

    def _write_entries(
        self,
        conn: Connection,
        form: FormDef,
        doc_id: int,
        lines: list[tuple[int, dict[FieldDef, Any]]],
        delete_missing: bool,
        dindex: int,
    ) -> None:
        assert form.entry is not None
        entry = m.TABLES[form.entry.table]
        existing = dict(conn.execute(select(entry.c.FENTRYID, entry.c.FSEQ).where(entry.c.FID == doc_id)).all())
        unknown = [eid for eid, _ in lines if eid and eid not in existing]
        if unknown:
            message = f"分录内码“{unknown[0]}”在{form.caption}中不存在"
            raise DocumentRejected(env.DATA_NOT_FOUND, [env.Problem(message, "FEntryID", dindex)])
        kept = {eid for eid, _ in lines if eid}
        if delete_missing:
            gone = [eid for eid in existing if eid not in kept]
            if gone:
                for name in reversed(form.entry.tables):
                    t = m.TABLES[name]
                    conn.execute(delete(t).where(t.c.FENTRYID.in_(gone)))
        new_count = sum(1 for eid, _ in lines if not eid)
        new_ids = iter(m.next_ids(conn, form.entry.table, new_count))
        next_seq = (max(existing.values(), default=0) if not delete_missing else 0) + 1
        for position, (eid, values) in enumerate(lines, start=1):
            by_table = self._by_table(values)
            if eid:
                seq = position if delete_missing else existing[eid]
                conn.execute(
                    update(entry).where(entry.c.FENTRYID == eid).values({**by_table.get(entry.name, {}), "FSEQ": seq})
                )
                for split in form.entry.splits:
                    if by_table.get(split):
                        t = m.TABLES[split]
                        conn.execute(update(t).where(t.c.FENTRYID == eid).values(by_table[split]))
                continue
            new_id = next(new_ids)
            seq = position if delete_missing else next_seq
            next_seq += 1
            conn.execute(
                insert(entry).values({**by_table.get(entry.name, {}), "FENTRYID": new_id, "FID": doc_id, "FSEQ": seq})
            )
            for split in form.entry.splits:
                conn.execute(
                    insert(m.TABLES[split]).values({**by_table.get(split, {}), "FENTRYID": new_id, "FID": doc_id})
                )


def count(conn: Connection, table: str) -> int:
    return int(conn.execute(select(func.count()).select_from(m.TABLES[table])).scalar_one())
