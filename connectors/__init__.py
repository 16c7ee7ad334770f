"""One package per external system, plus the shared Kafka and schema-registry glue in ``connectors.common``."""
