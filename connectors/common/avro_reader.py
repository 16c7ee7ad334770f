"""A per-schema Avro binary reader, generated as Python code once per schema: the flows' decoding hot path.

fastavro's generic reader spends ~100–180 µs on a material change event (its logical types convert field by field
through Python calls); the code generated here reads the same schema in a fraction of that and gives the same values
(``tests/unit/test_avro_reader.py`` checks them against fastavro on every project schema): ``decimal`` as a
``Decimal`` of the schema's precision, ``local-timestamp-millis`` as a naive and ``timestamp-millis`` as a UTC
``datetime``, ``date`` as a ``date``, unions as the branch's value, records as dicts in field order.

It covers what ``avro_writer.py`` covers and raises :class:`~connectors.common.avro_codegen.NotCompilable` for the
rest.  It reads with the writer's schema only: a reader schema that differs (a consumer on another version) is
resolved by fastavro.  Corrupt input raises (``IndexError``, ``ValueError``, ``struct.error``, ``UnicodeDecodeError``).
"""

from __future__ import annotations

import datetime
import struct
from collections.abc import Callable
from decimal import Context, Decimal
from typing import Any

from connectors.common.avro_codegen import PRIMITIVES, NotCompilable, SchemaCode

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_EPOCH_NAIVE = datetime.datetime(1970, 1, 1)
_DAYS_SHIFT = datetime.date(1970, 1, 1).toordinal()
_DOUBLE = struct.Struct("<d").unpack_from
_FLOAT = struct.Struct("<f").unpack_from
_MEMO_LIMIT = 1 << 16
_LOCAL_TIMES: dict[int, datetime.datetime] = {}


def _long(data: bytes, pos: int) -> tuple[int, int]:
    b = data[pos]
    pos += 1
    n = b & 0x7F
    shift = 7
    while b & 0x80:
        b = data[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        shift += 7
    return (n >> 1) ^ -(n & 1), pos


def _local_time(millis: int) -> datetime.datetime:
    found = _LOCAL_TIMES.get(millis)  # the times of one save repeat across its documents
    if found is None:
        found = _EPOCH_NAIVE + datetime.timedelta(microseconds=millis * 1000)
        if len(_LOCAL_TIMES) >= _MEMO_LIMIT:
            _LOCAL_TIMES.clear()
        _LOCAL_TIMES[millis] = found
    return found


def _utc_time(millis: int) -> datetime.datetime:
    return _EPOCH + datetime.timedelta(microseconds=millis * 1000)


def _day(days: int) -> datetime.date:
    return datetime.date.fromordinal(days + _DAYS_SHIFT)


class _Generator(SchemaCode):
    prefix = "r"

    def _length(self, lines: list[str], pad: str, var: str) -> None:
        """Lines reading a long (a length, a count, a union index) into ``var``."""
        lines.append(f"{pad}{var} = data[pos]")
        lines.append(f"{pad}if {var} < 0x80: {var} = ({var} >> 1) ^ -({var} & 1); pos += 1")
        lines.append(f"{pad}else: {var}, pos = _long(data, pos)")

    def value(self, schema: Any, var: str, ns: str, lines: list[str], pad: str) -> None:
        """Lines reading a value of ``schema`` into ``var``."""
        found = self.node(schema, var, ns, lines, pad)
        if found is None:
            return
        schema = found
        kind, logical = schema.get("type"), schema.get("logicalType")
        if logical == "decimal" and kind == "bytes":
            precision, scale = int(schema["precision"]), int(schema.get("scale", 0))
            ctx = self.constant(Context(prec=precision))
            self.primitive("bytes", var, lines, pad)
            lines.append(f"{pad}{var} = {ctx}.create_decimal(int.from_bytes({var}, 'big', signed=True))"
                         f".scaleb({-scale}, {ctx})")
            return
        if logical in ("local-timestamp-millis", "timestamp-millis") and kind == "long":
            self.primitive("long", var, lines, pad)
            fn = "_local_time" if logical == "local-timestamp-millis" else "_utc_time"
            lines.append(f"{pad}{var} = {fn}({var})")
            return
        if logical == "date" and kind == "int":
            self.primitive("int", var, lines, pad)
            lines.append(f"{pad}{var} = _day({var})")
            return
        if kind in PRIMITIVES:
            self.primitive(kind, var, lines, pad)
            return
        if kind == "record":
            fn = self.record(schema, ns)
            lines.append(f"{pad}{var}, pos = {fn}(data, pos)")
            return
        if kind == "enum":
            symbols = self.constant(tuple(schema["symbols"]))
            fn, _, slot = self.define(schema, ns)
            self.functions[slot] = (f"def {fn}(data, pos):\n    i, pos = _long(data, pos)\n"
                                    f"    if i < 0: raise ValueError(f'enum index {{i}}')\n"
                                    f"    return {symbols}[i], pos\n")
            lines.append(f"{pad}{var}, pos = {fn}(data, pos)")
            return
        if kind in ("array", "map"):
            count, item, key = self.var(), self.var(), self.var()
            lines.append(f"{pad}{var} = {{}}" if kind == "map" else f"{pad}{var} = []")
            lines.append(f"{pad}while True:")
            self._length(lines, pad + "    ", count)
            lines.append(f"{pad}    if {count} == 0: break")
            lines.append(f"{pad}    if {count} < 0:")
            lines.append(f"{pad}        {count} = -{count}")
            lines.append(f"{pad}        _, pos = _long(data, pos)")  # the block's size in bytes
            lines.append(f"{pad}    for _ in range({count}):")
            if kind == "map":
                self.primitive("string", key, lines, pad + "        ")
                self.value(schema["values"], item, ns, lines, pad + "        ")
                lines.append(f"{pad}        {var}[{key}] = {item}")
            else:
                self.value(schema["items"], item, ns, lines, pad + "        ")
                lines.append(f"{pad}        {var}.append({item})")
            return
        if isinstance(kind, (dict, list)) or (isinstance(kind, str) and kind != "fixed"):
            self.value(kind, var, ns, lines, pad)
            return
        raise NotCompilable(f"type {kind!r}")

    def call_named(self, fn: str, var: str, lines: list[str], pad: str) -> None:
        lines.append(f"{pad}{var}, pos = {fn}(data, pos)")

    def primitive(self, kind: str, var: str, lines: list[str], pad: str) -> None:
        if kind == "null":
            lines.append(f"{pad}{var} = None")
        elif kind in ("long", "int"):
            self._length(lines, pad, var)
        elif kind == "boolean":
            lines.append(f"{pad}{var} = data[pos] == 1; pos += 1")
        elif kind == "double":
            lines.append(f"{pad}({var},) = _DOUBLE(data, pos); pos += 8")
        elif kind == "float":
            lines.append(f"{pad}({var},) = _FLOAT(data, pos); pos += 4")
        else:  # string, bytes
            size = self.var()
            self._length(lines, pad, size)
            lines.append(f"{pad}if {size} < 0 or pos + {size} > len(data): raise ValueError('truncated')")
            decode = ".decode()" if kind == "string" else ""
            lines.append(f"{pad}{var} = data[pos:pos + {size}]{decode}; pos += {size}")

    def union(self, branches: list[Any], var: str, ns: str, lines: list[str], pad: str) -> None:
        other, null_index = self.nullable(branches)
        if null_index is None:
            lines.append(f"{pad}if data[pos] != 0: raise ValueError('union index')")
            lines.append(f"{pad}pos += 1")
            self.value(other, var, ns, lines, pad)
            return
        null_byte = 2 * null_index
        lines.append(f"{pad}{var} = data[pos]; pos += 1")
        lines.append(f"{pad}if {var} == {null_byte}: {var} = None")
        lines.append(f"{pad}elif {var} != {2 - null_byte}: raise ValueError(f'union index byte {{{var}}}')")
        lines.append(f"{pad}else:")
        self.value(other, var, ns, lines, pad + "    ")

    def record(self, schema: dict[str, Any], ns: str) -> str:
        fn, inner_ns, slot = self.define(schema, ns)
        lines = [f"def {fn}(data, pos):"]
        fields = [(self.var(), field["name"]) for field in schema["fields"]]
        for (var, _), field in zip(fields, schema["fields"], strict=True):
            self.value(field["type"], var, inner_ns, lines, "    ")
        lines.append("    return {" + ", ".join(f"{name!r}: {var}" for var, name in fields) + "}, pos")
        self.functions[slot] = "\n".join(lines) + "\n"
        return fn


def compile_reader(schema: Any) -> Callable[[bytes], Any]:
    """A function reading a value of ``schema`` (parsed JSON) from Avro binary; :class:`NotCompilable` if the
    schema uses a feature not generated."""
    gen = _Generator()
    top: list[str] = []
    gen.value(schema, "value", "", top, "    ")
    entry = "def read(data):\n    pos = 0\n" + "\n".join(top) + "\n    return value\n"
    return gen.compile(entry, {"_long": _long, "_local_time": _local_time, "_utc_time": _utc_time, "_day": _day,
                               "_DOUBLE": _DOUBLE, "_FLOAT": _FLOAT, "Decimal": Decimal})
