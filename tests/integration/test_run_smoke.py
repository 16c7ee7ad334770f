"""Smoke test of the main job, as a new user starts it: ``cdchub run`` from an empty state dir and a new database.

Its own simulators (other ports, their own folder), database, slot, topic prefix and state dir, so a developer's
``make run`` is never touched.  Bounded: it checks the first minute or two of a start, then every way of stopping.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient
from sqlalchemy import create_engine, text

from cdchub.settings import PROJECT_ROOT, KingdeeDbSettings, Settings
from connectors.kingdee.demo_data import insert_material
from infra.simulators.common.process import free_port
from infra.stack.simulators import SIMULATORS, Simulator
from tests.integration.harness import IsolatedEnv, ZohoSim, drop_database, wait_for


class Run:
    """One ``cdchub run`` with its stdout on a pipe the test reads (and can close)."""

    def __init__(self, env: dict[str, str], log: Path, *, sigint_ignored: bool = False) -> None:
        self.read_fd, write_fd = os.pipe()
        self.output = ""
        with log.open("ab") as err:
            # started by `cmd &` from a script, a process begins with SIGINT ignored (and so do its children)
            self.proc = subprocess.Popen([sys.executable, "-m", "cdchub.cli", "run"], cwd=PROJECT_ROOT,
                                         env={**os.environ, **env}, stdin=subprocess.DEVNULL, stdout=write_fd,
                                         stderr=err, preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
                                         if sigint_ignored else None)
        os.close(write_fd)

    def read(self) -> str:
        """What it printed so far (never blocks)."""
        while self.read_fd >= 0 and select.select([self.read_fd], [], [], 0)[0]:
            chunk = os.read(self.read_fd, 65536)
            if not chunk:
                break
            self.output += chunk.decode(errors="replace")
        return self.output

    def close_output(self) -> None:
        os.close(self.read_fd)
        self.read_fd = -1


def children_of(supervisor: int) -> set[int]:
    """Every process started as a child of this ``cdchub run`` (by the supervisor pid in its environment)."""
    found = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"CDCHUB_SUPERVISOR_PID={supervisor}".encode() in environ and alive(int(proc.name)):
            found.add(int(proc.name))
    return found


def alive(pid: int) -> bool:
    """Running (a zombie left to a parent that does not reap is not running)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def dead_letters(settings: Settings) -> dict[str, int]:
    from confluent_kafka import Consumer, TopicPartition

    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers})
    prefix = settings.kafka.topic("cdchub.dlq.")
    topics = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix)]
    consumer = Consumer({"bootstrap.servers": settings.kafka.bootstrap_servers, "group.id": f"s-{uuid.uuid4()}"})
    counts = {}
    for topic in topics:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        counts[topic] = sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                            for p in meta.partitions)
    consumer.close()
    return counts


@pytest.fixture()
def run_env(stack: Settings, tmp_path: Path) -> Iterator[tuple[dict[str, str], Settings]]:
    tag = uuid.uuid4().hex[:8]
    database = f"kingdee_run{tag}"
    ports = {spec.name: free_port() for spec in SIMULATORS}
    base = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    env = {
        "CDCHUB_STATE_DIR": str(tmp_path / "state"), "CDCHUB_SIMULATORS_DIR": str(tmp_path / "simulators"),
        "CDCHUB_RUN_LOG_DIR": str(tmp_path / "run-logs"),
        "CDCHUB_KAFKA__TOPIC_PREFIX": f"r{tag}.", "CDCHUB_KINGDEE_DB__SLOT": f"r_{tag}",
        "CDCHUB_KINGDEE_DB__DATABASE": database,
        "CDCHUB_ZOHO_SIMULATOR_PORT": str(ports["zoho"]), "CDCHUB_ZOHO__ACCOUNTS_URL": base["zoho"],
        "CDCHUB_ZOHO__API_DOMAIN": base["zoho"],
        "CDCHUB_KINGDEE_WEBAPI_SIMULATOR_PORT": str(ports["kingdee"]),
        "CDCHUB_KINGDEE_API__BASE_URL": f"{base['kingdee']}/K3Cloud",
        "CDCHUB_WEAVER_SIMULATOR_PORT": str(ports["weaver"]), "CDCHUB_WEAVER__BASE_URL": base["weaver"],
        "CDCHUB_HUILIANYI_SIMULATOR_PORT": str(ports["huilianyi"]), "CDCHUB_HUILIANYI__BASE_URL": base["huilianyi"],
    }
    settings = stack.model_copy(update={
        "simulators_dir": tmp_path / "simulators", "zoho_simulator_port": ports["zoho"],
        "kingdee_webapi_simulator_port": ports["kingdee"], "weaver_simulator_port": ports["weaver"],
        "huilianyi_simulator_port": ports["huilianyi"], "state_dir": tmp_path / "state",
        "kafka": stack.kafka.model_copy(update={"topic_prefix": f"r{tag}."}),
        "kingdee_db": KingdeeDbSettings(**{**stack.kingdee_db.model_dump(), "database": database,
                                           "slot": f"r_{tag}"}),
    })
    try:
        yield env, settings
    finally:
        for spec in SIMULATORS:
            Simulator(settings, spec).down()
        IsolatedEnv(settings, env, tmp_path, create_engine(settings.kingdee_db.sqlalchemy_url()),
                    ZohoSim(base["zoho"])).close()
        drop_database(stack, database, settings.kingdee_db.slot)


def test_make_run_from_nothing_syncs_refuses_a_second_run_and_leaves_no_process_behind(
        run_env: tuple[dict[str, str], Settings], tmp_path: Path) -> None:
    env, settings = run_env
    pids_file = settings.state_dir / "run.pids"
    run = Run(env, tmp_path / "run-1.err")
    wait_for(lambda: "started capture" in run.read() or run.proc.poll() is not None, 300, "cdchub run to start")
    assert run.proc.poll() is None, run.read() + (tmp_path / "run-1.err").read_text()
    children = json.loads(pids_file.read_text())["children"]
    assert set(children) == {"capture", "pollers", "to_crm", "to_kingdee", "to_oa"}, "a handful of processes"

    kingdee = create_engine(settings.kingdee_db.sqlalchemy_url())
    crm = ZohoSim(env["CDCHUB_ZOHO__API_DOMAIN"])
    with kingdee.connect() as conn:
        audited = {str(r[0]) for r in conn.execute(text(
            'SELECT "FMATERIALID" FROM "T_BD_MATERIAL" WHERE "FDOCUMENTSTATUS" = \'C\''))}
    assert len(audited) >= 10, "the demo database was seeded"
    wait_for(lambda: audited <= set(crm.by_kingdee_id()), 180, "the snapshot's audited materials in the CRM")
    new = insert_material(kingdee, "9.99.0001", "一次性使用麻醉面罩（冒烟测试）", "成人 4#")
    wait_for(lambda: str(new) in crm.by_kingdee_id(), 60, "the inserted material in the CRM")

    os.kill(children["to_crm"], signal.SIGKILL)  # a dataflow that dies is restarted and resumes
    wait_for(lambda: json.loads(pids_file.read_text())["children"]["to_crm"] != children["to_crm"], 60,
             "the dataflow restarted")
    later = insert_material(kingdee, "9.99.0002", "一次性使用呼吸过滤器（冒烟测试）", "成人")
    wait_for(lambda: str(later) in crm.by_kingdee_id(), 90, "a material after the restart in the CRM")
    assert "to_crm exited with code -9; restarted" in run.read()
    children = json.loads(pids_file.read_text())["children"]
    kingdee.dispose()

    second = subprocess.run([sys.executable, "-m", "cdchub.cli", "run"], cwd=PROJECT_ROOT, timeout=300,
                            env={**os.environ, **env}, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert second.returncode == 2 and "another `cdchub run`" in second.stderr, second.stderr[-2000:]
    assert f"capture (pid {children['capture']})" in second.stderr

    letters = dead_letters(settings)
    print("dead-letter topics", letters)
    assert len(letters) >= 10 and set(letters.values()) == {0}, f"a clean start has no dead letter: {letters}"

    before = children_of(run.proc.pid)
    assert len(before) == len(children)
    run.close_output()  # `cdchub run | tee run.log`, and the tee is gone
    run.proc.send_signal(signal.SIGINT)
    assert run.proc.wait(90) == 0
    assert not children_of(run.proc.pid) and not any(alive(p) for p in before)
    assert not pids_file.exists()

    # a second start resumes where the first stopped — started from the background of a script (SIGINT ignored),
    # which Ctrl-C must still stop, children included
    crm_writes = sum(1 for r in crm.requests() if r["method"] in ("POST", "PUT") and "/crm/" in r["path"])
    again = Run(env, tmp_path / "run-2.err", sigint_ignored=True)
    wait_for(lambda: "started capture" in again.read() or again.proc.poll() is not None, 120, "the second start")
    assert again.proc.poll() is None, again.read() + (tmp_path / "run-2.err").read_text()
    wait_for(lambda: len(children_of(again.proc.pid)) == len(children), 30, "its children")
    kingdee = create_engine(settings.kingdee_db.sqlalchemy_url())
    resumed = insert_material(kingdee, "9.99.0003", "一次性使用吸痰管（冒烟测试）", "F12")
    kingdee.dispose()
    wait_for(lambda: str(resumed) in crm.by_kingdee_id(), 90, "a material after the second start in the CRM")
    assert sum(1 for r in crm.requests() if r["method"] in ("POST", "PUT") and "/crm/" in r["path"]) \
        == crm_writes + 1, "resumed: nothing re-sent, only the new material written"
    capture_log = (tmp_path / "run-logs" / "capture.log").read_text()
    assert capture_log.count("created slot") == 1 and capture_log.count("streaming from slot") >= 2
    running = children_of(again.proc.pid)
    again.proc.send_signal(signal.SIGINT)
    assert again.proc.wait(60) == 0, again.read()
    assert not any(alive(p) for p in running)
    again.close_output()

    # killing a supervisor with -9 takes its children down too
    third = Run(env, tmp_path / "run-3.err")
    wait_for(lambda: "started capture" in third.read() or third.proc.poll() is not None, 120, "the third start")
    assert third.proc.poll() is None, third.read() + (tmp_path / "run-3.err").read_text()
    wait_for(lambda: len(children_of(third.proc.pid)) == len(children), 30, "its children")
    orphans = children_of(third.proc.pid)
    third.proc.kill()
    third.proc.wait(10)
    wait_for(lambda: not any(alive(p) for p in orphans), 60, "the children to end with it")
    third.close_output()
