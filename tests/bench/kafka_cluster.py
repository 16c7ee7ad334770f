"""A three-node Kafka cluster for ``make chaos --brokers 3``: KRaft, each node broker and controller (a static
quorum of three voters), from the same jars as the local stack, in a temporary folder, on ports of its own.

Topics get three replicas and ``min.insync.replicas`` 2 (the installation's settings say so), so one node may die
at any moment without losing an acknowledged write.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

from connectors.settings import get_settings
from infra.stack.kafka import LIBS, LOG4J2_CONFIG, MAIN_CLASS, STORAGE_TOOL, Kafka, _cluster_id
from infra.stack.process import Daemon

HOST = "127.0.0.1"


class KafkaCluster:
    def __init__(self, root: Path, nodes: int = 3, base_port: int = 29092, heap: str = "384m") -> None:
        self.root = root
        self.nodes = list(range(1, nodes + 1))
        self.base_port = base_port
        self.heap = heap

    def port(self, node: int) -> int:
        return self.base_port + node - 1

    def controller_port(self, node: int) -> int:
        return self.base_port + 100 + node - 1

    @property
    def bootstrap(self) -> str:
        return ",".join(f"{HOST}:{self.port(n)}" for n in self.nodes)

    def _properties(self, node: int) -> Path:
        replicas, isr = str(len(self.nodes)), str(max(1, len(self.nodes) - 1))
        props = {
            "process.roles": "broker,controller", "node.id": str(node),
            "controller.quorum.voters": ",".join(f"{n}@{HOST}:{self.controller_port(n)}" for n in self.nodes),
            "listeners": f"PLAINTEXT://{HOST}:{self.port(node)},CONTROLLER://{HOST}:{self.controller_port(node)}",
            "advertised.listeners": f"PLAINTEXT://{HOST}:{self.port(node)}",
            "controller.listener.names": "CONTROLLER", "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.root / f"node-{node}"), "num.partitions": "3",
            "default.replication.factor": replicas, "min.insync.replicas": isr,
            "offsets.topic.replication.factor": replicas, "offsets.topic.num.partitions": "5",
            "transaction.state.log.replication.factor": replicas, "transaction.state.log.min.isr": isr,
            "transaction.state.log.num.partitions": "5",
            "share.coordinator.state.topic.replication.factor": replicas,
            "share.coordinator.state.topic.min.isr": isr,
            "group.initial.rebalance.delay.ms": "0", "auto.create.topics.enable": "false",
        }
        path = self.root / f"node-{node}.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        return path

    def _java(self, main: str, *args: str, heap: str | None = None) -> list[str]:
        jvm = [f"-Xmx{heap}", f"-Xms{heap}", "-XX:+UseG1GC"] if heap else []
        return [shutil.which("java") or "java", *jvm, "-Djava.awt.headless=true",
                f"-Dlog4j2.configurationFile={LOG4J2_CONFIG}", "-cp", f"{LIBS}/*", main, *args]

    def daemon(self, node: int) -> Daemon:
        path = self.root / f"node-{node}.properties"
        return Daemon(name=f"kafka-node-{node}", argv=self._java(MAIN_CLASS, str(path), heap=self.heap),
                      is_ready=lambda: self._answers(node), marker=str(path),
                      ports=(self.port(node), self.controller_port(node)), ready_timeout_s=180, run_dir=self.root)

    def _answers(self, node: int) -> bool:
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": f"{HOST}:{self.port(node)}",
                             "socket.connection.setup.timeout.ms": 1000, "log_level": 0})
        try:
            return len(admin.list_topics(timeout=2).brokers) >= 1
        except Exception:  # noqa: BLE001 - not up yet
            return False

    def start(self) -> None:
        Kafka(get_settings()).install()  # the local stack's jars (a no-op once fetched)
        self.root.mkdir(parents=True, exist_ok=True)
        cluster = _cluster_id()
        for node in self.nodes:
            path = self._properties(node)
            if not (self.root / f"node-{node}" / "meta.properties").exists():
                subprocess.run(self._java(STORAGE_TOOL, "format", "-t", cluster, "-c", str(path)), check=True,
                               capture_output=True, stdin=subprocess.DEVNULL)
        procs = [self.daemon(n) for n in self.nodes]
        for daemon in procs:  # all three must run before any of them has a quorum
            if daemon.pid() is None:
                daemon._spawn()
        for daemon in procs:
            daemon.ensure_started()

    def kill(self, node: int) -> None:
        pid = self.daemon(node).pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)

    def restart(self, node: int) -> None:
        self.daemon(node).ensure_started()

    def stop(self) -> None:
        for node in self.nodes:
            self.daemon(node).stop()
        shutil.rmtree(self.root, ignore_errors=True)
