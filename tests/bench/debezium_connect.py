"""Debezium's PostgreSQL connector in a Kafka Connect standalone worker, for ``make bench-debezium``.

Fetch: Kafka Connect 4.1.1 (the stack's Kafka version) into ``.cache/debezium/connect`` and the connector
``io.debezium:debezium-connector-postgres`` into ``.cache/debezium/plugins/debezium-connector-postgres`` (a plugin
directory, loaded in its own class loader), with ``mvn dependency:copy-dependencies`` as the stack fetches Kafka;
re-fetched only when the coordinates below change.

Run: one JVM (``ConnectStandalone worker.properties connector.properties``), its REST API on a free local port, the
database password passed in the environment (Connect's ``EnvVarConfigProvider``), never written to a file.  Every
setting is in ``worker_properties``/``connector_properties`` and explained in docs/bench-debezium.md.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx

from connectors.settings import Settings
from core.settings import CACHE_DIR
from infra.stack.java import system_java
from infra.stack.maven import copy_dependencies

log = logging.getLogger(__name__)

KAFKA_VERSION = "4.1.1"  # infra/kafka/pom.xml
LOG4J_VERSION = "2.24.3"  # as the broker's; the SLF4J 1.x binding, as Connect 4.1.1 resolves slf4j-api 1.7.36
DEBEZIUM_VERSION = "3.6.1.Final"
HOME = CACHE_DIR / "debezium"
CONNECT_LIBS = HOME / "connect"
PLUGINS = HOME / "plugins"
CONNECTOR_DIR = PLUGINS / "debezium-connector-postgres"
MAIN_CLASS = "org.apache.kafka.connect.cli.ConnectStandalone"
HEAP = "512m"
CONNECTOR_NAME = "bench-debezium"
PASSWORD_ENV = "CDCHUB_BENCH_DEBEZIUM_PG_PASSWORD"

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>
  <groupId>io.cdchub.bench</groupId><artifactId>{artifact}</artifactId><version>1</version><packaging>pom</packaging>
  <dependencies>{dependencies}</dependencies>
</project>
"""
_DEP = "<dependency><groupId>{}</groupId><artifactId>{}</artifactId><version>{}</version>{}</dependency>"
#: The worker provides Connect's API and the Kafka clients; the plugin directory must not carry its own.
_NO_KAFKA = ("<exclusions><exclusion><groupId>org.apache.kafka</groupId><artifactId>*</artifactId></exclusion>"
             "</exclusions>")
CONNECT_POM = _POM.format(artifact="connect", dependencies="".join([
    _DEP.format("org.apache.kafka", "connect-runtime", KAFKA_VERSION, ""),
    _DEP.format("org.apache.kafka", "connect-json", KAFKA_VERSION, ""),
    _DEP.format("org.apache.logging.log4j", "log4j-core", LOG4J_VERSION, ""),
    _DEP.format("org.apache.logging.log4j", "log4j-slf4j-impl", LOG4J_VERSION, ""),
]))
CONNECTOR_POM = _POM.format(artifact="debezium-postgres", dependencies=_DEP.format(
    "io.debezium", "debezium-connector-postgres", DEBEZIUM_VERSION, _NO_KAFKA))

#: The worker's log (its stdout, to connect.log): warnings, Debezium's own INFO lines, and the effective producer
#: and connector settings as Kafka logs them at start — what the comparison ran with, to check.
LOG4J2 = """status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stdout.ref = STDOUT
logger.debezium.name = io.debezium
logger.debezium.level = INFO
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = INFO
"""

#: What the comparison tunes (issue 16), everything else is a default; docs/bench-debezium.md says why.
TUNED_CONNECTOR = {"max.batch.size": "8192", "max.queue.size": "32768", "poll.interval.ms": "50"}
TUNED_PRODUCER = {"producer.batch.size": "524288", "producer.linger.ms": "10", "producer.compression.type": "lz4"}


def fetch() -> None:
    """Kafka Connect and the connector from Maven Central into ``.cache/debezium`` (once per coordinates)."""
    system_java(17)
    for pom_text, dest in ((CONNECT_POM, CONNECT_LIBS), (CONNECTOR_POM, CONNECTOR_DIR)):
        stamp = dest / ".pom.sha256"
        want = hashlib.sha256(pom_text.encode()).hexdigest()
        if stamp.exists() and stamp.read_text().strip() == want:
            continue
        HOME.mkdir(parents=True, exist_ok=True)
        pom = HOME / f"{dest.name}.pom.xml"
        pom.write_text(pom_text)
        log.info("debezium bench: fetching %s from Maven Central", dest.name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        copy_dependencies(pom, dest, f"{dest.name} jars")
        stamp.write_text(want + "\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def worker_properties(settings: Settings, offsets: Path, rest_port: int) -> dict[str, str]:
    return {
        "bootstrap.servers": settings.kafka.bootstrap_servers,
        "key.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "key.converter.schemas.enable": "false",
        "value.converter.schemas.enable": "false",
        "offset.storage.file.filename": str(offsets),
        "listeners": f"http://127.0.0.1:{rest_port}",
        "plugin.path": str(PLUGINS),
        "plugin.discovery": "service_load",  # the plugin's jars list their classes: no class-path scan at start
        "config.providers": "env",
        "config.providers.env.class": "org.apache.kafka.common.config.provider.EnvVarConfigProvider",
        **TUNED_PRODUCER,
    }


def connector_properties(settings: Settings, *, database: str, slot: str, publication: str, topic_prefix: str,
                         tables: list[str]) -> dict[str, str]:
    db = settings.kingdee_db
    return {
        "name": CONNECTOR_NAME,
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "tasks.max": "1",
        "database.hostname": db.host,
        "database.port": str(db.port),
        "database.user": db.user,
        "database.password": f"${{env:{PASSWORD_ENV}}}",
        "database.dbname": database,
        "topic.prefix": topic_prefix,
        "plugin.name": "pgoutput",
        "slot.name": slot,
        "publication.name": publication,
        "publication.autocreate.mode": "disabled",  # the bench creates it, for the captured tables, before the slot
        "table.include.list": ",".join(f"public\\.{t}" for t in tables),
        "snapshot.mode": "no_data",  # streaming only: the tables are empty at start, as for cdchub
        # Connect creates a topic for any other table that gets an event (the broker auto-creates nothing)
        "topic.creation.default.replication.factor": str(settings.kafka.replication_factor or -1),  # -1: broker's
        "topic.creation.default.partitions": str(settings.kafka.topic_partitions),
        **TUNED_CONNECTOR,
    }


def _properties_text(props: dict[str, str]) -> str:
    # a properties file treats backslash as an escape: the regex's \. is written \\.
    return "".join(f"{k}={v.replace(chr(92), chr(92) * 2)}\n" for k, v in props.items())


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the bench dies, so no JVM outlives it (Linux prctl)."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class ConnectWorker:
    """One Connect standalone JVM running the Debezium connector; a context manager that always stops it."""

    settings: Settings
    workdir: Path
    connector: dict[str, str]
    rest_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / "connect.log"

    def start(self) -> ConnectWorker:
        fetch()
        self.workdir.mkdir(parents=True, exist_ok=True)
        worker = self.workdir / "worker.properties"
        worker.write_text(_properties_text(worker_properties(self.settings, self.workdir / "offsets.dat",
                                                              self.rest_port)))
        log4j2 = self.workdir / "log4j2.properties"
        log4j2.write_text(LOG4J2)
        connector = self.workdir / "connector.properties"
        connector.write_text(_properties_text(self.connector))
        argv = [shutil.which("java") or "java", f"-Xmx{HEAP}", "-XX:+UseG1GC", "-Djava.awt.headless=true",
                f"-Dlog4j2.configurationFile={log4j2}", "-cp", f"{CONNECT_LIBS}/*", MAIN_CLASS,
                str(worker), str(connector)]
        env = {**os.environ, PASSWORD_ENV: self.settings.kingdee_db.password.get_secret_value()}
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env=env, start_new_session=True, preexec_fn=_die_with_parent)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def task_state(self) -> str:
        """``RUNNING``, ``FAILED`` (with Connect's trace), or what the REST API says while starting."""
        try:
            resp = httpx.get(f"http://127.0.0.1:{self.rest_port}/connectors/{CONNECTOR_NAME}/status", timeout=2)
        except httpx.HTTPError:
            return "NOT ANSWERING"
        if resp.status_code != 200:
            return f"HTTP {resp.status_code}"
        status = resp.json()
        tasks = status.get("tasks") or []
        for part in [status.get("connector", {}), *tasks]:
            if part.get("state") == "FAILED":
                return "FAILED: " + str(part.get("trace", ""))[:2000]
        return tasks[0]["state"] if tasks else "NO TASK"

    def wait_running(self, timeout_s: float = 180.0) -> None:
        deadline = time.monotonic() + timeout_s
        state = ""
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"Kafka Connect exited; see {self.log_path}")
            state = self.task_state()
            if state == "RUNNING":
                return
            if state.startswith("FAILED"):
                raise RuntimeError(f"the Debezium connector failed ({self.log_path}): {state}")
            time.sleep(0.5)
        raise RuntimeError(f"the Debezium task is not running after {timeout_s:.0f}s (last: {state})")

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM (Connect stops the task and flushes offsets), SIGKILL if it does not exit in time."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def __enter__(self) -> ConnectWorker:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
