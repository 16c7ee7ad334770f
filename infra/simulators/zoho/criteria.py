"""Search criteria: ``((Field:operator:value)and(Field:operator:value))``, ``and``/``or`` with parentheses.

Inside a value, ``\\(``, ``\\)``, ``\\,`` and ``\\\\`` stand for the literal characters; an unescaped comma
separates the values of ``in`` and ``between``. ``${EMPTY}`` matches an empty field. Text compares
case-insensitively. At most ``MAX_CONDITIONS`` conditions. Malformed criteria raise :class:`CriteriaError`
(answered as ``INVALID_QUERY``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from infra.simulators.zoho.modules import FieldDef, ModuleDef, key_value
from infra.simulators.zoho.timefmt import ZohoClock

MAX_CONDITIONS = 10
EMPTY = "${EMPTY}"
TEXT_OPERATORS = frozenset({"equals", "not_equal", "starts_with", "in"})
ORDERED_OPERATORS = frozenset(
    {"equals", "not_equal", "in", "greater_than", "greater_equal", "less_than", "less_equal", "between"}
)
OPERATORS_BY_TYPE = {
    "text": TEXT_OPERATORS, "textarea": TEXT_OPERATORS, "picklist": TEXT_OPERATORS,
    "integer": ORDERED_OPERATORS, "double": ORDERED_OPERATORS, "currency": ORDERED_OPERATORS,
    "date": ORDERED_OPERATORS, "datetime": ORDERED_OPERATORS,
    "boolean": frozenset({"equals", "not_equal"}), "lookup": frozenset({"equals", "not_equal", "in"}),
}  # fmt: skip
Row = Mapping[str, Any]
Predicate = Callable[[Row], bool]


class CriteriaError(ValueError):
    pass


@dataclass(frozen=True)
class Condition:
    field: str
    operator: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Group:
    op: str  # "and" | "or"
    items: tuple[Condition | Group, ...]


Node = Condition | Group


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, what: str) -> CriteriaError:
        return CriteriaError(f"{what} at position {self.pos}")

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_spaces(self) -> None:
        while self.peek().isspace():
            self.pos += 1

    def expect(self, char: str) -> None:
        self.skip_spaces()
        if self.peek() != char:
            raise self.fail(f"expected {char!r}")
        self.pos += 1

    def term(self) -> Node:
        self.expect("(")
        self.skip_spaces()
        if self.peek() != "(":
            node: Node = self.condition()
            self.expect(")")
            return node
        items: list[Node] = [self.term()]
        ops: list[str] = []
        while True:
            self.skip_spaces()
            if self.peek() == ")":
                self.pos += 1
                break
            ops.append(self.word())
            items.append(self.term())
        return _combine(items, ops) if ops else items[0]

    def word(self) -> str:
        start = self.pos
        while self.peek().isalpha():
            self.pos += 1
        word = self.text[start : self.pos].lower()
        if word not in ("and", "or"):
            raise self.fail("expected 'and' or 'or'")
        return word

    def name(self) -> str:
        start = self.pos
        while self.peek() and self.peek() not in ":()":
            self.pos += 1
        name = self.text[start : self.pos].strip()
        if not name or self.peek() != ":":
            raise self.fail("expected field:operator:value")
        self.pos += 1
        return name

    def condition(self) -> Condition:
        field = self.name()
        operator = self.name().lower()
        values: list[str] = []
        current: list[str] = []
        while True:
            char = self.peek()
            if char == "":
                raise self.fail("unterminated condition")
            if char == "\\":
                self.pos += 1
                if self.peek() == "":
                    raise self.fail("dangling escape")
                current.append(self.peek())
                self.pos += 1
            elif char == ",":
                values.append("".join(current))
                current = []
                self.pos += 1
            elif char == ")":
                values.append("".join(current))
                break
            elif char == "(":
                raise self.fail("unescaped '(' in value")
            else:
                current.append(char)
                self.pos += 1
        if operator not in ("in", "between"):
            values = [",".join(values)]
        return Condition(field, operator, tuple(values))


def _combine(items: list[Node], ops: list[str]) -> Node:
    """``a and b or c`` → ``(a and b) or c``: and binds tighter."""
    or_parts: list[Node] = []
    current: list[Node] = [items[0]]
    for op, item in zip(ops, items[1:], strict=True):
        if op == "and":
            current.append(item)
        else:
            or_parts.append(current[0] if len(current) == 1 else Group("and", tuple(current)))
            current = [item]
    or_parts.append(current[0] if len(current) == 1 else Group("and", tuple(current)))
    return or_parts[0] if len(or_parts) == 1 else Group("or", tuple(or_parts))


def _count(node: Node) -> int:
    return 1 if isinstance(node, Condition) else sum(_count(i) for i in node.items)


def parse_criteria(text: str) -> Node:
    text = text.strip()
    if not text:
        raise CriteriaError("empty criteria")
    parser = _Parser(text if text.startswith("(") else f"({text})")
    node = parser.term()
    parser.skip_spaces()
    if parser.pos != len(parser.text):
        raise parser.fail("unexpected text after criteria")
    if _count(node) > MAX_CONDITIONS:
        raise CriteriaError(f"more than {MAX_CONDITIONS} criteria")
    return node


def index_lookup(node: Node, module: ModuleDef) -> tuple[str, str] | None:
    """``(field, key)`` of an ``equals`` on an indexed key field that every match must satisfy, if any."""
    candidates = [node] if isinstance(node, Condition) else list(node.items) if node.op == "and" else []
    for item in candidates:
        if (
            isinstance(item, Condition)
            and item.operator == "equals"
            and item.field in module.key_fields
            and item.values[0] != EMPTY
        ):
            key = key_value(item.values[0])
            if key is not None:
                return item.field, key
    return None


def compile_criteria(node: Node, module: ModuleDef, clock: ZohoClock) -> Predicate:
    """A predicate over a flat row (field values plus ``id`` and system fields; system times in epoch ms)."""
    if isinstance(node, Group):
        parts = [compile_criteria(item, module, clock) for item in node.items]
        if node.op == "and":
            return lambda row: all(p(row) for p in parts)
        return lambda row: any(p(row) for p in parts)
    field = module.readable_field(node.field)
    if field is None:
        raise CriteriaError(f"no field {node.field!r} in {module.api_name}")
    if node.operator not in OPERATORS_BY_TYPE.get(field.data_type, TEXT_OPERATORS):
        raise CriteriaError(
            f"operator {node.operator!r} is not valid for {field.data_type} field {field.api_name}"
        )
    if node.operator == "between" and len(node.values) != 2:
        raise CriteriaError("between needs two values")
    return _condition_predicate(node, field, clock)


def _condition_predicate(node: Condition, field: FieldDef, clock: ZohoClock) -> Predicate:
    convert = _converter(field, clock)
    if node.values == (EMPTY,):
        wants_empty = node.operator == "equals"
        return lambda row: (row.get(field.api_name) in (None, "")) == wants_empty
    try:
        wanted = [convert(v) for v in node.values]
    except (ValueError, InvalidOperation) as exc:
        raise CriteriaError(f"value not valid for {field.data_type} field {field.api_name}") from exc
    op = node.operator

    def predicate(row: Row) -> bool:
        raw = row.get(field.api_name)
        if raw is None or raw == "":
            return op == "not_equal"
        try:
            value = convert(raw)
        except (ValueError, InvalidOperation):
            return False
        if op == "equals":
            return bool(value == wanted[0])
        if op == "not_equal":
            return bool(value != wanted[0])
        if op == "in":
            return value in wanted
        if op == "starts_with":
            return isinstance(value, str) and value.startswith(wanted[0])
        if op == "between":
            return bool(wanted[0] <= value <= wanted[1])
        if op == "greater_than":
            return bool(value > wanted[0])
        if op == "greater_equal":
            return bool(value >= wanted[0])
        if op == "less_than":
            return bool(value < wanted[0])
        return bool(value <= wanted[0])  # less_equal

    return predicate


def _converter(field: FieldDef, clock: ZohoClock) -> Callable[[Any], Any]:
    kind = field.data_type
    if kind in ("integer", "double", "currency"):
        return lambda v: Decimal(str(v).strip())
    if kind == "boolean":

        def to_bool(v: Any) -> bool:
            if isinstance(v, bool):
                return v
            if str(v).lower() in ("true", "false"):
                return str(v).lower() == "true"
            raise ValueError(v)

        return to_bool
    if kind == "datetime":
        return lambda v: v if isinstance(v, int) else clock.parse(str(v))
    if kind == "lookup":
        return lambda v: str(v.get("id")) if isinstance(v, dict) else str(v)
    if kind == "date":
        return lambda v: date.fromisoformat(str(v))
    return lambda v: str(v).casefold()
