"""Column types of the captured tables, from the SQLAlchemy model: typing of decoded values and their Avro types.

Kingdee's wall-clock times have no zone, so they travel as Avro ``local-timestamp-millis``; amounts and quantities
are ``decimal(23,10)`` as in Kingdee.  A value that cannot be typed (a number with more digits than the column,
an unparseable time) raises ``BadValue`` naming the table and column; the capture dead-letters that document.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import MetaData, types


class BadValue(ValueError):
    pass


def _kind(coltype: types.TypeEngine[Any]) -> tuple[str, int, int]:
    if isinstance(coltype, types.Boolean):
        return "boolean", 0, 0
    if isinstance(coltype, types.Integer):
        return "long", 0, 0
    if isinstance(coltype, types.Numeric) and not isinstance(coltype, types.Float):
        return "decimal", coltype.precision or 38, coltype.scale or 0
    if isinstance(coltype, types.Float):
        return "double", 0, 0
    if isinstance(coltype, types.DateTime):
        return "datetime", 0, 0
    if isinstance(coltype, types.Date):
        return "date", 0, 0
    return "string", 0, 0


#: The Python type a value of each kind ends as, where a value of that type needs no conversion (a decimal does:
#: its scale; a datetime from the wire is text).
_FINAL: dict[str, type] = {"long": int, "string": str, "double": float, "boolean": bool}


class RowTypes:
    def __init__(self, metadata: MetaData) -> None:
        self.columns: dict[str, dict[str, tuple[str, int, int]]] = {
            table.name: {c.name: _kind(c.type) for c in table.columns} for table in metadata.sorted_tables
        }
        self._kinds: dict[str, dict[str, tuple[type | None, tuple[str, int, int]]]] = {}

    def add_column(self, table: str, column: str, data_type: str, precision: int | None, scale: int | None) -> None:
        """A column learnt from the database catalog while streaming (schema evolution)."""
        data_type = data_type.lower()
        if data_type in ("bigint", "integer", "smallint"):
            kind: tuple[str, int, int] = ("long", 0, 0)
        elif data_type == "numeric":
            kind = ("decimal", precision or 38, scale or 0)
        elif data_type in ("double precision", "real"):
            kind = ("double", 0, 0)
        elif data_type == "boolean":
            kind = ("boolean", 0, 0)
        elif data_type.startswith("timestamp"):
            kind = ("datetime", 0, 0)
        elif data_type == "date":
            kind = ("date", 0, 0)
        else:
            kind = ("string", 0, 0)
        self.columns.setdefault(table, {})[column] = kind

    def typed(self, table: str, row: dict[str, Any]) -> dict[str, Any]:
        kinds = self._kinds.get(table)
        if kinds is None or len(kinds) != len(self.columns[table]):
            kinds = self._kinds[table] = {name: (_FINAL.get(kind[0]), kind) for name, kind in
                                          self.columns[table].items()}
        out: dict[str, Any] = {}
        for name, value in row.items():
            found = kinds.get(name)
            # None, and values already of their column's final type (ints, texts), are kept as they are
            if found is None or value is None or value.__class__ is found[0]:
                out[name] = value
            else:
                out[name] = _typed(table, name, found[1], value)
        return out

    def avro_type(self, table: str, column: str) -> Any:
        kind, precision, scale = self.columns[table][column]
        if kind == "decimal":
            return {"type": "bytes", "logicalType": "decimal", "precision": precision, "scale": scale}
        if kind == "datetime":
            return {"type": "long", "logicalType": "local-timestamp-millis"}
        if kind == "date":
            return {"type": "int", "logicalType": "date"}
        return kind


_DATETIMES: dict[str, datetime] = {}


def _datetime(text: str) -> datetime:
    """A wall-clock time from its text; the rows of one save share theirs, so recent ones are remembered."""
    found = _DATETIMES.get(text)
    if found is None:
        if len(_DATETIMES) >= 4096:
            _DATETIMES.clear()
        found = _DATETIMES[text] = datetime.fromisoformat(text)
    return found


def _typed(table: str, column: str, kind: tuple[str, int, int], value: Any) -> Any:
    if value is None:
        return None
    name, precision, scale = kind
    try:
        if name == "decimal":
            number = Decimal(str(value)).quantize(Decimal(1).scaleb(-scale))
            if len(number.as_tuple().digits) > precision:
                raise BadValue(f"{table}.{column}: {value} has more than {precision} digits")
            return number
        if name == "long":
            return int(value)
        if name == "double":
            return float(value)
        if name == "boolean":
            return value if isinstance(value, bool) else str(value).lower() in ("t", "true", "1")
        if name == "datetime":
            return value if isinstance(value, datetime) else _datetime(str(value))
        if name == "date":
            return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
        return value if isinstance(value, str) else str(value)
    except (InvalidOperation, ValueError) as exc:
        if isinstance(exc, BadValue):
            raise
        raise BadValue(f"{table}.{column}: cannot read {value!r} as {name}: {exc}") from exc
