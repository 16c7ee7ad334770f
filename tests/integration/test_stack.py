"""The local stack keeps the promises the rest of the project relies on.

- the registry enforces BACKWARD compatibility (Apicurio does not until a rule is set);
- registered schemas and their ids survive a registry restart (kafkasql storage, not in-memory H2);
- PostgreSQL decodes logically with its built-in pgoutput, and ``reset_kingdee_db`` clears even an active slot.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping

import psycopg2
import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from psycopg2.extras import LogicalReplicationConnection

from connectors.settings import Settings
from infra.stack import reset_kingdee_db
from infra.stack.postgres import connect
from infra.stack.registry import Registry

pytestmark = pytest.mark.integration


def _avro(*fields: Mapping[str, object]) -> Schema:
    return Schema(json.dumps({"type": "record", "name": "Probe", "fields": list(fields)}), "AVRO")


@pytest.fixture
def settings(stack: Settings) -> Settings:
    return stack  # the session's stack (tests/integration/conftest.py): postgres, kafka, registry


@pytest.fixture
def registry(settings: Settings) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": settings.registry.url})


def test_registry_rejects_a_backward_incompatible_schema(registry: SchemaRegistryClient) -> None:
    subject = f"stack-test-{uuid.uuid4().hex[:8]}-value"
    a = {"name": "a", "type": "int"}
    registry.register_schema(subject, _avro(a))
    assert registry.get_compatibility() == "BACKWARD"

    # a new required field without default cannot read old data
    with pytest.raises(SchemaRegistryError):
        registry.register_schema(subject, _avro(a, {"name": "b", "type": "string"}))
    # an optional field with a default can
    registry.register_schema(subject, _avro(a, {"name": "b", "type": ["null", "string"], "default": None}))


def test_schemas_survive_a_registry_restart(settings: Settings, registry: SchemaRegistryClient) -> None:
    subject = f"stack-test-{uuid.uuid4().hex[:8]}-value"
    schema_id = registry.register_schema(subject, _avro({"name": "a", "type": "long"}))

    registry_component = Registry(settings)
    assert registry_component.down()
    registry_component.up()

    fresh = SchemaRegistryClient({"url": settings.registry.url})  # no client-side cache
    # looked up directly: the subject list is paged, and other tests register many subjects
    assert fresh.get_latest_version(subject).schema_id == schema_id
    fresh.delete_subject(subject, permanent=False)
    fresh.delete_subject(subject, permanent=True)
    assert fresh.get_compatibility() == "BACKWARD"


def test_reset_kingdee_db_drops_an_active_pgoutput_slot(settings: Settings) -> None:
    # a scratch database, so a developer's `make run` database and slot are never touched
    scratch = f"kingdee_stack_{uuid.uuid4().hex[:8]}"
    admin = connect(settings, dbname="postgres")
    admin.autocommit = True
    with admin.cursor() as c:
        c.execute(f'CREATE DATABASE "{scratch}"')
    settings = settings.model_copy(
        update={"kingdee_db": settings.kingdee_db.model_copy(update={"database": scratch})}
    )
    slot = f"stack_test_{uuid.uuid4().hex[:8]}"
    with connect(settings) as conn, conn.cursor() as c:
        c.execute("CREATE TABLE leftover (id int PRIMARY KEY)")
        c.execute("CREATE PUBLICATION stack_test FOR TABLE leftover")
    conn.close()
    repl = psycopg2.connect(settings.kingdee_db.dsn(), connection_factory=LogicalReplicationConnection)
    cur = repl.cursor()
    cur.create_replication_slot(slot, output_plugin="pgoutput")
    cur.start_replication(slot_name=slot, decode=False,
                          options={"proto_version": "1", "publication_names": "stack_test"})

    with connect(settings) as conn, conn.cursor() as c:
        c.execute("SELECT active FROM pg_replication_slots WHERE slot_name = %s", (slot,))
        assert c.fetchone() == (True,)
        c.execute("INSERT INTO leftover VALUES (1)")
    conn.close()

    reset_kingdee_db(settings)
    repl.close()

    with connect(settings) as conn, conn.cursor() as c:
        c.execute("SELECT count(*) FROM pg_replication_slots WHERE database = %s", (scratch,))
        assert c.fetchone() == (0,)
        c.execute("SELECT to_regclass('leftover')")
        assert c.fetchone() == (None,)
        c.execute("SHOW wal_level")
        assert c.fetchone() == ("logical",)
    conn.close()
    with admin.cursor() as c:
        c.execute(f'DROP DATABASE "{scratch}" WITH (FORCE)')
    admin.close()
