"""Delivery with retries in state: nothing sleeps, failures wait in the shard's state, tokens never spend budget."""

from __future__ import annotations

import json
from datetime import timedelta

import bytewax.operators as op
import httpx
import pytest
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSource, run_main
from pydantic import SecretStr

from connectors.common.delivery import Delivery, DeliveryState, deliver, shard_of
from connectors.common.retry import RetryPolicy
from connectors.common.sync import SyncCommand
from connectors.common.token_cache import TokenUnavailable
from connectors.zoho.client import ZohoClient
from connectors.zoho.settings import ZohoSettings
from connectors.zoho.sink import ZohoUpsertPartition
from core.errors import PermanentError, RateLimited, TransientError
from core.ledger import Position, SyncLedger, open_engine
from core.mapping import fingerprint
from tests.unit.fakes import DeadLetterProducer

POLICY = RetryPolicy(first_delay_s=1, max_delay_s=8, give_up_after_s=60)


def cmd(key: str, version: int = 1) -> SyncCommand:
    record = {"Kingdee_ID": key, "Product_Name": f"喉罩 {key}"}
    return SyncCommand("materials", key, f"1.01.{key}", version, record, fingerprint(record), 1000,
                       Position("kingdee.material", 0, version))


class ScriptedWriter:
    """Fails the keys it is told to, the way the sink would report them; records every attempt."""

    blocking = False

    def __init__(self) -> None:
        self.failures: dict[str, list[BaseException]] = {}
        self.attempts: list[list[tuple[str, int]]] = []
        self.gave_up: list[tuple[str, int]] = []

    def deliver(self, commands: list[SyncCommand]) -> dict[str, BaseException]:
        self.attempts.append([(c.key, c.version) for c in commands])
        return {c.key: self.failures[c.key].pop(0) for c in commands if self.failures.get(c.key)}

    def give_up(self, command: SyncCommand, error: BaseException, attempts: int, failing_s: float) -> None:
        self.gave_up.append((command.key, attempts))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def step(writer: ScriptedWriter, clock: Clock) -> Delivery:
    return Delivery(None, lambda: writer, POLICY, clock)


def run_until_quiet(logic: Delivery, clock: Clock, horizon_s: float = 3600) -> None:
    """What Bytewax does: wake the step at its notify time, until nothing is pending (time only moves forward)."""
    end = clock.now + horizon_s
    while logic.notify_at() is not None and clock.now < end:
        clock.now = max(clock.now, logic.notify_at().timestamp())  # type: ignore[union-attr]
        logic.on_notify()


def test_items_are_written_together_when_the_step_is_woken() -> None:
    writer, clock = ScriptedWriter(), Clock()
    logic = step(writer, clock)
    for key in "abc":
        assert logic.on_item(cmd(key)) == ([], False)
    assert writer.attempts == [], "nothing is written item by item"
    assert logic.notify_at().timestamp() == clock.now  # type: ignore[union-attr]
    logic.on_notify()
    assert writer.attempts == [[("a", 1), ("b", 1), ("c", 1)]]
    assert logic.notify_at() is None and logic.on_notify()[1] is True, "an empty shard is discarded"


def test_a_transient_failure_waits_in_state_with_backoff_and_others_go_on() -> None:
    writer, clock = ScriptedWriter(), Clock()
    writer.failures["a"] = [TransientError("503"), TransientError("503"), RateLimited("429", retry_after=30)]
    logic = step(writer, clock)
    logic.on_item(cmd("a"))
    logic.on_item(cmd("b"))
    logic.on_notify()
    assert set(logic.state.pending) == {"a"}, "b was written, a waits"
    first_retry = logic.notify_at().timestamp() - clock.now  # type: ignore[union-attr]
    assert 0.5 <= first_retry <= 1
    run_until_quiet(logic, clock)
    assert [a for a in writer.attempts if ("a", 1) in a] == [[("a", 1), ("b", 1)], [("a", 1)], [("a", 1)],
                                                             [("a", 1)]]
    assert clock.now - 1000 >= 30, "the server's Retry-After was honoured"
    assert writer.gave_up == [] and not logic.state.pending


def test_a_command_failing_past_the_budget_is_given_up_once() -> None:
    writer, clock = ScriptedWriter(), Clock()
    writer.failures["a"] = [TransientError("timeout")] * 1000
    logic = step(writer, clock)
    logic.on_item(cmd("a"))
    run_until_quiet(logic, clock)
    assert len(writer.gave_up) == 1 and writer.gave_up[0][0] == "a"
    assert 60 <= clock.now - 1000 <= 70, "given up after the budget, not before"
    assert 5 <= writer.gave_up[0][1] <= 20, "backoff, not a busy loop"


def test_waiting_for_a_token_never_spends_the_budget() -> None:
    writer, clock = ScriptedWriter(), Clock()
    writer.failures["a"] = [TokenUnavailable("no token", retry_after=300)] * 4 + [TransientError("503")]
    logic = step(writer, clock)
    logic.on_item(cmd("a"))
    run_until_quiet(logic, clock)
    assert writer.gave_up == [] and not logic.state.pending
    assert clock.now - 1000 >= 1200, "twenty minutes without a token, and the record still made it"


def test_a_newer_version_takes_the_pending_ones_place() -> None:
    writer, clock = ScriptedWriter(), Clock()
    writer.failures["a"] = [TransientError("503")]
    logic = step(writer, clock)
    logic.on_item(cmd("a", 1))
    logic.on_notify()
    logic.on_item(cmd("a", 2))
    logic.on_item(cmd("a", 1))  # an old duplicate arriving late changes nothing
    run_until_quiet(logic, clock)
    assert writer.attempts[-1] == [("a", 2)]


def test_pending_retries_survive_in_the_snapshot() -> None:
    writer, clock = ScriptedWriter(), Clock()
    writer.failures["a"] = [TransientError("503")]
    logic = step(writer, clock)
    logic.on_item(cmd("a"))
    logic.on_notify()
    resumed = Delivery(logic.snapshot(), lambda: writer, POLICY, clock)  # after a crash, from recovery
    assert isinstance(resumed.state, DeliveryState) and set(resumed.state.pending) == {"a"}
    run_until_quiet(resumed, clock)
    assert writer.attempts[-1] == [("a", 1)] and not resumed.state.pending


class FlakyCrm:
    """ZOHO answering 503 to the first upserts, then accepting."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.upserts: list[int] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/v2/token":
            return httpx.Response(200, json={"access_token": "t", "expires_in": 3600})
        if request.url.path.endswith("/users"):
            return httpx.Response(200, json={"users": [{"id": "1"}]})
        if self.failures:
            self.failures -= 1
            return httpx.Response(503, json={"code": "INTERNAL_ERROR"})
        rows = json.loads(request.content)["data"]
        self.upserts.append(len(rows))
        return httpx.Response(200, json={"data": [{"status": "success", "code": "SUCCESS", "action": "insert",
                                                   "details": {"id": str(9000 + i)}} for i in range(len(rows))]})


def test_the_zoho_sink_hands_a_transient_failure_back_instead_of_sleeping(tmp_path: pytest.TempPathFactory) -> None:
    crm = FlakyCrm(failures=1)
    settings = ZohoSettings(accounts_url="http://z", api_domain="http://z", client_id="c",
                            client_secret=SecretStr("s"), refresh_token=SecretStr("r"))
    client = ZohoClient(settings, httpx.Client(transport=httpx.MockTransport(crm)))
    ledger = SyncLedger(open_engine(f"sqlite:///{tmp_path}/ledger.db"), "materials", "zoho")
    sink = ZohoUpsertPartition(client, ledger, DeadLetterProducer(), "materials", "Products", "Kingdee_ID",
                               POLICY)
    sink.blocking = False
    failed = sink.deliver([cmd("1"), cmd("2")])
    assert set(failed) == {"1", "2"} and isinstance(failed["1"], TransientError) and crm.upserts == []
    assert sink.deliver([cmd("1"), cmd("2")]) == {} and crm.upserts == [2]
    assert ledger.entries(["1", "2"])["1"].status == "synced"
    assert sink.deliver([cmd("1")]) == {} and crm.upserts == [2], "applied: the ledger skips it"


def test_deliver_in_a_dataflow_writes_everything_through_retries(tmp_path: pytest.TempPathFactory) -> None:
    seen: list[list[tuple[str, int]]] = []

    class Sink:
        """A sink whose writer fails every command once (a Bytewax DynamicSink in shape)."""

        policy = RetryPolicy(first_delay_s=0.01, max_delay_s=0.02, give_up_after_s=30)

        def build(self, step_id: str, worker_index: int, worker_count: int) -> ScriptedWriter:
            writer = ScriptedWriter()
            writer.failures = {str(k): [TransientError("503")] for k in range(20)}
            original = writer.deliver

            def deliver(commands: list[SyncCommand]) -> dict[str, BaseException]:
                seen.append([(c.key, c.version) for c in commands])
                return original(commands)

            writer.deliver = deliver  # type: ignore[method-assign]
            return writer

    flow = Dataflow("delivery_test")
    commands = op.input("in", flow, TestingSource([cmd(str(k)) for k in range(20)], batch_size=5))
    deliver("write", commands, Sink(), shards=3)  # type: ignore[arg-type]
    run_main(flow, epoch_interval=timedelta(milliseconds=100))
    written = {key for batch in seen for key, _ in batch}
    assert written == {str(k) for k in range(20)}
    per_key = {str(k): sum(1 for batch in seen for key, _ in batch if key == str(k)) for k in range(20)}
    assert set(per_key.values()) == {2}, "each failed once, then was written: no loss, no extra attempt"
    assert {shard_of(str(k), 3) for k in range(20)} == {"0", "1", "2"}


def test_a_permanent_refusal_is_the_writers_business_not_a_retry() -> None:
    writer, clock = ScriptedWriter(), Clock()
    logic = step(writer, clock)
    logic.on_item(cmd("a"))
    logic.on_notify()  # the writer dead-letters refusals itself and reports nothing back
    assert not logic.state.pending and PermanentError is not TransientError
