"""Avro values in the Confluent wire format, with schemas kept in a Confluent-compatible registry (Apicurio 3).

Wire format: magic byte 0, the 4-byte big-endian schema id, then the Avro binary body.  Subjects follow the
TopicNameStrategy (``<topic>-value``).  Schemas are registered once at start from the ``schemas/`` files; nothing is
ever written with a schema the registry has not accepted, so an incompatible change fails at start, naming the subject.

We encode with fastavro directly rather than confluent-kafka's ``AvroSerializer``: it is the same format, several
times faster per record (no per-call schema lookups), and it lets the decoder resolve the writer's schema against the
reader's, which is what schema evolution needs.
"""

from __future__ import annotations

import contextlib
import io
import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastavro
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from connectors.common.avro_codegen import NotCompilable
from connectors.common.avro_reader import compile_reader
from connectors.common.avro_writer import compile_writer
from core.settings import RegistrySettings

SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "schemas"
MAGIC = 0
_HEADER = struct.Struct(">bI")


class SchemaRejected(RuntimeError):
    """The registry refused a schema (incompatible under the subject's rule, or malformed)."""


class PoisonMessage(ValueError):
    """A Kafka value that is not a Confluent-framed Avro record this reader can decode."""


def load_schema_text(name: str) -> str:
    """The text of ``schemas/<name>.avsc``."""
    return (SCHEMAS_DIR / f"{name}.avsc").read_text(encoding="utf-8")


def registry_client(registry: RegistrySettings | str) -> SchemaRegistryClient:
    """A registry client from the installation's :class:`~core.settings.RegistrySettings` (URL, basic or bearer
    credentials, CA), or from a bare URL (a registry with no credentials: tests, the local stack)."""
    return SchemaRegistryClient({"url": registry} if isinstance(registry, str) else registry.client_config())


class AvroEncoder:
    """Encodes dicts for one subject; the schema is registered (or found) once, at construction.

    Records are written by code generated for the schema (``avro_writer.py``, ~4x faster than fastavro's generic
    writer); a record that code refuses is handed to fastavro, so what is accepted, and the error of what is not,
    stay fastavro's."""

    def __init__(self, registry: SchemaRegistryClient, subject: str, schema_text: str) -> None:
        self.subject = subject
        schema = json.loads(schema_text)
        self.parsed = fastavro.parse_schema(schema)
        try:
            self._write: Callable[[Any], bytes] | None = compile_writer(schema)
        except NotCompilable:
            self._write = None
        try:
            self.schema_id = registry.register_schema(subject, Schema(schema_text, "AVRO"))
        except SchemaRegistryError as exc:
            raise SchemaRejected(f"registry refused the schema for subject {subject!r}: {exc}") from exc
        self._prefix = _HEADER.pack(MAGIC, self.schema_id)

    def encode(self, record: dict[str, Any]) -> bytes:
        if self._write is not None:
            try:
                return self._prefix + self._write(record)
            except (TypeError, ValueError, AttributeError, OverflowError, KeyError):
                pass  # fastavro decides: it accepts a few more shapes, and its error names the value
        buf = io.BytesIO()
        buf.write(self._prefix)
        fastavro.schemaless_writer(buf, self.parsed, record)
        return buf.getvalue()


class AvroDecoder:
    """Decodes Confluent-framed Avro; writer schemas are fetched by id once and cached.

    With ``reader_schema_text`` the writer's schema is resolved against it (schema evolution: a reader on an older
    version still reads records written with a newer, compatible one).  Records whose writer schema is the reader's
    (or when no reader schema is given) are read by code generated for the schema (``avro_reader.py``, same values
    as fastavro, several times faster); the others by fastavro's resolution.
    """

    def __init__(self, registry: SchemaRegistryClient, reader_schema_text: str | None = None) -> None:
        self._registry = registry
        self._reader = fastavro.parse_schema(json.loads(reader_schema_text)) if reader_schema_text else None
        self._reader_form = _canonical(self._reader) if self._reader is not None else None
        self._writers: dict[int, Any] = {}
        self._compiled: dict[int, Callable[[bytes], Any] | None] = {}

    def _writer(self, schema_id: int) -> Any:
        parsed = self._writers.get(schema_id)
        if parsed is None:
            schema = self._registry.get_schema(schema_id)
            raw = json.loads(schema.schema_str or "null")
            parsed = fastavro.parse_schema(raw)
            self._writers[schema_id] = parsed
            compiled = None
            if self._reader_form is None or _canonical(parsed) == self._reader_form:
                with contextlib.suppress(NotCompilable):
                    compiled = compile_reader(raw)
            self._compiled[schema_id] = compiled
        return parsed

    def decode(self, data: bytes) -> dict[str, Any]:
        if len(data) < _HEADER.size:
            raise PoisonMessage(f"value of {len(data)} bytes is too short for the Confluent wire format")
        magic, schema_id = _HEADER.unpack_from(data)
        if magic != MAGIC:
            raise PoisonMessage(f"unknown magic byte {magic}")
        try:
            writer = self._writer(schema_id)
        except SchemaRegistryError as exc:
            raise PoisonMessage(f"schema id {schema_id} is unknown to the registry: {exc}") from exc
        compiled = self._compiled.get(schema_id)
        try:
            if compiled is not None:
                record = compiled(data[_HEADER.size :])
            else:
                record = fastavro.schemaless_reader(io.BytesIO(data[_HEADER.size :]), writer, self._reader)
        except Exception as exc:  # corrupt input raises many kinds
            raise PoisonMessage(f"cannot decode Avro body with schema id {schema_id}: {exc!r}") from exc
        if not isinstance(record, dict):
            raise PoisonMessage(f"schema id {schema_id} does not describe a record")
        return record


def _canonical(parsed: Any) -> str:
    return str(fastavro.schema.to_parsing_canonical_form(parsed))
