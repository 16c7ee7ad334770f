"""Apache Kafka 4.1.1, one KRaft node (broker + controller), run from Maven Central jars on Java 17.

Install: ``mvn dependency:copy-dependencies`` on ``infra/kafka/pom.xml`` into ``.cache/kafka/libs`` (once).
Storage: ``.cache/kafka/data``, formatted once with ``kafka.tools.StorageTool format --standalone``.
Config: ``.cache/kafka/server.properties``, rewritten from settings on every ``up``.
Topics are NOT auto-created (``auto.create.topics.enable=false``): producing to a missing topic fails, so code
creates its topics explicitly (AdminClient ``create_topics``).
Ready when a confluent-kafka AdminClient ``list_topics`` succeeds.

Two client listeners: PLAINTEXT on the bootstrap port (everything local uses it) and, unless
``kafka.sasl_listener_port`` is 0, SASL_PLAINTEXT with SCRAM-SHA-512 on that port (19094), so the security settings
of every client can be tested against a broker that demands them.  Its one user, ``cdchub`` with the password in the
secrets file ``kafka_sasl_password``, is upserted through the plaintext listener (AdminClient
``alter_user_scram_credentials``, stored in the KRaft metadata) after every ``up``: idempotent, and it works on old
storage as on fresh.  No authorizer: an authenticated client may do what a plaintext one may.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import shutil
import subprocess
import uuid
from dataclasses import dataclass

from connectors.settings import Settings
from infra.stack.component import ComponentStatus
from infra.stack.errors import StackError
from infra.stack.java import system_java
from infra.stack.local_secrets import secret
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
SASL_MECHANISM = "SCRAM-SHA-512"
SASL_USER = "cdchub"  # password: the secrets file kafka_sasl_password
SCRAM_ITERATIONS = 8192


def bootstrap_host_port(settings: Settings) -> tuple[str, int]:
    first = settings.kafka.bootstrap_servers.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    return host or "127.0.0.1", int(port)


def server_properties(settings: Settings) -> str:
    host, port = bootstrap_host_port(settings)
    ctrl = settings.kafka.controller_port
    sasl = settings.kafka.sasl_listener_port
    listeners = [f"PLAINTEXT://{host}:{port}"] + ([f"SASL_PLAINTEXT://{host}:{sasl}"] if sasl else [])
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.bootstrap.servers": f"{host}:{ctrl}",
        "listeners": ",".join([*listeners, f"CONTROLLER://{host}:{ctrl}"]),
        "advertised.listeners": ",".join(listeners),
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT",
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
    if sasl:
        # The broker side of SCRAM needs a login module but no credentials of its own: it is not inter-broker.
        props["sasl.enabled.mechanisms"] = SASL_MECHANISM
        props[f"listener.name.sasl_plaintext.{SASL_MECHANISM.lower()}.sasl.jaas.config"] = (
            "org.apache.kafka.common.security.scram.ScramLoginModule required;")
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
        detail = daemon.ensure_started()
        if self.settings.kafka.sasl_listener_port:
            self.ensure_sasl_user()
        return detail

    def ensure_sasl_user(self) -> None:
        """Upsert the SASL listener's SCRAM user through the plaintext listener (idempotent)."""
        from confluent_kafka.admin import AdminClient  # heavy import, only when needed
        from confluent_kafka.admin._scram import ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion

        password = secret("kafka_sasl_password")
        if not password:
            raise StackError("kafka: the secrets file kafka_sasl_password is missing (run `cdchub up`)")
        admin = AdminClient({"bootstrap.servers": self.settings.kafka.bootstrap_servers})
        upsert = UserScramCredentialUpsertion(
            SASL_USER, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS), password.encode())
        for future in admin.alter_user_scram_credentials([upsert], request_timeout=15).values():
            try:
                future.result(timeout=20)
            except Exception as exc:  # KafkaException; the password is not in its text
                raise StackError(f"kafka: creating the SCRAM user {SASL_USER!r} failed: {exc}") from exc

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
