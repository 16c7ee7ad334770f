"""``ExecuteBillQuery``: rows of a form as a bare array of arrays, one value per ``FieldKeys`` entry.

Referencing an entry field (or ``<EntryKey>_FEntryID``) gives one row per entry line with the header repeated;
otherwise one row per document. ``X.FNumber``/``X.FName`` read a referenced basedata's number or zh-CN name.
``FilterString`` (see ``filters.py``), ``OrderString`` (``FDate DESC, FID``), ``StartRow`` and ``Limit`` (at most
``max_limit``, 2,000 by default; 0 means the maximum) page through the result. Without an ``OrderString`` rows
come in document id then entry sequence order, so paging is stable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Connection, DateTime, Engine, Integer, Numeric, Table, and_, select
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import FromClause

from connectors.kingdee import models as m
from infra.simulators.kingdee import envelope as env
from infra.simulators.kingdee.filters import FilterError, compile_filter, fields_of, parse_filter
from infra.simulators.kingdee.forms import REF_TARGETS, FormDef, form_by_id
from infra.simulators.kingdee.values import BadValue, parse_date, to_json

DEFAULT_MAX_LIMIT = 2000


def field_not_found(key: str) -> env.KingdeeError:
    return env.KingdeeError(env.FIELD_NOT_FOUND, f"元数据中标识为{key}的字段不存在", key)


@dataclass
class QueryPlan:
    """The columns a query touches and the joins they need, built as field keys are resolved."""

    form: FormDef
    joins: dict[str, tuple[FromClause, ColumnElement[bool]]] = field(default_factory=dict)
    uses_entry: bool = False

    def _table(self, name: str) -> FromClause:
        form = self.form
        if name == form.header:
            return m.TABLES[name]
        if name in self.joins:
            return self.joins[name][0]
        header = m.TABLES[form.header]
        if form.entry is not None and name in form.entry.tables:
            self.uses_entry = True
            entry = m.TABLES[form.entry.table]
            if form.entry.table not in self.joins:
                self.joins[form.entry.table] = (entry, entry.c.FID == header.c[form.key])
            if name != form.entry.table:
                split = m.TABLES[name]
                self.joins[name] = (split, split.c.FENTRYID == entry.c.FENTRYID)
            return self.joins[name][0]
        part = m.TABLES[name]
        on = part.c[form.key] == header.c[form.key]
        if "FLOCALEID" in part.c and name.endswith("_L"):
            on = and_(on, part.c.FLOCALEID == m.LOCALE_ZH_CN)
        self.joins[name] = (part, on)
        return part

    def _ref(self, source: ColumnElement[Any], alias_key: str, target_table: str, on_key: str) -> Table:
        if alias_key not in self.joins:
            alias = m.TABLES[target_table].alias(alias_key.replace(".", "_"))
            on = alias.c[on_key] == source
            if "FLOCALEID" in alias.c and target_table.endswith("_L"):
                on = and_(on, alias.c.FLOCALEID == m.LOCALE_ZH_CN)
            self.joins[alias_key] = (alias, on)
        return self.joins[alias_key][0]  # type: ignore[return-value]

    def column(self, key: str) -> ColumnElement[Any]:
        form = self.form
        lowered = key.strip().lower()
        if form.entry is not None:
            prefix = form.entry.key.lower() + "_"
            if lowered in (prefix + "fentryid", prefix + "fseq", "fentryid"):
                entry = self._table(form.entry.table)
                return entry.c.FSEQ if lowered.endswith("fseq") else entry.c.FENTRYID
        if lowered == form.key.lower():
            return m.TABLES[form.header].c[form.key]
        base, _, sub = lowered.partition(".")
        f = form.field(base)
        if f is None:
            raise field_not_found(key)
        source = self._table(f.table).c[f.column]
        if not sub:
            return source
        if f.ref is None:
            raise field_not_found(key)
        target = REF_TARGETS[f.ref]
        if sub in ("fnumber", "number"):
            return self._ref(source, f"{f.key}.n", target.table, target.key).c[target.number]
        if sub in ("fname", "name") and target.lang_table:
            owner = target.key
            return self._ref(source, f"{f.key}.l", target.lang_table, owner).c[target.name_column]
        if sub in ("fid", "id", target.key.lower()):
            return source
        raise field_not_found(key)

    def from_clause(self) -> FromClause:
        clause: FromClause = m.TABLES[self.form.header]
        for joined, on in self.joins.values():
            clause = clause.outerjoin(joined, on)
        return clause


def coerce(column: ColumnElement[Any], value: Any) -> Any:
    kind = column.type
    try:
        if isinstance(kind, DateTime):
            return parse_date(value)
        if isinstance(kind, Integer | BigInteger):
            return int(Decimal(str(value)))
        if isinstance(kind, Numeric):
            return Decimal(str(value))
    except (BadValue, ArithmeticError, ValueError) as exc:
        raise env.KingdeeError(env.PARAMETER_ERROR, f"过滤条件的值“{value}”类型不正确") from exc
    return str(value) if isinstance(value, Decimal) else value


def _keys(raw: Any) -> list[str]:
    if isinstance(raw, list):
        return [str(k).strip() for k in raw if str(k).strip()]
    return [k.strip() for k in str(raw or "").split(",") if k.strip()]


def _int(raw: Any, name: str) -> int:
    try:
        return int(raw or 0)
    except (TypeError, ValueError) as exc:
        raise env.KingdeeError(env.PARAMETER_ERROR, f"参数{name}必须是整数", name) from exc


class BillQuery:
    def __init__(self, engine: Engine, max_limit: int = DEFAULT_MAX_LIMIT) -> None:
        self.engine = engine
        self.max_limit = max_limit

    def run(self, data: dict[str, Any]) -> list[list[Any]]:
        lowered = {str(k).lower(): v for k, v in data.items()}
        form_id = lowered.get("formid")
        if not form_id:
            raise env.KingdeeError(env.PARAMETER_ERROR, "参数FormId不能为空", "FormId")
        form = form_by_id(str(form_id))
        if form is None:
            raise env.KingdeeError(env.PARAMETER_ERROR, f"业务对象“{form_id}”不存在", "FormId")
        keys = _keys(lowered.get("fieldkeys"))
        if not keys:
            raise env.KingdeeError(env.PARAMETER_ERROR, "参数FieldKeys不能为空", "FieldKeys")
        plan = QueryPlan(form)
        columns = [plan.column(k) for k in keys]
        try:
            tree = parse_filter(lowered.get("filterstring"))
        except FilterError as exc:
            raise env.KingdeeError(env.EXCEPTION, str(exc), "FilterString") from exc
        by_field = {name: plan.column(name) for name in fields_of(tree)}
        condition = compile_filter(tree, lambda n: by_field[n], lambda n, v: coerce(by_field[n], v))
        order = self._order(plan, str(lowered.get("orderstring") or ""))
        if not order:
            order = [m.TABLES[form.header].c[form.key]]
            if plan.uses_entry and form.entry is not None:
                order.append(plan._table(form.entry.table).c.FSEQ)
        limit = _int(lowered.get("limit"), "Limit")
        limit = self.max_limit if limit <= 0 else min(limit, self.max_limit)
        top = _int(lowered.get("toprowcount"), "TopRowCount")
        if top > 0:
            limit = min(limit, top)
        query = select(*columns).select_from(plan.from_clause()).order_by(*order)
        if condition is not None:
            query = query.where(condition)
        query = query.offset(max(0, _int(lowered.get("startrow"), "StartRow"))).limit(limit)
        with self.engine.connect() as conn:
            return self._rows(conn, query)

    @staticmethod
    def _rows(conn: Connection, query: Any) -> list[list[Any]]:
        return [[to_json(v) for v in row] for row in conn.execute(query)]

    @staticmethod
    def _order(plan: QueryPlan, text: str) -> list[Any]:
        order: list[Any] = []
        for part in (p.strip() for p in text.split(",") if p.strip()):
            words = part.split()
            column = plan.column(words[0])
            direction = words[1].upper() if len(words) > 1 else "ASC"
            if direction not in ("ASC", "DESC") or len(words) > 2:
                raise env.KingdeeError(env.PARAMETER_ERROR, f"排序条件“{part}”不正确", "OrderString")
            order.append(column.desc() if direction == "DESC" else column.asc())
        return order
