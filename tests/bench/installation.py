"""One isolated demo installation on the shared local stack, and the processes benchmarks run in it.

Shared by ``make bench-runtime`` and ``make chaos``: its own Kingdee database, simulators, topic prefix and state
dir, so a developer's ``make run`` is never touched; CPU and RSS of processes from ``/proc``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine

from connectors.kingdee import models as m
from connectors.kingdee.settings import KingdeeDbSettings
from connectors.settings import Settings
from core.settings import CACHE_DIR, PROJECT_ROOT
from infra.simulators.common.process import SimulatorProcess, free_port
from infra.simulators.kingdee.signing import make_app_id
from tests.integration.harness import IsolatedEnv, ZohoSim, drop_database, wait_for

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def broker_pid() -> int:
    return int((CACHE_DIR / "run" / "kafka.pid").read_text().strip())


def broker_connections(port: int) -> int:
    out = subprocess.run(["ss", "-tn", "state", "established", f"( sport = :{port} )"], capture_output=True,
                         text=True).stdout
    return max(0, len(out.strip().splitlines()) - 1)


@dataclass
class Installation:
    """One isolated demo installation on the shared stack: database, four simulators, topics, state."""

    base: Settings
    tmp: Path
    #: Start the four simulators here (True), or leave them to `cdchub run` (False: ports and folder in the env).
    own_sims: bool = True
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    sims: dict[str, SimulatorProcess] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)

    @property
    def database(self) -> str:
        return f"kingdee_b{self.tag}"

    def settings(self) -> Settings:
        ports = {n: int(u.rsplit(":", 1)[1]) for n, u in self.urls.items()}
        return self.base.model_copy(update={
            "simulators_dir": self.tmp / "simulators",
            **({} if self.own_sims or not ports else {
                "zoho_simulator_port": ports["zoho"], "kingdee_webapi_simulator_port": ports["kingdee"],
                "weaver_simulator_port": ports["weaver"], "huilianyi_simulator_port": ports["huilianyi"]}),
            "state_dir": self.tmp / "state",
            "kafka": self.base.kafka.model_copy(update={"topic_prefix": f"b{self.tag}."}),
            "kingdee_db": KingdeeDbSettings(**{**self.base.kingdee_db.model_dump(), "database": self.database,
                                               "slot": f"b_{self.tag}"}),
        })

    def start(self, demo: bool = True) -> Installation:
        """Database (with the demo data, or only the tables), simulators and the environment of its processes."""
        from cdchub.kingdee_db import prepare

        self.tmp.mkdir(parents=True, exist_ok=True)
        admin = create_engine(self.base.kingdee_db.sqlalchemy_url().rsplit("/", 1)[0] + "/postgres",
                              isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{self.database}" ENCODING \'UTF8\' TEMPLATE template0')
        admin.dispose()
        settings = self.settings()
        if not self.own_sims:  # `cdchub run` starts them (the stack's way) and seeds the database
            self.urls = {name: f"http://127.0.0.1:{free_port()}" for name in ("zoho", "kingdee", "weaver", "huilianyi")}
            ports = {n: u.rsplit(":", 1)[1] for n, u in self.urls.items()}
            self.env = {**self._common_env(), "CDCHUB_SIMULATORS_DIR": str(self.tmp / "simulators"),
                        "CDCHUB_ZOHO_SIMULATOR_PORT": ports["zoho"],
                        "CDCHUB_KINGDEE_WEBAPI_SIMULATOR_PORT": ports["kingdee"],
                        "CDCHUB_WEAVER_SIMULATOR_PORT": ports["weaver"],
                        "CDCHUB_HUILIANYI_SIMULATOR_PORT": ports["huilianyi"]}
            return self
        if demo:
            prepare(settings)
        else:
            m.create_schema(create_engine(settings.kingdee_db.sqlalchemy_url()))
        creds = {"acct-id": uuid.uuid4().hex[:14], "user": "cdchub_api", "password": uuid.uuid4().hex,
                 "app-id": make_app_id("224055", os.urandom(24)), "app-secret": uuid.uuid4().hex}
        kingdee_args = ["--database-url", settings.kingdee_db.sqlalchemy_url()]
        for flag, value in creds.items():
            kingdee_args += [f"--{flag}", value]
        for name, extra in (("zoho", []), ("kingdee", kingdee_args), ("weaver", []), ("huilianyi", [])):
            self.sims[name] = SimulatorProcess(f"infra.simulators.{name}", args=[
                "--state-dir", str(self.tmp / f"sim-{name}"), *extra], log_path=self.tmp / f"sim-{name}.log").start()
        self.urls = {n: sim.base_url for n, sim in self.sims.items()}
        self.env = {**self._common_env(),
                    "CDCHUB_KINGDEE_API__ACCT_ID": creds["acct-id"], "CDCHUB_KINGDEE_API__USER": creds["user"],
                    "CDCHUB_KINGDEE_API__APP_ID": creds["app-id"],
                    "CDCHUB_KINGDEE_API__APP_SECRET": creds["app-secret"]}
        return self

    def _common_env(self) -> dict[str, str]:
        settings = self.settings()
        url = self.urls
        return {
            "CDCHUB_STATE_DIR": str(settings.state_dir), "CDCHUB_RUN_LOG_DIR": str(self.tmp / "run-logs"),
            "CDCHUB_KAFKA__TOPIC_PREFIX": settings.kafka.topic_prefix,
            "CDCHUB_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
            **({"CDCHUB_KAFKA__REPLICATION_FACTOR": str(settings.kafka.replication_factor)}
               if settings.kafka.replication_factor is not None else {}),
            **({"CDCHUB_KAFKA__MIN_INSYNC_REPLICAS": str(settings.kafka.min_insync_replicas)}
               if settings.kafka.min_insync_replicas is not None else {}),
            "CDCHUB_KINGDEE_DB__DATABASE": self.database, "CDCHUB_KINGDEE_DB__SLOT": settings.kingdee_db.slot,
            "CDCHUB_ZOHO__ACCOUNTS_URL": url["zoho"], "CDCHUB_ZOHO__API_DOMAIN": url["zoho"],
            "CDCHUB_KINGDEE_API__BASE_URL": f"{url['kingdee']}/K3Cloud",
            "CDCHUB_WEAVER__BASE_URL": url["weaver"], "CDCHUB_HUILIANYI__BASE_URL": url["huilianyi"],
            "CDCHUB_ZOHO__POLL_INTERVAL_S": "10", "PYTHONUNBUFFERED": "1",
            "CDCHUB_ZOHO__WATCH_NOTIFY_URL": f"http://127.0.0.1:{free_port()}/zoho/notify",
        }

    @property
    def crm(self) -> ZohoSim:
        return ZohoSim(self.urls["zoho"])

    def token_requests(self) -> tuple[int, int]:
        """(tokens minted, refreshes refused) by the ZOHO simulator."""
        calls = httpx.get(self.urls["zoho"] + "/__sim/requests", params={"path_regex": "oauth"},
                          timeout=10).json()["requests"]
        return sum(1 for c in calls if c["status"] == 200), sum(1 for c in calls if c["status"] != 200)

    def stop(self) -> None:
        from infra.stack.simulators import SIMULATORS, Simulator

        settings = self.settings()
        for sim in self.sims.values():
            sim.stop()
        if not self.own_sims:
            for spec in SIMULATORS:
                Simulator(settings, spec).down()
        with contextlib.suppress(Exception):
            IsolatedEnv(settings, self.env, self.tmp, create_engine(settings.kingdee_db.sqlalchemy_url()),
                        self.crm).close()
        drop_database(self.base, self.database, settings.kingdee_db.slot)


@dataclass
class Processes:
    """Child processes started with an installation's environment."""

    env: dict[str, str]
    logs: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, command: list[str], cwd: Path = PROJECT_ROOT) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        with (self.logs / f"{name}.log").open("ab") as log:
            self.procs[name] = subprocess.Popen(command, cwd=cwd, env={**os.environ, **self.env}, stdout=log,
                                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                                start_new_session=True)

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs.values() if p.poll() is None]

    def stop(self, timeout_s: float = 30) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + timeout_s
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs = {}


class SupervisedRun:
    """`cdchub run` itself (the main job): its supervisor and the children it starts, with the same interface as
    :class:`Processes` for the measurements."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        with (self.logs / "run.log").open("ab") as log:
            self.proc = subprocess.Popen(cli("run"), cwd=PROJECT_ROOT, env={**os.environ, **self.env}, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        state = Path(self.env["CDCHUB_STATE_DIR"])
        wait_for(lambda: (state / "run.pids").exists() and len(json.loads((state / "run.pids").read_text())
                                                                ["children"]) >= 5, 300, "cdchub run to start", 0.2)

    @property
    def procs(self) -> dict[str, Any]:
        state = Path(self.env["CDCHUB_STATE_DIR"])
        children = json.loads((state / "run.pids").read_text())["children"] if (state / "run.pids").exists() else {}

        @dataclass
        class _Pid:
            pid: int

        assert self.proc is not None
        return {"supervisor (live view)": _Pid(self.proc.pid), **{n: _Pid(int(p)) for n, p in children.items()}}

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs.values()]

    def stop(self, timeout_s: float = 90) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(timeout_s)
        self.proc = None


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "cdchub.cli", *args]


