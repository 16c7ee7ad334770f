"""The materials path on more than one worker and process (Bytewax's -w and -i/-a), against the real stack.

Same CRM state as one worker; a process killed with -9 mid-run and the pair restarted loses and duplicates nothing.
(`make bench-runtime` measures the same at 20,000 materials.)
"""

from __future__ import annotations

import os
import signal
import subprocess

from cdchub.runtime import bytewax_command, recovery_dir
from infra.simulators.common.process import free_port
from infra.simulators.kingdee.erp import bulk_insert_materials
from tests.integration.harness import IsolatedEnv, wait_for

N = 600


def captured(env: IsolatedEnv) -> None:
    bulk_insert_materials(env.kingdee, N, prefix="5.01.")
    env.capture()
    wait_for(lambda: len([k for k, v in env.read_topic("kingdee.material", 10) if v]) >= N, 120, "the capture")


def start(env: IsolatedEnv, name: str, workers: int, index: int | None = None,
          addresses: list[str] | None = None) -> subprocess.Popen[bytes]:
    total = workers * (len(addresses) if addresses else 1)
    command = bytewax_command("flows.dataflows:single('materials')",
                              recovery_dir(env.settings, "materials", total), workers, index, addresses)
    log = (env.tmp / f"{name}.log").open("ab")
    return subprocess.Popen(command, env={**os.environ, **env.env}, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)


def stop(*procs: subprocess.Popen[bytes]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    for proc in procs:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def crm_state(env: IsolatedEnv) -> dict[str, list[str]]:
    state: dict[str, list[str]] = {}
    for record in env.zoho.records():
        state.setdefault(str(record.get("Kingdee_ID")), []).append(str(record.get("Product_Code")))
    return state


def test_two_workers_write_what_one_would(env: IsolatedEnv) -> None:
    captured(env)
    flow = start(env, "two-workers", 2)
    try:
        wait_for(lambda: len(env.zoho.records()) >= N, 180, "all materials in the CRM", 0.5)
    finally:
        stop(flow)
    state = crm_state(env)
    assert len(state) == N and all(len(codes) == 1 for codes in state.values())
    assert sorted(codes[0] for codes in state.values()) == [f"5.01.{i:06d}" for i in range(1, N + 1)]
    log = (env.tmp / "two-workers.log").read_text(errors="replace")
    assert "running materials" in log and not env.dead_letters("materials")


def test_two_processes_one_killed_lose_and_duplicate_nothing(env: IsolatedEnv) -> None:
    captured(env)
    addresses = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]
    pair = [start(env, f"process-{i}", 1, i, addresses) for i in range(2)]
    wait_for(lambda: len(env.zoho.records()) >= 50, 180, "the first materials in the CRM", 0.2)
    pair[1].send_signal(signal.SIGKILL)  # a crash of one member; its peer cannot go on alone
    pair[1].wait()
    stop(pair[0])
    pair = [start(env, f"process-{i}-again", 1, i, addresses) for i in range(2)]
    try:
        wait_for(lambda: len(env.zoho.records()) >= N, 240, "all materials in the CRM after the restart", 0.5)
    finally:
        stop(*pair)
    state = crm_state(env)
    assert len(state) == N, "nothing lost"
    assert all(len(codes) == 1 for codes in state.values()), "nothing duplicated"
    assert sorted(codes[0] for codes in state.values()) == [f"5.01.{i:06d}" for i in range(1, N + 1)]
