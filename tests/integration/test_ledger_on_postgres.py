"""The ledger on a PostgreSQL database (``CDCHUB_LEDGER_URL``), as a production installation may keep it: the
driver-level read of entries, and a sink's ledger rows and field-clock confirmation in one transaction, behave as
on SQLite."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from core.field_clock import FieldClock
from core.ledger import ENTRIES_CHUNK, Position, SyncLedger, open_engine
from tests.integration.harness import IsolatedEnv


@pytest.fixture(params=["postgresql", "sqlite"])
def engine(request: pytest.FixtureRequest, env: IsolatedEnv, tmp_path: Path) -> Engine:
    url = env.settings.kingdee_db.sqlalchemy_url() if request.param == "postgresql" else f"sqlite:///{tmp_path}/l.db"
    return open_engine(url)


def row(key: str, version: int) -> dict[str, object]:
    return dict(source_key=key, source_version=version, source_number=f"1.01.{key}", target_id=f"z{key}",
                fingerprint=f"fp{version}", action="created", attempts=1, position=Position("t", 0, version),
                captured_at_ms=1_000)


def test_entries_of_one_flow_and_target_over_several_reads(engine: Engine) -> None:
    flow = f"ledger-test-{uuid.uuid4().hex[:8]}"
    ledger, other_target = SyncLedger(engine, flow, "zoho"), SyncLedger(engine, flow, "kingdee")
    keys = [f"物料{i}" for i in range(ENTRIES_CHUNK + 3)]
    ledger.record_applied_many([row(k, 10 + i) for i, k in enumerate(keys)])
    other_target.record_applied_many([row(keys[0], 99)])
    ledger.record_failed(keys[-1], 500, error="INVALID_DATA", attempts=3, position=Position("t", 0, 1),
                         captured_at_ms=None)
    found = ledger.entries([*reversed(keys), "unknown", keys[0]])
    assert set(found) == set(keys), "every key once, unknown keys left out"
    assert found[keys[0]].source_version == 10 and found[keys[0]].target_system == "zoho"
    assert found[keys[1]].target_id == f"z{keys[1]}" and found[keys[1]].fingerprint == "fp11"
    assert found[keys[-1]].status == "failed" and found[keys[-1]].source_version == 500
    assert other_target.entries([keys[0]])[keys[0]].source_version == 99
    assert ledger.entries([]) == {}


def test_ledger_rows_and_the_clocks_confirmation_commit_together(engine: Engine) -> None:
    flow = f"ledger-test-{uuid.uuid4().hex[:8]}"
    ledger, clock = SyncLedger(engine, flow, "zoho"), FieldClock(engine)
    entity = f"materials:{flow}"
    clock.record_many([(entity, "kingdee", 5_000, {"Product_Name": "喉罩"})], pending=True)
    with pytest.raises(RuntimeError), engine.begin() as conn:
        ledger.record_applied_many([row("1", 5)], conn)
        clock.confirm([(entity, "kingdee", 5_000)], conn)
        raise RuntimeError("the sink failed before the transaction ended")
    assert ledger.entries(["1"]) == {} and clock.known([entity])[entity]["Product_Name"].pending, "neither stayed"
    with engine.begin() as conn:
        ledger.record_applied_many([row("1", 5)], conn)
        clock.confirm([(entity, "kingdee", 5_000)], conn)
    assert ledger.entries(["1"])["1"].source_version == 5
    assert not clock.known([entity])[entity]["Product_Name"].pending
