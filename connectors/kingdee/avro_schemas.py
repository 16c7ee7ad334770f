"""Avro schemas of the Kingdee document topics, derived from the table model and the document declarations.

``python -m connectors.kingdee.avro_schemas`` writes ``schemas/kingdee.<document>.avsc``; the files are the source of
truth registered at start, and a unit test fails when they drift from the model.  Every document field is optional
with a null default, so adding a column is a BACKWARD-compatible change.
"""

from __future__ import annotations

import json
from typing import Any

from connectors.common.avro import SCHEMAS_DIR
from connectors.kingdee.documents import DOCUMENTS, HEADER, DocumentSpec
from connectors.kingdee.row_types import RowTypes

SOURCE_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "Source",
    "namespace": "cdchub.kingdee",
    "doc": "Where the change came from: the Kingdee database position of the committing transaction.",
    "fields": [
        {"name": "system", "type": "string"},
        {"name": "db", "type": "string"},
        {"name": "form_id", "type": "string"},
        {"name": "table", "type": "string", "doc": "header table"},
        {"name": "tables", "type": {"type": "array", "items": "string"}, "doc": "tables the transaction touched"},
        {"name": "number", "type": ["null", "string"], "default": None, "doc": "document number (FNUMBER/FBILLNO)"},
        {"name": "lsn", "type": "long", "doc": "commit LSN (snapshot: the slot's consistent point)"},
        {"name": "tx_id", "type": ["null", "long"], "default": None},
        {"name": "commit_time", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "snapshot", "type": "boolean", "default": False},
    ],
}


def _columns(types: RowTypes, table: str, skip: set[str] | None = None) -> list[dict[str, Any]]:
    return [
        {"name": col, "type": ["null", types.avro_type(table, col)], "default": None}
        for col in types.columns[table]
        if not skip or col not in skip
    ]


def _reference_fields(name: str) -> list[dict[str, Any]]:
    return [{"name": f"{name}_number", "type": ["null", "string"], "default": None},
            {"name": f"{name}_name", "type": ["null", "string"], "default": None}]


def document_schema(spec: DocumentSpec, types: RowTypes) -> dict[str, Any]:
    fields = _columns(types, spec.header.table)
    for part in spec.parts:
        if part.merge_into == HEADER:
            fields += _columns(types, part.table, skip={f["name"] for f in fields})
    for part in spec.parts:
        if part.list_field is None:
            continue
        row_fields = _columns(types, part.table)
        seen = {f["name"] for f in row_fields}
        for split in spec.parts:
            if split.merge_into == part.list_field:
                extra = _columns(types, split.table, skip=seen)
                row_fields += extra
                seen |= {f["name"] for f in extra}
        for ref in spec.references:
            if ref.list_field == part.list_field:
                row_fields += _reference_fields(ref.name)
        if spec.source_order is not None and spec.source_order.list_field == part.list_field:
            row_fields.append({"name": spec.source_order.field, "type": ["null", "string"], "default": None,
                               "doc": "the sales order this row comes from (directly or through its outbound)"})
        row_name = "".join(w.capitalize() for w in part.list_field.split("_")) + "Row"
        fields.append(
            {"name": part.list_field,
             "type": {"type": "array", "items": {"type": "record", "name": row_name, "fields": row_fields}},
             "default": []}
        )
    for ref in spec.references:
        if ref.list_field is None:
            fields += _reference_fields(ref.name)
    value = {"type": "record", "name": "Value", "fields": fields}
    return {
        "type": "record",
        "name": "Envelope",
        "namespace": f"cdchub.kingdee.{spec.name}",
        "doc": f"Change of a Kingdee {spec.form_id} document ({spec.header.table} and its entries/texts).",
        "fields": [
            {"name": "before", "type": ["null", value], "default": None},
            {"name": "after", "type": ["null", "Value"], "default": None},
            {"name": "op", "type": {"type": "enum", "name": "Op", "symbols": ["c", "u", "d", "r"]}},
            {"name": "ts_ms", "type": "long", "doc": "when the capture produced the event"},
            {"name": "source", "type": SOURCE_SCHEMA},
        ],
    }


def schema_text(spec: DocumentSpec, types: RowTypes) -> str:
    return json.dumps(document_schema(spec, types), ensure_ascii=False, indent=2) + "\n"


def main() -> None:
    from connectors.kingdee.models import metadata

    types = RowTypes(metadata)
    SCHEMAS_DIR.mkdir(exist_ok=True)
    for spec in DOCUMENTS:
        (SCHEMAS_DIR / f"{spec.topic}.avsc").write_text(schema_text(spec, types), encoding="utf-8")
        print(f"wrote schemas/{spec.topic}.avsc")


if __name__ == "__main__":
    main()
