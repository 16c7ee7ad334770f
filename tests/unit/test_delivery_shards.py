"""Delivery shards: one for a dataflow of one worker, fixed for the life of its recovery store."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import bytewax.operators as op
import pytest
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSource, run_main

from cdchub.runtime import dataflow_commands, recovery_dir
from connectors.common import delivery
from connectors.common.delivery import (
    ONE_WORKER_SHARDS,
    SHARDS,
    SHARDS_FILE,
    deliver,
    shards_for,
    store_shards,
    use_shards,
)
from connectors.common.retry import RetryPolicy
from connectors.common.sync import Position, SyncCommand
from connectors.settings import Settings
from flows.dataflows import recovery_directory


def settings(tmp_path: Path, workers: int = 1, processes: int = 1) -> Settings:
    return Settings(state_dir=tmp_path, runtime={"workers": workers, "processes": processes})  # type: ignore[arg-type]


def test_a_new_store_of_one_worker_has_one_shard_and_several_workers_at_least_two_each(tmp_path: Path) -> None:
    assert store_shards(recovery_dir(settings(tmp_path), "to_crm")) == ONE_WORKER_SHARDS
    assert store_shards(recovery_dir(settings(tmp_path, workers=2, processes=3), "to_oa")) == 12
    assert store_shards(recovery_dir(settings(tmp_path), "materials", workers=2)) == SHARDS  # a test's own count
    assert shards_for(2) == SHARDS


def test_a_store_keeps_its_shards_whatever_the_settings_say_later(tmp_path: Path) -> None:
    recovery_dir(settings(tmp_path, workers=4), "to_kingdee")
    assert store_shards(recovery_dir(settings(tmp_path, workers=1), "to_kingdee")) == 8


def test_a_store_that_does_not_say_and_no_store_have_the_four_of_before(tmp_path: Path) -> None:
    older = recovery_dir(settings(tmp_path), "to_crm")
    (older / SHARDS_FILE).unlink()  # made by an earlier version, or by `python -m bytewax.recovery` (systemd, Helm)
    assert store_shards(recovery_dir(settings(tmp_path), "to_crm")) == SHARDS == 4
    assert store_shards(None) == SHARDS


def test_the_dataflow_finds_its_store_as_bytewax_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The factory reads the shards of the store ``python -m bytewax.run`` was given: ``cdchub run``'s command line,
    a hand-typed one, or the environment of the systemd units and the Helm chart."""
    (command,) = dataflow_commands("to_crm", settings(tmp_path))
    assert store_shards(recovery_directory(command)) == ONE_WORKER_SHARDS
    monkeypatch.delenv("BYTEWAX_RECOVERY_DIRECTORY", raising=False)
    assert recovery_directory(["bytewax.run", "x", f"--recovery-directory={tmp_path}"]) == tmp_path
    assert recovery_directory(["bytewax.run", "x", "-s", "2"]) is None
    monkeypatch.setenv("BYTEWAX_RECOVERY_DIRECTORY", str(tmp_path / "r"))
    assert recovery_directory(["bytewax.run", "x"]) == tmp_path / "r"


class Recorder:
    """A plain writer that notes which keys each write carried."""

    blocking = False

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def deliver(self, commands: list[SyncCommand]) -> dict[str, BaseException]:
        self.calls.append([c.key for c in commands])
        return {}

    def give_up(self, *_: object) -> None:
        raise AssertionError("nothing fails here")


class RecordingSink:
    policy = RetryPolicy()

    def __init__(self) -> None:
        self.writer = Recorder()

    def build(self, step_id: str, worker_index: int, worker_count: int) -> Recorder:
        return self.writer


def command(key: str) -> SyncCommand:
    return SyncCommand("materials", key, f"1.01.{key}", 1, {"Kingdee_ID": key}, key, 1000,
                       Position("kingdee.material", 0, int(key)))


@pytest.mark.parametrize(("shards", "most_calls"), [(1, 1), (SHARDS, SHARDS)])
def test_the_process_shards_decide_how_many_writes_one_batch_of_commands_becomes(
        shards: int, most_calls: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(delivery, "_process_shards", SHARDS)
    use_shards(shards)
    sink = RecordingSink()
    flow = Dataflow("shards_test")
    keys = [str(k) for k in range(40)]
    deliver("write", op.input("in", flow, TestingSource([command(k) for k in keys], batch_size=40)),
            sink)  # type: ignore[arg-type]
    run_main(flow, epoch_interval=timedelta(seconds=10))
    assert sorted(k for call in sink.writer.calls for k in call) == sorted(keys)
    assert len(sink.writer.calls) == most_calls, "each shard writes what is due in it together"


def test_shards_are_at_least_one() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        use_shards(0)
