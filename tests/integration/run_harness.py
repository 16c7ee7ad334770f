"""``cdchub run`` itself, as a new user starts it, in an installation of its own on the shared stack: its own
simulators (other ports, their own folder), database, slot, topic prefix and state dir, so a developer's
``make run`` is never touched.  Used by the smoke test and the acceptance suite."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from confluent_kafka.admin import AdminClient
from sqlalchemy import create_engine

from connectors.kingdee.settings import KingdeeDbSettings
from connectors.settings import Settings
from core.settings import PROJECT_ROOT
from infra.simulators.common.process import free_port
from infra.stack.simulators import SIMULATORS, Simulator
from tests.integration.harness import IsolatedEnv, ZohoSim, drop_database


class Run:
    """One ``cdchub run`` with its stdout on a pipe the test reads (and can close).  Every run started is killed,
    children included, when its installation is removed (a failed test leaves no process behind)."""

    started: list[Run] = []

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
        Run.started.append(self)

    def kill(self) -> None:
        """Ends the supervisor and every child of it at once (nothing graceful: a test's cleanup)."""
        children = children_of(self.proc.pid)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        for pid in children:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.read_fd >= 0:
            self.close_output()

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

    admin = AdminClient(settings.kafka.client_config())
    prefix = settings.kafka.topic("cdchub.dlq.")
    topics = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix)]
    consumer = Consumer(settings.kafka.client_config({"group.id": f"s-{uuid.uuid4()}"}))
    counts = {}
    for topic in topics:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        counts[topic] = sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                            for p in meta.partitions)
    consumer.close()
    return counts


@contextmanager
def run_installation(stack: Settings, tmp_path: Path) -> Iterator[tuple[dict[str, str], Settings]]:
    """The environment of a ``cdchub run`` of its own, and its settings; everything it made is removed after."""
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
        # notifications on, as by default, on a port of this test's own
        "CDCHUB_ZOHO__WATCH_NOTIFY_URL": f"http://127.0.0.1:{free_port()}/zoho/notify",
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
        while Run.started:
            Run.started.pop().kill()
        for spec in SIMULATORS:
            Simulator(settings, spec).down()
        IsolatedEnv(settings, env, tmp_path, create_engine(settings.kingdee_db.sqlalchemy_url()),
                    ZohoSim(base["zoho"])).close()
        drop_database(stack, database, settings.kingdee_db.slot)


