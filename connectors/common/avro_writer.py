"""A per-schema Avro binary writer, generated as Python code once per schema: the capture's encoding hot path.

fastavro's generic writer walks the schema for every record and picks a union branch by validating the value against
each branch in turn — for the ``[null, Value]`` union of a change envelope that is a second pass over the whole
document — so encoding cost ~95 µs per material document.  The code generated here knows the schema in advance: a
nullable field is one ``is None`` test, a record is a sequence of field writes, a long is a zig-zag varint, logical
types convert as fastavro's do (same bytes: checked against fastavro in ``tests/unit/test_avro_writer.py``).

It covers what the project's schemas use — records, arrays, maps, enums, ``null``-unions of one type, the primitives
and the ``decimal``/``timestamp-millis``/``local-timestamp-millis``/``date`` logical types.  Any other schema raises
:class:`NotCompilable` and the caller keeps fastavro.  A value the schema cannot hold raises (``TypeError``,
``ValueError``, ``AttributeError`` or ``OverflowError``); the caller may then ask fastavro for its own error message.
"""

from __future__ import annotations

import datetime
import struct
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from connectors.common.avro_codegen import PRIMITIVES, NotCompilable, SchemaCode

_EPOCH_UTC = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_DAYS_SHIFT = datetime.date(1970, 1, 1).toordinal()
_DOUBLE = struct.Struct("<d").pack
_FLOAT = struct.Struct("<f").pack
_LONG_MIN, _LONG_MAX = -(1 << 63), (1 << 63) - 1
_INT_MIN, _INT_MAX = -(1 << 31), (1 << 31) - 1


#: Encodings of recent longs and short strings: ids, org ids, statuses and times repeat across a batch's documents.
_MEMO_LIMIT = 1 << 16
_LONGS: dict[int, bytes] = {}
_STRINGS: dict[str, bytes] = {}


def _varint(n: int) -> bytes:
    if not _LONG_MIN <= n <= _LONG_MAX:
        raise OverflowError(f"{n} does not fit an Avro long")
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _long(out: bytearray, n: int) -> None:
    data = _LONGS.get(n)
    if data is None:
        data = _varint(n)
        if len(_LONGS) >= _MEMO_LIMIT:
            _LONGS.clear()
        _LONGS[n] = data
    out += data


def _int(out: bytearray, n: int) -> None:
    if not _INT_MIN <= n <= _INT_MAX:
        raise OverflowError(f"{n} does not fit an Avro int")
    _long(out, n)


def _check_int(n: Any) -> int:
    if n.__class__ is int:
        return n
    if isinstance(n, int):  # bool, IntEnum: fastavro writes them as numbers too
        return int(n)
    raise TypeError(f"{n!r} is not an integer")


def _string(out: bytearray, s: Any) -> None:
    data = _STRINGS.get(s) if s.__class__ is str else None
    if data is None:
        if s.__class__ is not str:
            raise TypeError(f"{s!r} is not a string")
        text = s.encode()
        data = _varint(len(text)) + text
        if len(s) <= 64:
            if len(_STRINGS) >= _MEMO_LIMIT:
                _STRINGS.clear()
            _STRINGS[s] = data
    out += data


_NSTR: dict[str | None, bytes] = {None: b"\x00"}


def _nullable_string(s: Any) -> bytes:
    """A ``["null", "string"]`` value that is not yet in the memo: the branch index, the length and the text."""
    if s.__class__ is not str:
        raise TypeError(f"{s!r} is not a string")
    text = s.encode()
    data = b"\x02" + _varint(len(text)) + text
    if len(s) <= 64:
        if len(_NSTR) >= _MEMO_LIMIT:
            _NSTR.clear()
            _NSTR[None] = b"\x00"
        _NSTR[s] = data
    return data


def _bytes(out: bytearray, b: Any) -> None:
    if not isinstance(b, (bytes, bytearray, memoryview)):
        raise TypeError(f"{b!r} is not bytes")
    _long(out, len(b))
    out += b


def _boolean(out: bytearray, v: Any) -> None:
    if v is True:
        out.append(1)
    elif v is False:
        out.append(0)
    else:
        raise TypeError(f"{v!r} is not a boolean")


def _double(out: bytearray, v: Any) -> None:
    out += _DOUBLE(v)


def _float(out: bytearray, v: Any) -> None:
    out += _FLOAT(v)


def _decimal_bytes(v: Any, precision: int, scale: int) -> bytes:
    """As fastavro's ``prepare_bytes_decimal``: the unscaled value, big-endian two's complement."""
    if not isinstance(v, Decimal):
        if isinstance(v, (bytes, bytearray)):
            return bytes(v)
        raise TypeError(f"{v!r} is not a Decimal")
    sign, digits, exp = v.as_tuple()
    if len(digits) > precision:
        raise ValueError("The decimal precision is bigger than allowed by schema")
    if not isinstance(exp, int):
        raise ValueError(f"{v} is not a finite number")
    delta = exp + scale
    if delta < 0:
        raise ValueError("Scale provided in schema does not match the decimal")
    unscaled = 0
    for digit in digits:
        unscaled = unscaled * 10 + digit
    unscaled *= 10**delta
    size = (unscaled.bit_length() + 8) // 8
    signed: int = -unscaled if sign else unscaled
    return signed.to_bytes(size, byteorder="big", signed=True)


_LOCAL_MILLIS: dict[datetime.datetime, int] = {}


def _local_millis(v: Any) -> int:
    if isinstance(v, datetime.datetime):
        naive = v.tzinfo is None  # aware times equal at one instant differ in wall clock: not remembered
        found = _LOCAL_MILLIS.get(v) if naive else None
        if found is None:  # the times of one save repeat across its rows and documents: remembered
            delta = v.replace(tzinfo=datetime.UTC) - _EPOCH_UTC
            found = (delta.days * 86400 + delta.seconds) * 1000 + delta.microseconds // 1000
            if naive:
                if len(_LOCAL_MILLIS) >= _MEMO_LIMIT:
                    _LOCAL_MILLIS.clear()
                _LOCAL_MILLIS[v] = found
        return found
    return _check_int(v)


def _utc_millis(v: Any) -> int:
    if isinstance(v, datetime.datetime):
        if v.tzinfo is not None:
            delta = v - _EPOCH_UTC
            return (delta.days * 86400 + delta.seconds) * 1000 + delta.microseconds // 1000
        return int(time.mktime(v.timetuple())) * 1000 + v.microsecond // 1000  # as fastavro: naive = local time
    return _check_int(v)


def _days(v: Any) -> int:
    if isinstance(v, datetime.date):
        return v.toordinal() - _DAYS_SHIFT
    if isinstance(v, str):
        return datetime.date.fromisoformat(v).toordinal() - _DAYS_SHIFT
    return _check_int(v)


class _Generator(SchemaCode):
    prefix = "w"

    def value(self, schema: Any, var: str, ns: str, lines: list[str], pad: str) -> None:
        """Lines writing ``var`` as ``schema`` into ``out``."""
        found = self.node(schema, var, ns, lines, pad)
        if found is None:
            return
        schema = found
        kind = schema.get("type")
        logical = schema.get("logicalType")
        if logical == "decimal" and kind == "bytes":
            precision, scale = int(schema["precision"]), int(schema.get("scale", 0))
            lines.append(f"{pad}_bytes(out, _decimal_bytes({var}, {precision}, {scale}))")
            return
        if logical == "local-timestamp-millis" and kind == "long":
            lines.append(f"{pad}_long(out, _local_millis({var}))")
            return
        if logical == "timestamp-millis" and kind == "long":
            lines.append(f"{pad}_long(out, _utc_millis({var}))")
            return
        if logical == "date" and kind == "int":
            lines.append(f"{pad}_int(out, _days({var}))")
            return
        if kind in PRIMITIVES:
            self.primitive(kind, var, lines, pad)  # an unknown logical type is written as its base type
            return
        if kind == "record":
            fn = self.record(schema, ns)
            lines.append(f"{pad}{fn}(out, {var})")
            return
        if kind == "enum":
            index = self.constant({symbol: i for i, symbol in enumerate(schema["symbols"])})
            fn, _, slot = self.define(schema, ns)
            self.functions[slot] = f"def {fn}(out, v):\n    _long(out, {index}[v])\n"
            lines.append(f"{pad}{fn}(out, {var})")
            return
        if kind == "array":
            item = self.var()
            lines.append(f"{pad}if {var}:")
            lines.append(f"{pad}    _long(out, len({var}))")
            lines.append(f"{pad}    for {item} in {var}:")
            self.value(schema["items"], item, ns, lines, pad + "        ")
            lines.append(f"{pad}out.append(0)")
            return
        if kind == "map":
            key, item = self.var(), self.var()
            lines.append(f"{pad}if {var}:")
            lines.append(f"{pad}    _long(out, len({var}))")
            lines.append(f"{pad}    for {key}, {item} in {var}.items():")
            lines.append(f"{pad}        _string(out, {key})")
            self.value(schema["values"], item, ns, lines, pad + "        ")
            lines.append(f"{pad}out.append(0)")
            return
        if isinstance(kind, (dict, list)) or (isinstance(kind, str) and kind not in ("fixed",)):
            self.value(kind, var, ns, lines, pad)  # {"type": "string"} and friends, or a wrapped named type
            return
        raise NotCompilable(f"type {kind!r}")

    def call_named(self, fn: str, var: str, lines: list[str], pad: str) -> None:
        lines.append(f"{pad}{fn}(out, {var})")

    def primitive(self, kind: str, var: str, lines: list[str], pad: str) -> None:
        if kind == "null":
            lines.append(f"{pad}if {var} is not None: raise TypeError(f'{{{var}!r}} is not null')")
        elif kind == "long":  # inline: most longs are ids and flags, one byte or a few; the rest via _long
            lines.append(f"{pad}if {var}.__class__ is not int: {var} = _check_int({var})")
            lines.append(f"{pad}if -64 <= {var} < 64: out.append((({var} << 1) ^ ({var} >> 63)) & 0xFF)")
            lines.append(f"{pad}else: _long(out, {var})")
        elif kind == "int":
            lines.append(f"{pad}_int(out, _check_int({var}))")
        else:
            lines.append(f"{pad}_{kind}(out, {var})")

    def union(self, branches: list[Any], var: str, ns: str, lines: list[str], pad: str) -> None:
        other, null_index = self.nullable(branches)
        if null_index is None:
            lines.append(f"{pad}out.append(0)")
            self.value(other, var, ns, lines, pad)
            return
        if null_index == 0 and other == "string":  # the commonest field: one memo lookup, bytes appended
            lines.append(f"{pad}out += _NSTR.get({var}) or _nullable_string({var})")
            return
        lines.append(f"{pad}if {var} is None:")
        lines.append(f"{pad}    out.append({2 * null_index})")
        lines.append(f"{pad}else:")
        lines.append(f"{pad}    out.append({2 * (1 - null_index)})")
        self.value(other, var, ns, lines, pad + "    ")

    def record(self, schema: dict[str, Any], ns: str) -> str:
        fn, inner_ns, slot = self.define(schema, ns)
        # the fields are read first — by subscript, the fast way, and if one is missing again with its default —
        # then written
        fields = [(self.var(), field) for field in schema["fields"]]
        lines = [f"def {fn}(out, v):", "    try:"]
        lines += [f"        {var} = v[{field['name']!r}]" for var, field in fields]
        lines += ["    except KeyError:", "        get = v.get"]
        for var, field in fields:
            if field.get("default") is not None:
                lines.append(f"        {var} = get({field['name']!r}, {self.constant(field['default'])})")
            else:
                lines.append(f"        {var} = get({field['name']!r})")
        for var, field in fields:
            self.value(field["type"], var, inner_ns, lines, "    ")
        if not fields:
            lines = [f"def {fn}(out, v):", "    pass"]
        self.functions[slot] = "\n".join(lines) + "\n"
        return fn


def compile_writer(schema: Any) -> Callable[[Any], bytes]:
    """A function writing a value of ``schema`` (parsed JSON) as Avro binary; :class:`NotCompilable` if the schema
    uses a feature not generated."""
    gen = _Generator()
    top: list[str] = []
    gen.value(schema, "value", "", top, "    ")
    entry = "def write(value):\n    out = bytearray()\n" + "\n".join(top) + "\n    return bytes(out)\n"
    return gen.compile(entry, {
        "_long": _long, "_int": _int, "_check_int": _check_int, "_string": _string, "_bytes": _bytes,
        "_boolean": _boolean, "_double": _double, "_float": _float, "_decimal_bytes": _decimal_bytes,
        "_local_millis": _local_millis, "_utc_millis": _utc_millis, "_days": _days, "_NSTR": _NSTR,
        "_nullable_string": _nullable_string,
    })
