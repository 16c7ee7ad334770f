"""Change envelopes in Avro (Confluent wire format) round trip; schema files match the table model."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal

import pytest
from confluent_kafka.schema_registry import Schema

from connectors.common.avro import AvroDecoder, AvroEncoder, PoisonMessage, load_schema_text
from connectors.kingdee.avro_schemas import schema_text
from connectors.kingdee.documents import DOCUMENTS
from connectors.kingdee.models import metadata
from connectors.kingdee.row_types import RowTypes


class InMemoryRegistry:
    """Only the two calls the codec makes; integration tests use the real registry."""

    def __init__(self) -> None:
        self.schemas: list[str] = []

    def register_schema(self, subject: str, schema: Schema) -> int:
        self.schemas.append(schema.schema_str)
        return len(self.schemas)

    def get_schema(self, schema_id: int) -> Schema:
        return Schema(self.schemas[schema_id - 1], "AVRO")


def order_envelope() -> dict:
    after = {
        "FID": 500, "FBILLNO": "XSDD000500", "FDOCUMENTSTATUS": "C", "FDATE": datetime(2024, 5, 1, 9, 30),
        "FNOTE": "北京协和医院 麻醉科 加急", "customer_number": "CUST0001", "customer_name": "北京协和医院",
        "entries": [{"FENTRYID": 601, "FID": 500, "FSEQ": 1, "FQTY": Decimal("10.5000000000"),
                     "FPRICE": Decimal("12.3456789012"), "FALLAMOUNT": Decimal("129.63")}],
    }
    return {
        "before": None, "after": after, "op": "c", "ts_ms": 1,
        "source": {"system": "kingdee", "db": "kingdee", "form_id": "SAL_SaleOrder", "table": "T_SAL_ORDER",
                   "tables": ["T_SAL_ORDER", "T_SAL_ORDERENTRY"], "number": "XSDD000500", "lsn": 123456789,
                   "tx_id": 42, "commit_time": 1714521600000, "snapshot": False},
    }


def test_envelope_round_trip_keeps_exact_values() -> None:
    registry = InMemoryRegistry()
    encoder = AvroEncoder(registry, "kingdee.sales_order-value", load_schema_text("kingdee.sales_order"))  # type: ignore[arg-type]
    data = encoder.encode(order_envelope())
    assert data[0] == 0 and int.from_bytes(data[1:5], "big") == encoder.schema_id
    decoded = AvroDecoder(registry).decode(data)  # type: ignore[arg-type]
    after = decoded["after"]
    assert after["FNOTE"] == "北京协和医院 麻醉科 加急"
    assert after["FDATE"] == datetime(2024, 5, 1, 9, 30)
    assert after["entries"][0]["FQTY"] == Decimal("10.5")
    assert after["entries"][0]["FPRICE"] == Decimal("12.3456789012")
    assert after["FCUSTID"] is None, "columns not set travel as null"
    assert decoded["source"]["lsn"] == 123456789 and decoded["op"] == "c"


@pytest.mark.parametrize("data", [b"", b"\x01\x00\x00\x00\x01abc", b"\x00\x00\x00\x00\x01\xff\xff\xff"])
def test_undecodable_values_are_poison_not_crashes(data: bytes) -> None:
    registry = InMemoryRegistry()
    AvroEncoder(registry, "s", load_schema_text("kingdee.material"))  # type: ignore[arg-type]
    with pytest.raises(PoisonMessage):
        AvroDecoder(registry).decode(data)  # type: ignore[arg-type]


@pytest.mark.parametrize("spec", DOCUMENTS, ids=lambda s: s.name)
def test_schema_files_match_the_table_model(spec) -> None:  # type: ignore[no-untyped-def]
    expected = json.loads(schema_text(spec, RowTypes(metadata)))
    assert json.loads(load_schema_text(spec.topic)) == expected, (
        "run `python -m connectors.kingdee.avro_schemas` after changing the model"
    )
