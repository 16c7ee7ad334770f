"""``View``: one document by ``Number`` or ``Id`` as an object whose keys drop the ``F`` prefix.

Success has ``ResponseStatus: null`` and the document in ``Result.Result``: ``Id``, ``Number`` (basedata) or
``BillNo`` (bills), every declared field, multilingual texts as ``[{"Key": 2052, "Value": ..}]``, references as
``{"Id", "Number", "Name"}`` objects plus ``<Field>_Id``, and the entry as a list of lines with ``Id`` and
``Seq``. The real View returns many more fields (every one on the form); clients should read only what they need.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, String, select

from connectors.kingdee import models as m
from infra.simulators.kingdee import envelope as env
from infra.simulators.kingdee.forms import REF_TARGETS, FieldDef, FormDef
from infra.simulators.kingdee.values import to_json


def _name(key: str) -> str:
    return key[1:] if key[:1] in ("F", "f") and len(key) > 1 else key


def _texts(value: Any) -> list[dict[str, Any]]:
    return [{"Key": m.LOCALE_ZH_CN, "Value": value}]


class DocumentViewer:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def view(self, form: FormDef, data: dict[str, Any]) -> dict[str, Any]:
        lowered = {str(k).lower(): v for k, v in data.items()}
        number = str(lowered.get("number") or "").strip()
        doc_id = str(lowered.get("id") or "").strip()
        if not number and (not doc_id or doc_id == "0"):
            raise env.KingdeeError(env.PARAMETER_ERROR, "参数Number和Id不能同时为空", "Number")
        header = m.TABLES[form.header]
        key = header.c[form.key]
        if number:
            where = header.c[form.number_column] == number
        elif isinstance(key.type, String):  # inventory and assistant data: GUID keys
            where = key == doc_id
        else:
            where = key == (int(doc_id) if doc_id.isdigit() else -1)
        with self.engine.connect() as conn:
            row = conn.execute(select(header).where(where).order_by(key).limit(1)).mappings().first()
            if row is None:
                raise env.KingdeeError(env.DATA_NOT_FOUND, f"{form.caption}“{number or doc_id}”不存在或已被删除")
            return self._document(conn, form, dict(row))

    def _document(self, conn: Connection, form: FormDef, header_row: dict[str, Any]) -> dict[str, Any]:
        doc_id = header_row[form.key]
        rows: dict[str, dict[str, Any]] = {form.header: header_row}
        for part in form.parts:
            t = m.TABLES[part.table]
            part_row = conn.execute(select(t).where(t.c[form.key] == doc_id).limit(1)).mappings().first()
            rows[part.table] = dict(part_row) if part_row else {}
        out: dict[str, Any] = {"Id": to_json(doc_id), _name(form.number_key): header_row[form.number_column]}
        for f in form.header_fields():
            if f.column == form.key and f.table == form.header:
                continue
            self._put(conn, out, f, rows.get(f.table, {}).get(f.column))
        if form.entry is not None:
            out[_name(form.entry.key)] = self._entries(conn, form, doc_id)
        return out

    def _entries(self, conn: Connection, form: FormDef, doc_id: Any) -> list[dict[str, Any]]:
        assert form.entry is not None
        entry = m.TABLES[form.entry.table]
        lines = [
            dict(r) for r in conn.execute(select(entry).where(entry.c.FID == doc_id).order_by(entry.c.FSEQ)).mappings()
        ]
        splits: dict[str, dict[Any, dict[str, Any]]] = {}
        for name in form.entry.splits:
            t = m.TABLES[name]
            splits[name] = {r["FENTRYID"]: dict(r) for r in conn.execute(select(t).where(t.c.FID == doc_id)).mappings()}
        out = []
        for line in lines:
            shown: dict[str, Any] = {"Id": line["FENTRYID"], "Seq": line["FSEQ"]}
            for f in form.entry_fields():
                source = line if f.table == form.entry.table else splits[f.table].get(line["FENTRYID"], {})
                self._put(conn, shown, f, source.get(f.column))
            out.append(shown)
        return out

    def _put(self, conn: Connection, out: dict[str, Any], f: FieldDef, value: Any) -> None:
        name = _name(f.key)
        if f.kind == "lang":
            out[name] = _texts(value)
        elif f.kind == "ref":
            out[f"{name}_Id"] = to_json(value)
            out[name] = self._ref(conn, f, value)
        else:
            out[name] = to_json(value)

    @staticmethod
    def _ref(conn: Connection, f: FieldDef, value: Any) -> dict[str, Any] | None:
        assert f.ref is not None
        if value in (None, 0, "", " "):
            return None
        target = REF_TARGETS[f.ref]
        t = m.TABLES[target.table]
        number = conn.execute(select(t.c[target.number]).where(t.c[target.key] == value)).scalar()
        if number is None:
            return None
        name: Any = None
        if target.lang_table:
            lt = m.TABLES[target.lang_table]
            name = conn.execute(
                select(lt.c[target.name_column]).where(lt.c[target.key] == value, lt.c.FLOCALEID == m.LOCALE_ZH_CN)
            ).scalar()
        return {"Id": to_json(value), "Number": number, "Name": _texts(name) if name is not None else []}
