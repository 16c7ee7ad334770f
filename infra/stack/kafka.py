"""Apache Kafka 4.1.1, one KRaft node (broker + controller), run from Maven Central jars on Java 17.

Install: ``mvn dependency:copy-dependencies`` on ``infra/kafka/pom.xml`` into ``.cache/kafka/libs`` (once).
Storage: ``.cache/kafka/data``, formatted once with ``kafka.tools.StorageTool format --standalone``.
Config: ``.cache/kafka/server.properties``, rewritten from settings on every ``up``.
Topics are NOT auto-created (``auto.create.topics.enable=false``): producing to a missing topic fails, so code
creates its topics explicitly (AdminClient ``create_topics``).
Ready when a confluent-kafka AdminClient ``list_topics`` succeeds.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import shutil
import subprocess
import uuid
from dataclasses import dataclass

from cdchub.settings import Settings
from infra.stack.component import ComponentStatus
from infra.stack.errors import StackError
from infra.stack.java import system_java
from infra.stack.maven import copy_dependencies
from infra.stack.paths import INFRA_DIR, KAFKA_DIR, ensure_dir
from infra.stack.process import Daemon

log = logging.getLogger(__name__)

POM = INFRA_DIR / "kafka" / "pom.xml"
LOG4J2_CONFIG = INFRA_DIR / "kafka" / "log4j2.properties"
LIBS = KAFKA_DIR / "libs"
DATA = KAFKA_DIR / "data"
SERVER_PROPERTIES = KAFKA_DIR / "server.properties"
MAIN_CLASS = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"
LIBS_STAMP = LIBS / ".pom.sha256"  # the jars are re-fetched when infra/kafka/pom.xml changes


def bootstrap_host_port(settings: Settings) -> tuple[str, int]:
    first = settings.kafka.bootstrap_servers.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    return host or "127.0.0.1", int(port)


def server_properties(settings: Settings) -> str:
    host, port = bootstrap_host_port(settings)
    ctrl = settings.kafka.controller_port
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.bootstrap.servers": f"{host}:{ctrl}",
        "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{ctrl}",
        "advertised.listeners": f"PLAINTEXT://{host}:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(DATA),
        "num.partitions": str(settings.kafka.topic_partitions),
        # One node: every internal topic has one replica; fewer internal partitions start faster on 2 cores.
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "5",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "5",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        # Topics are created on purpose (partitions, retention), never by a typo in a producer.
        "auto.create.topics.enable": "false",
    }
    return "".join(f"{k}={v}\n" for k, v in props.items())


def _cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, base64url, no padding (as ``StorageTool random-uuid`` prints)."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):  # Kafka avoids ids that look like CLI flags; so do we
            return cid


@dataclass
class Kafka:
    settings: Settings
    name: str = "kafka"
    requires: tuple[str, ...] = ()

    def _java_cmd(self, main: str, *args: str, heap: str | None = None) -> list[str]:
        jvm = [f"-Xmx{heap}", f"-Xms{heap}", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20"] if heap else []
        return [
            shutil.which("java") or "java",  # checked by system_java() in up()
            *jvm,
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={LOG4J2_CONFIG}",
            "-cp",
            f"{LIBS}/*",
            main,
            *args,
        ]

    def daemon(self) -> Daemon:
        host, port = bootstrap_host_port(self.settings)
        return Daemon(
            name=self.name,
            argv=self._java_cmd(MAIN_CLASS, str(SERVER_PROPERTIES), heap=self.settings.kafka.heap),
            is_ready=self.is_ready,
            marker=str(SERVER_PROPERTIES),
            ports=(port, self.settings.kafka.controller_port),
            ready_timeout_s=120,
            stop_timeout_s=45,
        )

    def is_ready(self) -> bool:
        from confluent_kafka.admin import AdminClient  # heavy import, only when probing

        admin = AdminClient(
            {
                "bootstrap.servers": self.settings.kafka.bootstrap_servers,
                "socket.connection.setup.timeout.ms": 1000,
                "log_level": 0,  # "connection refused" while starting is expected, not worth a log line
            }
        )
        try:
            admin.list_topics(timeout=2)
            return True
        except Exception:  # KafkaException while the broker is not up yet
            return False

    def install(self) -> None:
        system_java(17)
        want = hashlib.sha256(POM.read_bytes()).hexdigest()
        if LIBS_STAMP.exists() and LIBS_STAMP.read_text().strip() == want:
            return
        log.info("kafka: fetching jars from Maven Central into %s", LIBS)
        copy_dependencies(POM, LIBS, "kafka jars")
        LIBS_STAMP.write_text(want + "\n")

    def configure(self) -> None:
        ensure_dir(KAFKA_DIR)
        text = server_properties(self.settings)
        if not SERVER_PROPERTIES.exists() or SERVER_PROPERTIES.read_text() != text:
            SERVER_PROPERTIES.write_text(text)
        if (DATA / "meta.properties").exists():
            return
        log.info("kafka: formatting storage in %s", DATA)
        cmd = self._java_cmd(
            STORAGE_TOOL, "format", "-t", _cluster_id(), "-c", str(SERVER_PROPERTIES), "--standalone"
        )
        proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise StackError(f"kafka: formatting {DATA} failed:\n{(proc.stdout + proc.stderr).strip()}")

    def up(self) -> str:
        daemon = self.daemon()
        if daemon.pid() is None:  # only touch jars/config/storage when the broker is not running
            self.install()
            self.configure()
        return daemon.ensure_started()

    def down(self) -> bool:
        return self.daemon().stop()

    def status(self) -> ComponentStatus:
        daemon = self.daemon()
        pid = daemon.pid()
        if pid is None:
            return ComponentStatus(self.name, False, "stopped")
        ready = self.is_ready()
        detail = f"pid {pid}, {self.settings.kafka.bootstrap_servers}" + ("" if ready else ", NOT answering")
        return ComponentStatus(self.name, ready, detail)
