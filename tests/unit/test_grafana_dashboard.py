"""The Grafana dashboard only queries metrics that ``cdchub metrics`` exposes."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families

from cdchub.metrics import CdchubCollector
from core.ledger import Position, SyncLedger

DASHBOARD = Path(__file__).resolve().parents[2] / "infra" / "grafana" / "cdchub-dashboard.json"


def exposed_names(tmp_path: Path) -> set[str]:
    from prometheus_client import CollectorRegistry, generate_latest

    from connectors.settings import Settings
    from core.ledger import open_engine

    settings = Settings(state_dir=tmp_path)
    (tmp_path / "capture-stats.json").write_text(json.dumps({"events": 3, "transactions": 2, "dead_letters": 0,
                                                             "last_commit_ms": 1}))
    engine = open_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    now = int(time.time() * 1000)
    SyncLedger(engine, "materials", "zoho").record_applied_many([dict(
        source_key="1", source_version=1, source_number="1.01", target_id="z1", fingerprint="f", action="insert",
        attempts=2, position=Position("kingdee.material", 0, 1), captured_at_ms=now - 50)])
    collector = CdchubCollector(settings, engine)

    def dead_letters():  # type: ignore[no-untyped-def]  # no broker in unit tests
        gauge = GaugeMetricFamily("cdchub_dead_letters", "", labels=["topic"])
        gauge.add_metric(["cdchub.dlq.materials"], 0)
        yield gauge

    collector._dead_letters = dead_letters  # type: ignore[method-assign]
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    names = set()
    for family in text_string_to_metric_families(text):
        names |= {s.name for s in family.samples} | {family.name}
    return names


def test_every_panel_queries_an_exposed_metric(tmp_path: Path) -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"cdchub_[a-z_]+", e)}
    assert used and used <= exposed_names(tmp_path), used - exposed_names(tmp_path)
