"""Schema evolution while streaming: a column added to a captured Kingdee table is picked up without a restart.

Before a transaction (or the snapshot) is assembled, its rows are checked for columns the capture does not know.
For each, the column's type is read from the database catalog, the document's Avro schema is derived again with
the new (optional, null-default) field, and registered under the subject's compatibility rule — BACKWARD here, so
consumers reading with the old schema keep reading.  If the registry refuses (an incompatible change, e.g. a
column whose type changed), the capture stops with a message naming the subject, the field and the rule, and
nothing is written with an unregistered schema.
"""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka.schema_registry import SchemaRegistryClient

from connectors.common.avro import AvroEncoder, SchemaRejected
from connectors.kingdee.avro_schemas import schema_text
from connectors.kingdee.documents import DocumentCatalog, DocumentSpec
from connectors.kingdee.row_types import RowTypes

log = logging.getLogger(__name__)


class SchemaEvolver:
    def __init__(self, catalog: DocumentCatalog, types: RowTypes, registry: SchemaRegistryClient,
                 subject_of: Any, column_types: Any) -> None:
        self.catalog = catalog
        self.types = types
        self.registry = registry
        self.subject_of = subject_of  # spec -> subject
        self.column_types = column_types  # (table, [columns]) -> {column: (data_type, precision, scale)}

    def unknown_columns(self, table: str, row: dict[str, Any]) -> list[str]:
        known = self.types.columns.get(table)
        return [] if known is None else [c for c in row if c not in known]

    def evolve(self, new: dict[str, list[str]], encoders: dict[str, AvroEncoder]) -> None:
        """Learn the new columns, then register the changed documents' schemas (refusal raises)."""
        touched: set[str] = set()
        for table, columns in new.items():
            for column, (data_type, precision, scale) in self.column_types(table, columns).items():
                self.types.add_column(table, column, data_type, precision, scale)
                log.info("schema evolution: %s.%s (%s) is new", table, column, data_type)
            found = self.catalog.by_table.get(table)
            if found is not None:
                touched.add(found[0].name)
        for name in sorted(touched):
            spec: DocumentSpec = self.catalog.by_name[name]
            subject = self.subject_of(spec)
            text = schema_text(spec, self.types)
            try:
                encoders[name] = AvroEncoder(self.registry, subject, text)
            except SchemaRejected as exc:
                fields = sorted(c for cols in new.values() for c in cols)
                try:
                    rule = self.registry.get_compatibility()
                except Exception:  # the rule is only named in the message
                    rule = "the registry's rule"
                raise SchemaRejected(
                    f"subject {subject!r} refused the new schema (fields {fields}) under {rule}: {exc}. "
                    "Nothing was written with it; fix the column or the compatibility rule, then restart."
                ) from exc
            log.info("schema evolution: registered a new version of %s (id %s)", subject, encoders[name].schema_id)

