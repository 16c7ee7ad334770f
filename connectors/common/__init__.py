"""Glue shared by every connector: Avro in Confluent wire format, Kafka topics and producers, dead letters, retry."""
