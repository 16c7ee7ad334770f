"""A new column becomes a new schema version; a refused one stops the capture with a clear message."""

from __future__ import annotations

import json

import pytest
from confluent_kafka.schema_registry import Schema
from confluent_kafka.schema_registry.error import SchemaRegistryError

from connectors.common.avro import SchemaRejected
from connectors.kingdee.documents import DocumentCatalog
from connectors.kingdee.models import metadata
from connectors.kingdee.row_types import RowTypes
from connectors.kingdee.schema_evolution import SchemaEvolver


class Registry:
    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse
        self.registered: list[tuple[str, str]] = []

    def register_schema(self, subject: str, schema: Schema) -> int:
        if self.refuse:
            raise SchemaRegistryError(409, 409, "Schema being registered is incompatible with an earlier schema")
        self.registered.append((subject, schema.schema_str))
        return len(self.registered)

    def get_compatibility(self) -> str:
        return "BACKWARD"


def evolver(registry: Registry) -> SchemaEvolver:
    return SchemaEvolver(DocumentCatalog(), RowTypes(metadata), registry,  # type: ignore[arg-type]
                         lambda spec: f"{spec.topic}-value",
                         lambda table, cols: {c: ("numeric", 23, 10) for c in cols})


def test_a_new_column_registers_an_optional_field_in_its_documents_schema() -> None:
    registry = Registry()
    ev = evolver(registry)
    row = {"FMATERIALID": 1, "FNUMBER": "1.01", "FNETWEIGHT": "1.5"}
    assert ev.unknown_columns("T_BD_MATERIAL", row) == ["FNETWEIGHT"]
    encoders: dict = {}
    ev.evolve({"T_BD_MATERIAL": ["FNETWEIGHT"]}, encoders)
    (subject, text), = registry.registered
    assert subject == "kingdee.material-value" and "material" in encoders
    value = json.loads(text)["fields"][0]["type"][1]
    field = next(f for f in value["fields"] if f["name"] == "FNETWEIGHT")
    assert field["default"] is None and field["type"][1]["logicalType"] == "decimal"
    assert ev.unknown_columns("T_BD_MATERIAL", row) == []


def test_a_refused_schema_names_the_subject_the_field_and_the_rule() -> None:
    with pytest.raises(SchemaRejected) as info:
        evolver(Registry(refuse=True)).evolve({"T_BD_MATERIAL": ["FNETWEIGHT"]}, {})
    message = str(info.value)
    assert "kingdee.material-value" in message and "FNETWEIGHT" in message and "BACKWARD" in message
