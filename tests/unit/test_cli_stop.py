"""A dataflow process stops on SIGTERM or SIGINT (the supervisor's stop, Ctrl-C) with one log line and exit code
0 — not Bytewax's Rust panic, its backtrace and two Python tracebacks (``cdchub.runtime.stop_quietly``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import bytewax.operators as op
import pytest
from bytewax.connectors.stdio import StdOutSink
from bytewax.dataflow import Dataflow
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from core.settings import PROJECT_ROOT


class _Idle(StatefulSourcePartition[str, None]):
    """A source with nothing to read, like a quiet Kafka topic: the worker loops and waits."""

    def next_batch(self) -> list[str]:
        return []

    def next_awake(self) -> datetime | None:
        return datetime.now(UTC) + timedelta(milliseconds=50)

    def snapshot(self) -> None:
        return None


class _IdleSource(FixedPartitionedSource[str, None]):
    def list_parts(self) -> list[str]:
        return ["0"]

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _Idle:
        return _Idle()


def idle_dataflow() -> Dataflow:
    """The factory ``python -m bytewax.run`` calls, set up like the runtime's (``flows/dataflows.py``)."""
    from core.logs import configure_logging
    from flows.process import stop_quietly

    configure_logging()
    stop_quietly("idle")
    flow = Dataflow("idle")
    op.output("out", op.input("in", flow, _IdleSource()), StdOutSink())
    print("ready", flush=True)
    return flow


@pytest.mark.parametrize(("signum", "workers"), [(signal.SIGTERM, 1), (signal.SIGINT, 1), (signal.SIGINT, 2)])
def test_a_dataflow_stops_with_one_line_and_no_panic(signum: signal.Signals, workers: int) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "bytewax.run", "tests.unit.test_cli_stop:idle_dataflow()",
                             "-w", str(workers)], cwd=PROJECT_ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env={**os.environ, "RUST_BACKTRACE": "1"}, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(1.0)  # the worker starts looping (its first steps run); the signal comes in the middle
    except BaseException:
        proc.kill()
        raise
    proc.send_signal(signum)
    out = proc.communicate(timeout=30)[0]
    assert proc.returncode == 0, out
    assert "panicked" not in out and "Traceback" not in out and "backtrace" not in out, out
    assert f"idle: stopped ({signum.name})" in out
