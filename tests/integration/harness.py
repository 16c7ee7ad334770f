"""Helpers for integration tests on the real local stack: isolated environments, child processes, waiting."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from sqlalchemy import Engine, create_engine

from connectors.kingdee.client import KingdeeApiCredentials, KingdeeWebApiClient
from connectors.kingdee.models import create_schema
from connectors.kingdee.settings import KingdeeDbSettings
from connectors.settings import Settings
from connectors.zoho.settings import ZohoSettings
from core.settings import PROJECT_ROOT, KafkaSettings
from infra.simulators.common.process import SimulatorProcess
from infra.simulators.kingdee.demo_seed import seed

T = TypeVar("T")


def wait_for(condition: Callable[[], T], timeout_s: float = 60.0, what: str = "condition",
             interval_s: float = 0.1) -> T:
    """Poll ``condition`` until it returns something truthy; fail with ``what`` after the timeout."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what} (last: {str(last)[:500]})")


def at_least(n: int, items: Callable[[], list[T]]) -> Callable[[], list[T] | None]:
    """A condition for ``wait_for``: the list once it has ``n`` items."""

    def check() -> list[T] | None:
        found = items()
        return found if len(found) >= n else None

    return check


@dataclass
class ChildProcess:
    """A cdchub command in its own process (so tests can SIGKILL it like a crash)."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ChildProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cdchub.cli", *self.argv], stdout=log, stderr=subprocess.STDOUT,
            cwd=PROJECT_ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env}, start_new_session=True,
        )
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: a crash at whatever point the process is."""
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def stop(self, timeout_s: float = 30.0) -> int | None:
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return None if self.proc is None else self.proc.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class ZohoSim:
    """The ZOHO simulator's admin API (reset, faults, request log, records)."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=10)

    def reset(self) -> None:
        self.http.post("/__sim/reset").raise_for_status()

    def records(self, module: str = "Products") -> list[dict[str, Any]]:
        resp = self.http.get(f"/__sim/records/{module}")
        resp.raise_for_status()
        body = resp.json()
        return body["records"] if isinstance(body, dict) else body

    def by_kingdee_id(self, module: str = "Products") -> dict[str, dict[str, Any]]:
        return {r["Kingdee_ID"]: r for r in self.records(module) if r.get("Kingdee_ID")}

    def requests(self) -> list[dict[str, Any]]:
        resp = self.http.get("/__sim/requests")
        resp.raise_for_status()
        body = resp.json()
        return body["requests"] if isinstance(body, dict) else body

    def fault(self, **rule: Any) -> None:
        self.http.post("/__sim/faults", json=rule).raise_for_status()

    def clear_faults(self) -> None:
        self.http.delete("/__sim/faults").raise_for_status()

    def expire_tokens(self) -> None:
        self.http.post("/__sim/expire-tokens").raise_for_status()

    def search_lag_s(self, seconds: float | None = None) -> float:
        """How long ``/search`` trails writes; set it when given (``/__sim/reset`` restores the flag's value)."""
        if seconds is None:
            resp = self.http.get("/__sim/limits")
        else:
            resp = self.http.put("/__sim/limits", json={"search_lag_s": seconds})
        resp.raise_for_status()
        return float(resp.json()["search_lag_s"])

    def human_create(self, module: str, data: dict[str, Any], user: dict[str, str] | None = None) -> str:
        """Create a record as a human CRM user (``user``: ``{"id", "name", "email"}``, else the simulator's sales
        rep), who becomes its owner; returns its id."""
        resp = self.http.post(f"/__sim/records/{module}", json={"data": data, **({"user": user} if user else {})})
        resp.raise_for_status()
        return str(resp.json()["data"][0]["details"]["id"])

    def human_edit(self, module: str, record_id: str, data: dict[str, Any]) -> None:
        self.http.patch(f"/__sim/records/{module}/{record_id}", json={"data": data}).raise_for_status()

    def human_delete(self, module: str, record_id: str) -> None:
        self.http.delete(f"/__sim/records/{module}/{record_id}").raise_for_status()


class KingdeeSim:
    """The Kingdee WebAPI simulator's admin API (request log), and its WebAPI as an ERP clerk uses it."""

    def __init__(self, base_url: str, credentials: KingdeeApiCredentials | None = None) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=10)
        self.credentials = credentials

    def clerk(self) -> KingdeeWebApiClient:
        """A WebAPI session of the clerk's own (Save/Submit/Audit/UnAudit/Delete as the ERP's users do)."""
        assert self.credentials is not None, "started without WebAPI credentials"
        return KingdeeWebApiClient(self.credentials, timeout_s=10)

    def requests(self) -> list[dict[str, Any]]:
        resp = self.http.get("/__sim/requests")
        resp.raise_for_status()
        return list(resp.json()["requests"])

    def calls(self, service: str) -> int:
        return sum(1 for r in self.requests() if service.lower() in r["path"].lower())


def holds_for(condition: Callable[[], bool], seconds: float, what: str | Callable[[], str]) -> None:
    """A quiet-period check: ``condition`` stays true for the whole window (absence can only be observed over
    time); fails at the first moment it does not (``what`` may be a function: a message made at that moment)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert condition(), f"{what() if callable(what) else what} stopped holding"
        time.sleep(0.1)


#: The capture modes a test runs in when parametrized with them (``@pytest.mark.parametrize("env", CAPTURE_MODES,
#: indirect=True)``): the write-ahead log, the database polled by query, the WebAPI polled (docs/capture-modes.md).
CAPTURE_MODES = ["log", "query", "webapi"]


@dataclass
class IsolatedEnv:
    """One test's isolated slice of the shared stack: own topics (prefix), slot, state dir, empty Kingdee DB."""

    settings: Settings
    env: dict[str, str]
    tmp: Path
    kingdee: Engine
    zoho: ZohoSim
    children: list[ChildProcess] = field(default_factory=list)
    simulators: list[Any] = field(default_factory=list)
    #: How the capture reads Kingdee: ``log`` (the write-ahead log), ``query`` (the database by FMODIFYDATE) or
    #: ``webapi`` (the WebAPI of a Kingdee simulator on this test's database); polled fast in tests.
    capture_mode: str = "log"
    kingdee_api: KingdeeSim | None = None

    @classmethod
    def create(cls, base: Settings, tmp: Path, kingdee: Engine, zoho: ZohoSim) -> IsolatedEnv:
        tag = uuid.uuid4().hex[:8]
        state = tmp / "state"
        settings = base.model_copy(update={
            "kafka": KafkaSettings(**{**base.kafka.model_dump(), "topic_prefix": f"t{tag}."}),
            "kingdee_db": KingdeeDbSettings(**{**base.kingdee_db.model_dump(), "slot": f"t_{tag}"}),
            "state_dir": state,
            "capture_heartbeat_s": 1.0,
        })
        env = {
            "CDCHUB_KAFKA__TOPIC_PREFIX": settings.kafka.topic_prefix,
            "CDCHUB_KINGDEE_DB__SLOT": settings.kingdee_db.slot,
            "CDCHUB_STATE_DIR": str(state),
            "CDCHUB_CAPTURE_HEARTBEAT_S": "1.0",
            # pollers poll (every 0.3 s, see poller()); tests of notifications set a notify URL of their own
            "CDCHUB_ZOHO__WATCH_NOTIFY_URL": "",
        }
        return cls(settings, env, tmp, kingdee, zoho)

    def spawn(self, name: str, *argv: str) -> ChildProcess:
        child = ChildProcess(name, list(argv), self.env, self.tmp / f"{name}.log").start()
        self.children.append(child)
        return child

    def capture(self) -> ChildProcess:
        if self.capture_mode != "log":
            self.env.update({"CDCHUB_CAPTURE__MODE": self.capture_mode, "CDCHUB_CAPTURE__INTERVAL_S": "0.2",
                             "CDCHUB_CAPTURE__KEYSET_INTERVAL_S": "1", "CDCHUB_CAPTURE__MARGIN_S": "2"})
        if self.capture_mode == "webapi" and self.kingdee_api is None:
            self.start_kingdee_api()
        return self.spawn(f"capture-{len(self.children)}", "capture")

    def capture_acknowledged(self, lsn: int, timeout_s: float = 30.0) -> None:
        """Wait until the capture has acknowledged the transaction at ``lsn`` (its event's ``source.lsn``): Kafka
        has it and the capture's position is past it, so a crash now re-sends nothing up to it."""
        stats = self.settings.state_dir / "capture-stats.json"
        wait_for(lambda: stats.exists() and json.loads(stats.read_text()).get("acked_lsn", 0) >= lsn, timeout_s,
                 f"the capture to acknowledge LSN {lsn}", 0.1)

    def flow(self, name: str = "materials") -> ChildProcess:
        return self.spawn(f"flow-{name}-{len(self.children)}", "flow", name)

    def topic(self, name: str) -> str:
        return self.settings.kafka.topic(name)

    def read_topic(self, name: str, timeout_s: float = 30.0) -> list[tuple[bytes | None, bytes | None]]:
        """Every message of a topic from the beginning to its end as of now (key, value); [] if the topic does not
        exist.  Fails — never returns a partial list — when the end is not reached within ``timeout_s``."""
        consumer = Consumer({**self.settings.kafka.client_config(),
                             "group.id": f"test-{uuid.uuid4().hex}", "enable.auto.commit": False,
                             "auto.offset.reset": "earliest"})
        try:
            topic = self.topic(name)
            meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
            if meta is None or meta.error is not None:
                return []
            parts = [TopicPartition(topic, p) for p in meta.partitions]
            # a topic created a moment ago may have no leader yet: wait for one (an error after the timeout)
            ends = wait_for(lambda: _end_offsets(consumer, parts), timeout_s, f"the end offsets of {topic}")
            consumer.assign([TopicPartition(topic, p.partition, 0) for p in parts])
            out: list[tuple[bytes | None, bytes | None]] = []
            remaining = {p: end for p, end in ends.items() if end > 0}
            deadline = time.monotonic() + timeout_s
            while remaining:
                if time.monotonic() > deadline:
                    raise AssertionError(f"read {len(out)} messages of {topic} but not to its end within "
                                         f"{timeout_s:.0f}s (partitions left: {remaining})")
                msg = consumer.poll(0.2)
                if msg is None:
                    continue
                if msg.error():
                    if msg.error().fatal():
                        raise KafkaException(msg.error())
                    continue
                out.append((msg.key(), msg.value()))
                if msg.offset() + 1 >= remaining.get(msg.partition(), 0):
                    remaining.pop(msg.partition(), None)
            return out
        finally:
            consumer.close()

    def start_kingdee_api(self) -> KingdeeSim:
        """A Kingdee WebAPI simulator writing into this test's Kingdee database; children are configured for it
        (one per test: a second call returns the first)."""
        if self.kingdee_api is not None:
            return self.kingdee_api
        from infra.simulators.kingdee.signing import make_app_id

        creds = {"acct-id": uuid.uuid4().hex[:14], "user": "cdchub_api", "password": uuid.uuid4().hex,
                 "app-id": make_app_id("224055", os.urandom(24)), "app-secret": uuid.uuid4().hex}
        args = ["--state-dir", str(self.tmp / "kingdee-sim"),
                "--database-url", self.settings.kingdee_db.sqlalchemy_url()]
        for flag, value in creds.items():
            args += [f"--{flag}", value]
        proc = SimulatorProcess("infra.simulators.kingdee", args=args, log_path=self.tmp / "kingdee-sim.log").start()
        self.simulators.append(proc)
        self.kingdee_api = KingdeeSim(proc.base_url, KingdeeApiCredentials(
            f"{proc.base_url}/K3Cloud", creds["acct-id"], creds["user"], creds["app-id"], creds["app-secret"]))
        self.env.update({
            "CDCHUB_KINGDEE_API__BASE_URL": f"{proc.base_url}/K3Cloud", "CDCHUB_KINGDEE_API__ACCT_ID": creds["acct-id"],
            "CDCHUB_KINGDEE_API__USER": creds["user"], "CDCHUB_KINGDEE_API__APP_ID": creds["app-id"],
            "CDCHUB_KINGDEE_API__APP_SECRET": creds["app-secret"],
        })
        return self.kingdee_api

    def poller(self, modules: str = '["Products"]') -> ChildProcess:
        self.env.update({"CDCHUB_ZOHO__POLL_INTERVAL_S": "0.3", "CDCHUB_ZOHO__POLL_MODULES": modules})
        return self.spawn(f"poller-{len(self.children)}", "poll-zoho")

    def dead_letters(self, flow: str) -> list[dict[str, Any]]:
        return [json.loads(v) for _, v in self.read_topic(f"cdchub.dlq.{flow}") if v]

    def close(self) -> None:
        for child in self.children:
            child.stop(10)
        for sim in self.simulators:
            sim.stop()
        admin = AdminClient(self.settings.kafka.client_config())
        ours = [t for t in admin.list_topics(timeout=10).topics if t.startswith(self.settings.kafka.topic_prefix)]
        if ours:
            for fut in admin.delete_topics(ours).values():
                with contextlib.suppress(Exception):  # cleanup is best effort
                    fut.result(10)
        registry = httpx.Client(**self.settings.registry.httpx_options())
        for topic in ours:  # their value subjects too, soft then permanently
            with contextlib.suppress(Exception):
                registry.delete(f"/subjects/{topic}-value")
                registry.delete(f"/subjects/{topic}-value", params={"permanent": "true"})
        registry.close()


def _end_offsets(consumer: Consumer, parts: list[TopicPartition]) -> dict[int, int] | None:
    try:
        return {p.partition: consumer.get_watermark_offsets(p, timeout=5)[1] for p in parts}
    except KafkaException:
        return None


@contextmanager
def isolated_env(stack: Settings, sim: ZohoSim, sim_base: str, tmp: Path,
                 capture_mode: str = "log") -> Iterator[IsolatedEnv]:
    """A fresh Kingdee database (with the schema), slot, topic prefix and state dir on the shared stack; all of it
    is removed afterwards."""
    database = f"kingdee_t{uuid.uuid4().hex[:8]}"
    admin = create_engine(stack.kingdee_db.sqlalchemy_url().rsplit("/", 1)[0] + "/postgres",
                          isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{database}" ENCODING \'UTF8\' TEMPLATE template0')
    base = stack.model_copy(update={
        "kingdee_db": KingdeeDbSettings(**{**stack.kingdee_db.model_dump(), "database": database}),
        "zoho": ZohoSettings(**{**stack.zoho.model_dump(), "accounts_url": sim_base, "api_domain": sim_base}),
    })
    kingdee = create_engine(base.kingdee_db.sqlalchemy_url(), future=True)
    create_schema(kingdee)
    env = IsolatedEnv.create(base, tmp, kingdee, sim)
    env.capture_mode = capture_mode
    env.env.update({
        "CDCHUB_KINGDEE_DB__DATABASE": database,
        "CDCHUB_ZOHO__ACCOUNTS_URL": sim_base,
        "CDCHUB_ZOHO__API_DOMAIN": sim_base,
    })
    try:
        yield env
    finally:
        env.close()
        kingdee.dispose()
        admin.dispose()
        drop_database(stack, database, env.settings.kingdee_db.slot)


@contextmanager
def kingdee_with_webapi(stack: Settings, state: Path, prefix: str, *sim_args: str,
                        **seed_args: Any) -> Iterator[tuple[Engine, KingdeeApiCredentials, SimulatorProcess]]:
    """A throwaway Kingdee database (schema and seeded demo data) and a Kingdee WebAPI simulator on it, on a free
    port; both removed after."""
    from infra.simulators.kingdee.signing import make_app_id

    database = f"{prefix}_{uuid.uuid4().hex[:8]}"
    server = stack.kingdee_db.sqlalchemy_url().rsplit("/", 1)[0]
    admin = create_engine(server + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE \"{database}\" ENCODING 'UTF8' TEMPLATE template0")
    engine = create_engine(f"{server}/{database}", future=True)
    create_schema(engine)
    seed(engine, **seed_args)
    creds = KingdeeApiCredentials("", "6650a1b2c3d4e5", "cdchub_api", make_app_id("224055", os.urandom(24)),
                                  uuid.uuid4().hex)  # fmt: skip
    sim = SimulatorProcess(
        "infra.simulators.kingdee",
        args=["--state-dir", str(state), "--database-url", f"{server}/{database}", "--acct-id", creds.acct_id,
              "--user", creds.user, "--password", "pw", "--app-id", creds.app_id, "--app-secret", creds.app_secret,
              *sim_args],
        log_path=state / "sim.log",
    ).start()  # fmt: skip
    try:
        yield engine, KingdeeApiCredentials(sim.base_url + "/K3Cloud", creds.acct_id, creds.user, creds.app_id,
                                            creds.app_secret), sim
    finally:
        sim.stop()
        engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.dispose()


def drop_database(stack: Settings, database: str, slot: str) -> None:
    """Release and drop the replication slot, then drop the database (a test's Kingdee database)."""
    admin = create_engine(stack.kingdee_db.sqlalchemy_url().rsplit("/", 1)[0] + "/postgres",
                          isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(
                "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = %s AND active",
                (slot,))
            wait_for(lambda: conn.exec_driver_sql(
                "SELECT count(*) FROM pg_replication_slots WHERE slot_name = %s AND active", (slot,)).scalar() == 0,
                10, "slot released")
            conn.exec_driver_sql(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s", (slot,))
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    finally:
        admin.dispose()
