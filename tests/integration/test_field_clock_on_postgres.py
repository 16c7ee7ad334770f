"""The field clock on a PostgreSQL ledger (``CDCHUB_LEDGER_URL``), as a production installation may keep it: the
driver-level statements (read by entity, claim, confirmation per entity, restore) behave as on SQLite."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from core.field_clock import KNOWN_CHUNK, FieldClock, value_fingerprint
from core.ledger import open_engine
from tests.integration.harness import IsolatedEnv

SHARED = frozenset({"Product_Name"})


@pytest.fixture(params=["postgresql", "sqlite"])
def clock(request: pytest.FixtureRequest, env: IsolatedEnv, tmp_path: Path) -> FieldClock:
    url = env.settings.kingdee_db.sqlalchemy_url() if request.param == "postgresql" else f"sqlite:///{tmp_path}/l.db"
    return FieldClock(open_engine(url))


def test_claims_confirmations_and_restores_on_the_ledgers_database(clock: FieldClock) -> None:
    entities = [f"materials:{i}" for i in range(KNOWN_CHUNK + 7)]  # more than one read statement
    clock.record_many([(e, "kingdee", 5_000, {"Product_Name": f"喉罩 {e}", "Qty": 1.5}) for e in entities],
                      pending=True)
    clock.record_many([("materials:0", "crm", 6_000, {"Description": "人工填写"})], pending=True)
    known = clock.known(reversed(entities))
    assert len(known) == len(entities) and known["materials:3"]["Product_Name"].value == "喉罩 materials:3"
    assert known["materials:3"]["Qty"].value == 1.5 and known["materials:3"]["Qty"].pending
    echo = FieldClock.decide(known["materials:3"], "crm", 9_000, {"Product_Name": "喉罩 materials:3"}, SHARED)
    assert echo.write == {}, "the other side finds the claimed value"

    clock.confirm([(e, "kingdee", 5_000) for e in entities[:-1]])
    after = clock.known(entities)
    assert not after["materials:3"]["Product_Name"].pending and not after["materials:3"]["Qty"].pending
    assert after[entities[-1]]["Qty"].pending, "an entity not confirmed keeps its claim"
    assert after["materials:0"]["Description"].pending, "the other side's claim is not this confirmation's"

    before = after["materials:1"]["Product_Name"]
    clock.record("materials:1", "crm", 7_000, {"Product_Name": "新名字", "Description": "新增"})
    clock.restore("materials:1", {"Product_Name": before, "Description": None})
    restored = clock.known(["materials:1"])["materials:1"]
    assert restored["Product_Name"] == before and "Description" not in restored


def test_a_per_field_clock_of_an_earlier_version_is_moved_once(env: IsolatedEnv, tmp_path: Path) -> None:
    """Earlier versions kept a row per field (``field_clock``): the first clock opened on the database moves them
    into entity rows, claims not confirmed included, and drops the old table; a second one finds nothing to do."""
    for url in (env.settings.kingdee_db.sqlalchemy_url(), f"sqlite:///{tmp_path}/old.db"):
        engine = open_engine(url)
        entity = f"materials:moved-{uuid.uuid4().hex[:8]}"
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS field_clock"))
            conn.execute(text(
                "CREATE TABLE field_clock (entity VARCHAR(128), field VARCHAR(128), side VARCHAR(16), "
                "source_time_ms BIGINT, fingerprint VARCHAR(32), value TEXT, pending INTEGER, updated_at_ms BIGINT, "
                "PRIMARY KEY (entity, field))"))
            conn.execute(text("INSERT INTO field_clock VALUES (:e, :f, :s, :t, :fp, :v, :p, 1)"), [
                {"e": entity, "f": "Product_Name", "s": "crm", "t": 5_000, "fp": value_fingerprint("喉罩"),
                 "v": '"喉罩"', "p": 0},
                {"e": entity, "f": "Qty", "s": "kingdee", "t": 6_000, "fp": value_fingerprint(1.5), "v": "1.5",
                 "p": 1}])
        clock = FieldClock(engine)
        known = clock.known([entity])[entity]
        assert known["Product_Name"].value == "喉罩" and not known["Product_Name"].pending
        assert known["Qty"].value == 1.5 and known["Qty"].pending, url
        assert not inspect(engine).has_table("field_clock"), url
        FieldClock(engine)  # nothing left to move
        clock.confirm([(entity, "kingdee", 6_000)])
        assert not clock.known([entity])[entity]["Qty"].pending
