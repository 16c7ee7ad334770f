"""``FilterString`` of ExecuteBillQuery: a small SQL-like condition language, parsed into a tree, never into SQL text.

Supported: ``field op value`` with ``= <> != > >= < <=``, ``[NOT] LIKE``, ``[NOT] IN (v, ..)``, ``IS [NOT] NULL``,
``BETWEEN a AND b``, combined with ``AND``/``OR``/``NOT`` and parentheses. Values are ``'text'`` (``''`` escapes a
quote, ``N'..'`` accepted) or numbers. Field names are field keys, also dotted (``FCustId.FNumber``) or entry
prefixed (``FSaleOrderEntry_FEntryID``). The newer JSON-array filter form is not supported.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import String, and_, not_, or_
from sqlalchemy.sql.elements import ColumnElement


class FilterError(ValueError):
    """The filter does not parse; the message says where."""


@dataclass(frozen=True)
class Cmp:
    field: str
    op: str  # = <> > >= < <= LIKE NOTLIKE IN NOTIN ISNULL NOTNULL BETWEEN
    values: tuple[Any, ...] = ()


@dataclass(frozen=True)
class BoolOp:
    op: str  # AND OR NOT
    items: tuple[Any, ...]


_TOKEN = re.compile(
    r"\s*(?:(?P<str>N?'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?)|(?P<op><>|!=|>=|<=|=|>|<)|(?P<p>[(),])"
    r"|(?P<word>[A-Za-z_\u4e00-\u9fff][\w.\u4e00-\u9fff]*))",
)
_KEYWORDS = {"AND", "OR", "NOT", "LIKE", "IN", "IS", "NULL", "BETWEEN"}


def tokenize(text: str) -> list[tuple[str, Any]]:
    tokens: list[tuple[str, Any]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise FilterError(f"过滤条件在位置{pos}附近有语法错误：{text[pos : pos + 20]}")
        pos = match.end()
        kind = match.lastgroup
        value = match.group(kind or "")
        if kind == "str":
            tokens.append(("value", value[value.index("'") + 1 : -1].replace("''", "'")))
        elif kind == "num":
            tokens.append(("value", Decimal(value)))
        elif kind == "word" and value.upper() in _KEYWORDS:
            tokens.append(("kw", value.upper()))
        else:
            tokens.append((kind or "", value))
    return tokens


class _Parser:
    def __init__(self, tokens: list[tuple[str, Any]]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self, kind: str, value: Any = None) -> bool:
        if self.pos >= len(self.tokens):
            return False
        k, v = self.tokens[self.pos]
        return k == kind and (value is None or v == value)

    def take(self, kind: str, value: Any = None) -> Any:
        if not self.peek(kind, value):
            got = self.tokens[self.pos][1] if self.pos < len(self.tokens) else "结尾"
            raise FilterError(f"过滤条件语法错误：期望{value or kind}，实际为“{got}”")
        self.pos += 1
        return self.tokens[self.pos - 1][1]

    def parse(self) -> Any:
        node = self.or_()
        if self.pos != len(self.tokens):
            raise FilterError(f"过滤条件语法错误：“{self.tokens[self.pos][1]}”附近")
        return node

    def or_(self) -> Any:
        items = [self.and_()]
        while self.peek("kw", "OR"):
            self.pos += 1
            items.append(self.and_())
        return items[0] if len(items) == 1 else BoolOp("OR", tuple(items))

    def and_(self) -> Any:
        items = [self.not_()]
        while self.peek("kw", "AND"):
            self.pos += 1
            items.append(self.not_())
        return items[0] if len(items) == 1 else BoolOp("AND", tuple(items))

    def not_(self) -> Any:
        if self.peek("kw", "NOT"):
            self.pos += 1
            return BoolOp("NOT", (self.not_(),))
        if self.peek("p", "("):
            self.pos += 1
            node = self.or_()
            self.take("p", ")")
            return node
        return self.comparison()

    def comparison(self) -> Cmp:
        name = self.take("word")
        if self.peek("op"):
            op = self.take("op")
            return Cmp(name, "<>" if op == "!=" else op, (self.take("value"),))
        negated = False
        if self.peek("kw", "NOT"):
            self.pos += 1
            negated = True
        if self.peek("kw", "LIKE"):
            self.pos += 1
            return Cmp(name, "NOTLIKE" if negated else "LIKE", (self.take("value"),))
        if self.peek("kw", "IN"):
            self.pos += 1
            self.take("p", "(")
            values = [self.take("value")]
            while self.peek("p", ","):
                self.pos += 1
                values.append(self.take("value"))
            self.take("p", ")")
            return Cmp(name, "NOTIN" if negated else "IN", tuple(values))
        if self.peek("kw", "BETWEEN") and not negated:
            self.pos += 1
            low = self.take("value")
            self.take("kw", "AND")
            return Cmp(name, "BETWEEN", (low, self.take("value")))
        if self.peek("kw", "IS") and not negated:
            self.pos += 1
            is_not = self.peek("kw", "NOT")
            self.pos += int(is_not)
            self.take("kw", "NULL")
            return Cmp(name, "NOTNULL" if is_not else "ISNULL")
        raise FilterError(f"过滤条件语法错误：字段“{name}”后缺少比较运算符")


def parse_filter(text: str | None) -> Any:
    """The condition tree of a FilterString, or None for an empty one."""
    if text is None or not str(text).strip():
        return None
    return _Parser(tokenize(str(text))).parse()


def fields_of(node: Any) -> list[str]:
    if node is None:
        return []
    if isinstance(node, Cmp):
        return [node.field]
    return [name for item in node.items for name in fields_of(item)]


def compile_filter(
    node: Any, column: Callable[[str], ColumnElement[Any]], coerce: Callable[[str, Any], Any]
) -> ColumnElement[bool] | None:
    """A SQLAlchemy condition; ``column(field)`` gives the column, ``coerce(field, value)`` the bound value."""
    if node is None:
        return None
    if isinstance(node, BoolOp):
        parts = [compile_filter(item, column, coerce) for item in node.items]
        if node.op == "NOT":
            return not_(parts[0])  # type: ignore[arg-type]
        return (and_ if node.op == "AND" else or_)(*parts)  # type: ignore[arg-type]
    col = column(node.field)
    values = [coerce(node.field, v) for v in node.values]
    op = node.op
    if op == "=":
        return cast("ColumnElement[bool]", col == values[0])
    if op == "<>":
        return cast("ColumnElement[bool]", col != values[0])
    if op in (">", ">=", "<", "<="):
        compared = {">": col > values[0], ">=": col >= values[0], "<": col < values[0], "<=": col <= values[0]}
        return cast("ColumnElement[bool]", compared[op])
    if op in ("LIKE", "NOTLIKE"):
        cond = col.cast(String()).like(str(node.values[0]))
        return not_(cond) if op == "NOTLIKE" else cond
    if op in ("IN", "NOTIN"):
        return col.not_in(values) if op == "NOTIN" else col.in_(values)
    if op == "BETWEEN":
        return col.between(values[0], values[1])
    return col.is_not(None) if op == "NOTNULL" else col.is_(None)
