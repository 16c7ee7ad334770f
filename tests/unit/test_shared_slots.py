"""The org-wide limit on calls in flight: slots shared by every process of an installation."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

from connectors.common import shared_state
from connectors.common.shared_state import SharedSlots


def _hold(state_dir: str, log: str, rounds: int) -> None:
    shared_state.share(Path(state_dir))
    slots = SharedSlots("zoho-org", 2)
    for _ in range(rounds):
        with slots.hold():
            with open(log, "a") as fh:
                fh.write("+\n")
            time.sleep(0.02)  # a call in flight
            with open(log, "a") as fh:
                fh.write("-\n")


def test_four_processes_never_hold_more_than_the_orgs_two_slots(tmp_path: Path) -> None:
    log = tmp_path / "log"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_hold, args=(str(tmp_path), str(log), 10)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    held = peak = 0
    for line in log.read_text().split():
        held += 1 if line == "+" else -1
        peak = max(peak, held)
    assert log.read_text().count("+") == 40
    assert peak == 2, "calls overlapped, but never more than the org allows"


def test_a_process_that_dies_holding_a_slot_frees_it(tmp_path: Path) -> None:
    shared_state.share(tmp_path)
    try:
        ctx = multiprocessing.get_context("fork")
        child = ctx.Process(target=lambda: (SharedSlots("org", 1).hold().__enter__(), os._exit(9)))
        child.start()
        child.join(30)
        with SharedSlots("org", 1).hold():  # would wait forever if the dead process still held it
            pass
    finally:
        shared_state.unshare()
