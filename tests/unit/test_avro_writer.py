"""The generated Avro writer writes the same bytes as fastavro for every project schema, and refuses what it should."""

from __future__ import annotations

import io
import json
import random
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import fastavro
import pytest

from connectors.common.avro import SCHEMAS_DIR, AvroEncoder
from connectors.common.avro_codegen import NotCompilable
from connectors.common.avro_writer import compile_writer

SCHEMAS = sorted(SCHEMAS_DIR.glob("*.avsc"))


def fastavro_bytes(parsed: Any, value: Any) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, parsed, value)
    return buf.getvalue()


class Values:
    """Random values of a schema, None where a union allows it; texts include Chinese and emoji."""

    def __init__(self, seed: int, schema: Any) -> None:
        self.rnd = random.Random(seed)
        self.named: dict[str, Any] = {}
        self._learn(schema)

    def _learn(self, schema: Any) -> None:
        if isinstance(schema, list):
            for branch in schema:
                self._learn(branch)
        elif isinstance(schema, dict):
            if schema.get("type") in ("record", "enum"):
                self.named[schema["name"]] = schema
            for field in schema.get("fields", []):
                self._learn(field["type"])
            for inner in ("items", "values"):
                if inner in schema:
                    self._learn(schema[inner])

    def of(self, schema: Any, ns: str = "") -> Any:
        rnd = self.rnd
        if isinstance(schema, list):
            if "null" in schema and rnd.random() < 0.3:
                return None
            return self.of(next(s for s in schema if s != "null"), ns)
        if isinstance(schema, str):
            if schema in self.named:
                return self.of(self.named[schema], ns)
            return self.primitive(schema)
        kind, logical = schema.get("type"), schema.get("logicalType")
        if logical == "decimal":
            scale = schema.get("scale", 0)
            digits = rnd.randint(1, schema["precision"] - scale)
            return Decimal(rnd.randint(-(10**digits) + 1, 10**digits - 1)).scaleb(-scale)
        if logical == "local-timestamp-millis":
            return datetime(2026, 1, 1) + timedelta(microseconds=rnd.randint(-10**15, 10**15))
        if logical == "timestamp-millis":
            return datetime(2026, 1, 1, tzinfo=UTC) + timedelta(microseconds=rnd.randint(-10**15, 10**15))
        if logical == "date":
            return date(2026, 1, 1) + timedelta(days=rnd.randint(-30000, 30000))
        if kind == "record":
            return {f["name"]: self.of(f["type"], ns) for f in schema["fields"]}
        if kind == "array":
            return [self.of(schema["items"], ns) for _ in range(rnd.randint(0, 3))]
        if kind == "map":
            return {f"k{i} 键": self.of(schema["values"], ns) for i in range(rnd.randint(0, 3))}
        if kind == "enum":
            return rnd.choice(schema["symbols"])
        return self.of(kind, ns)

    def primitive(self, kind: str) -> Any:
        rnd = self.rnd
        return {
            "null": None,
            "boolean": rnd.random() < 0.5,
            "int": rnd.choice([0, -1, 63, -64, 64, 2**31 - 1, -(2**31), rnd.randint(-(2**31), 2**31 - 1)]),
            "long": rnd.choice([0, -1, 63, -64, 64, 100003, 2**63 - 1, -(2**63), rnd.randint(-(2**63), 2**63 - 1)]),
            "double": rnd.uniform(-1e9, 1e9),
            "float": 1.5,
            "bytes": rnd.randbytes(rnd.randint(0, 40)),
            "string": rnd.choice(["", " ", "C", "一次性使用麻醉呼吸回路", "成人 1.8m 😷", "x" * 200 + "长"]),
        }[kind]


@pytest.mark.parametrize("path", SCHEMAS, ids=lambda p: p.stem)
def test_same_bytes_as_fastavro_for_every_project_schema(path: Path) -> None:
    schema = json.loads(path.read_text(encoding="utf-8"))
    write = compile_writer(schema)
    parsed = fastavro.parse_schema(schema)
    for seed in range(60):
        value = Values(seed, schema).of(schema)
        assert write(value) == fastavro_bytes(parsed, value), f"{path.stem}, seed {seed}"
        decoded = fastavro.schemaless_reader(io.BytesIO(write(value)), parsed)
        assert decoded.keys() == value.keys()


def test_values_the_schema_cannot_hold_raise() -> None:
    schema = {"type": "record", "name": "R", "fields": [
        {"name": "qty", "type": ["null", {"type": "bytes", "logicalType": "decimal", "precision": 5, "scale": 2}]},
        {"name": "id", "type": "long"}, {"name": "n", "type": "int"}, {"name": "name", "type": ["null", "string"]},
        {"name": "ok", "type": "boolean"}, {"name": "op", "type": {"type": "enum", "name": "Op", "symbols": ["c"]}},
    ]}
    write = compile_writer(schema)
    good = {"qty": Decimal("1.50"), "id": 1, "n": 2, "name": "名", "ok": True, "op": "c"}
    write(good)
    for field, bad in [("qty", Decimal("123456")), ("qty", Decimal("1.005")), ("id", "7"), ("id", 2**63),
                       ("n", 2**31), ("name", 5), ("ok", None), ("ok", 1), ("op", "x"), ("id", None)]:
        with pytest.raises((TypeError, ValueError, OverflowError, KeyError)):
            write({**good, field: bad})


def test_unions_of_two_types_are_left_to_fastavro() -> None:
    with pytest.raises(NotCompilable):
        compile_writer({"type": "record", "name": "R", "fields": [{"name": "x", "type": ["null", "long", "string"]}]})


def test_the_encoder_falls_back_to_fastavro_for_what_the_generated_code_refuses() -> None:
    class Registry:
        def register_schema(self, subject: str, schema: Any) -> int:
            return 7

    schema = {"type": "record", "name": "R", "fields": [{"name": "x", "type": "double"}]}
    encoder = AvroEncoder(Registry(), "s", json.dumps(schema))  # type: ignore[arg-type]
    # a Decimal is no float for struct.pack, fastavro writes it as one: the encoder still writes it
    assert encoder.encode({"x": Decimal("1.5")})[5:] == fastavro_bytes(fastavro.parse_schema(schema), {"x": 1.5})
    with pytest.raises(Exception):  # noqa: B017 - fastavro's own error for what neither can write
        encoder.encode({"x": "not a number"})


def test_missing_fields_take_their_default_as_in_fastavro() -> None:
    schema = {"type": "record", "name": "R", "fields": [
        {"name": "a", "type": ["null", "string"], "default": None}, {"name": "b", "type": "long", "default": 7},
        {"name": "c", "type": {"type": "array", "items": "long"}, "default": []}]}
    parsed = fastavro.parse_schema(schema)
    for value in ({}, {"a": "甲"}, {"b": 1, "c": [1, 2]}):
        assert compile_writer(schema)(value) == fastavro_bytes(parsed, value)


def test_local_times_of_one_instant_in_two_zones_keep_their_own_wall_clock() -> None:
    schema = {"type": "record", "name": "R", "fields": [
        {"name": "t", "type": {"type": "long", "logicalType": "local-timestamp-millis"}}]}
    parsed, write = fastavro.parse_schema(schema), compile_writer(schema)
    beijing = datetime(2026, 12, 7, 12, 0, tzinfo=timezone(timedelta(hours=8)))
    for value in (beijing, beijing.astimezone(UTC), beijing.replace(tzinfo=None), beijing.astimezone(UTC)):
        assert write({"t": value}) == fastavro_bytes(parsed, {"t": value})
