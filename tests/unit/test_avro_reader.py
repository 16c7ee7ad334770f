"""The generated Avro reader gives the same values as fastavro for every project schema, and refuses bad bytes."""

from __future__ import annotations

import io
import json
from pathlib import Path

import fastavro
import pytest

from connectors.common.avro_reader import compile_reader
from connectors.common.avro_writer import compile_writer
from tests.unit.test_avro_writer import SCHEMAS, Values


@pytest.mark.parametrize("path", SCHEMAS, ids=lambda p: p.stem)
def test_same_values_as_fastavro_for_every_project_schema(path: Path) -> None:
    schema = json.loads(path.read_text(encoding="utf-8"))
    read, write = compile_reader(schema), compile_writer(schema)
    parsed = fastavro.parse_schema(schema)
    for seed in range(60):
        data = write(Values(seed, schema).of(schema))
        expected = fastavro.schemaless_reader(io.BytesIO(data), parsed)
        got = read(data)
        assert got == expected, f"{path.stem}, seed {seed}"
        assert json.dumps(got, default=repr) == json.dumps(expected, default=repr), "same types, same field order"


def test_blocks_with_sizes_as_other_writers_write_them() -> None:
    schema = {"type": "record", "name": "R", "fields": [
        {"name": "xs", "type": {"type": "array", "items": "long"}},
        {"name": "m", "type": {"type": "map", "values": "string"}}]}
    # xs: a block of -2 items (negative count: its byte size follows) then an empty block; m: 1 entry
    data = bytes([0x03, 0x04, 0x02, 0x04, 0x00, 0x02, 0x02]) + b"k" + bytes([0x06]) + "值".encode() + bytes([0x00])
    expected = fastavro.schemaless_reader(io.BytesIO(data), fastavro.parse_schema(schema))
    assert compile_reader(schema)(data) == expected == {"xs": [1, 2], "m": {"k": "值"}}


@pytest.mark.parametrize("data", [b"", b"\x04", b"\x02\x7f", b"\x02\x14abc"])
def test_truncated_or_corrupt_bytes_raise(data: bytes) -> None:
    read = compile_reader({"type": "record", "name": "R", "fields": [{"name": "s", "type": ["null", "string"]}]})
    with pytest.raises((IndexError, ValueError, UnicodeDecodeError)):
        read(data)
