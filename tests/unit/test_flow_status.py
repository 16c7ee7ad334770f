"""``cdchub status`` and the console's flow health without a stack: every flow of the runtime with its process and
liveness (from the supervisor's pid file and the health reports), what it retries since when, token refusals
recorded where they happen, and the last hour's history behind the sparklines."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cdchub.dashboard import rate_history
from cdchub.flow_status import lag_history, record_lag, runtime_status
from connectors.common import shared_state
from connectors.common.health import Health
from connectors.common.token_cache import CachedToken, Token, TokenUnavailable, token_stats
from connectors.settings import Settings
from core.ledger import open_engine, sync_history
from flows.dataflows import DATAFLOWS, FLOWS


@pytest.fixture()
def sleepers() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes that stand in for the runtime's children (alive as long as the test needs)."""
    procs = [subprocess.Popen(["sleep", "60"]) for _ in range(2)]
    yield procs
    for p in procs:
        p.kill()
        p.wait()


def _dead_pid() -> int:
    gone = subprocess.Popen(["true"])
    gone.wait()
    return gone.pid


def test_status_lists_every_flow_with_its_process_liveness_retries_and_token_refusals(
        tmp_path: Path, sleepers: list[subprocess.Popen[bytes]]) -> None:
    capture, to_kingdee = sleepers
    state = tmp_path / "state"
    (state / "runtime").mkdir(parents=True)
    # `cdchub run`: the supervisor (this test) and its children; to_crm exited and waits for its restart
    (state / "run.pids").write_text(json.dumps({"supervisor": os.getpid(), "children": {
        "capture": capture.pid, "pollers": capture.pid, "to_crm": _dead_pid(), "to_kingdee": to_kingdee.pid}}))
    now_ms = int(time.time() * 1000)
    failing_since = now_ms - 95_000
    (state / "runtime" / f"to_kingdee-{to_kingdee.pid}.json").write_text(json.dumps({
        "role": "to_kingdee", "pid": to_kingdee.pid, "started_ms": now_ms - 60_000, "updated_ms": now_ms,
        "flows": {"products_to_kingdee": {"read": 7, "written": 5, "dead_letters": 0, "retrying": 2,
                                          "retrying_since_ms": failing_since, "waiting_for_token": 1,
                                          "last_error": "TokenUnavailable: refresh refused",
                                          "last_error_ms": now_ms - 1000}}}))
    (state / "tokens").mkdir()
    (state / "tokens" / "zoho-client.json").write_text(json.dumps({
        "mints": [time.time() - 30], "refusals": 3, "last_refusal_at": time.time() - 20,
        "last_refusal": "Access Denied: too many requests", "not_before": time.time() + 40}))

    status = runtime_status(Settings(state_dir=state), None)

    assert [r.flow for r in status.flows] == list(FLOWS), "every flow of the runtime, fed from any system"
    liveness = {r.flow: r.liveness for r in status.flows}
    assert {liveness[f] for f in DATAFLOWS["to_crm"]} == {"restarting"}
    assert {liveness[f] for f in DATAFLOWS["to_kingdee"]} == {"alive"}
    assert liveness["campaign_approvals"] == "stopped", "no process runs to_oa"
    products = next(r for r in status.flows if r.flow == "products_to_kingdee")
    assert (products.pid, products.retrying, products.retrying_since_ms) == (to_kingdee.pid, 2, failing_since)
    assert {p.name: p.liveness for p in status.processes} == {
        "supervisor": "alive", "capture": "alive", "pollers": "alive", "to_crm": "restarting", "to_kingdee": "alive"}

    text = "\n".join(status.lines())
    for flow in FLOWS:
        assert any(line.startswith(f"{flow} ") for line in status.lines()), flow
    since = time.strftime("%H:%M:%S", time.localtime(failing_since / 1000))
    assert f"retrying 2 since {since} (1 waiting for an access token)" in text
    assert "zoho: 1 minted in the last 10 min, 3 refused (last " in text and "Access Denied" in text
    assert "no token for " in text
    (budget,) = [line for line in status.lines() if line.startswith("ZOHO API (24 h): ")]
    assert "0 throttled (429), 3 token refreshes refused (last " in budget


def test_without_a_supervisor_every_flow_is_stopped(tmp_path: Path) -> None:
    status = runtime_status(Settings(state_dir=tmp_path), None)
    assert len(status.flows) == len(FLOWS) and {r.liveness for r in status.flows} == {"stopped"}
    assert status.lines()[0].startswith("processes: none")


class Refused(CachedToken):
    def _fetch(self) -> Token:
        raise TokenUnavailable("HTTP 400 Access Denied: You have made too many requests continuously.",
                               retry_after=30)


def test_a_refused_refresh_is_recorded_with_its_time_and_reason(tmp_path: Path) -> None:
    shared_state.share(tmp_path)
    try:
        with pytest.raises(TokenUnavailable):
            Refused("zoho-c").token()
    finally:
        shared_state.unshare()
    (record,) = token_stats(tmp_path).values()
    assert record["refusals"] == 1 and "too many requests" in record["last_refusal"]
    assert time.time() - record["last_refusal_at"] < 5


def test_retrying_since_is_when_a_command_first_failed_even_while_it_waits_for_a_token() -> None:
    health = Health()
    first = time.time() - 120
    health.delivered("materials", [], {"k1": (first, "ZohoError: 503")}, [])
    health.delivered("materials", [], {"k1": (time.time(), "TokenUnavailable: refused")}, [])
    summary = health.report()["flows"]["materials"]
    assert summary["retrying"] == 1 and summary["retrying_since_ms"] == int(first * 1000)
    assert summary["waiting_for_token"] == 1


def test_the_last_hour_of_writes_and_lag_is_kept_per_minute(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    now_ms = int(time.time() * 1000)
    rows = [{"flow": "materials", "source_key": str(i), "target_system": "zoho", "source_version": 1,
             "status": "synced", "action": "insert", "at_ms": now_ms - m * 60_000}
            for i, m in enumerate([0, 0, 0, 5, 59, 75])]
    rows.append({**rows[0], "action": "superseded"})  # coalesced: not a write
    with engine.begin() as conn:
        conn.execute(sync_history.insert(), rows)
    writes = rate_history(engine, now_ms=now_ms)["materials"]
    assert len(writes) == 60 and writes[-1] == 3 and writes[-6] == 1 and writes[0] == 1 and sum(writes) == 5

    now = time.time()
    record_lag(tmp_path, {"materials": 12, "customers": None}, now - 120)
    record_lag(tmp_path, {"materials": 4}, now)
    lags = lag_history(tmp_path, now=now)
    assert lags["materials"][-1] == 4 and lags["materials"][-3] == 12 and lags["materials"][-2] is None
    assert "customers" not in lags
