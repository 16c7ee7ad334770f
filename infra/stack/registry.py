"""Apicurio Registry 3.3.3 (Confluent-compatible API at ``/apis/ccompat/v7``) on a Temurin 21+ JDK.

Install: ``mvn dependency:copy`` of ``io.apicurio:apicurio-registry-app:3.3.3:tar.gz:all`` into
``.cache/registry/download``, unpacked into ``.cache/registry/app-3.3.3`` (Quarkus fast-jar layout; the
archive is then deleted), run as ``java -jar quarkus-run.jar``.

Storage is **kafkasql**: every change is a record in the Kafka topic ``kafkasql-journal`` (created by the
registry, ``retention.ms=-1``), replayed on start, so schemas and their ids survive a registry restart and
live as long as the Kafka data dir.  The default (in-memory H2) loses every schema on restart; the SQL kind on
our PostgreSQL would put the registry inside the Kingdee source database.  Hence the registry requires Kafka.

Global compatibility is set to ``settings.registry.compatibility`` (BACKWARD) and read back on every ``up``:
Apicurio does not enforce compatibility until a rule is configured.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from dataclasses import dataclass

import httpx

from connectors.settings import Settings
from infra.stack.component import ComponentStatus
from infra.stack.errors import StackError
from infra.stack.java import temurin_java
from infra.stack.maven import copy_artifact
from infra.stack.paths import REGISTRY_DIR, ensure_dir
from infra.stack.probes import http_status
from infra.stack.process import Daemon

log = logging.getLogger(__name__)

VERSION = "3.3.3"
COORDINATES = f"io.apicurio:apicurio-registry-app:{VERSION}:tar.gz:all"
ARCHIVE = REGISTRY_DIR / "download" / f"apicurio-registry-app-{VERSION}-all.tar.gz"
APP_DIR = REGISTRY_DIR / f"app-{VERSION}"
RUN_JAR = APP_DIR / "quarkus-run.jar"
JOURNAL_TOPIC = "kafkasql-journal"
CDS_ARCHIVE = REGISTRY_DIR / f"app-{VERSION}.jsa"  # JVM class-data sharing archive (start-up time)


@dataclass
class Registry:
    settings: Settings
    name: str = "registry"
    requires: tuple[str, ...] = ("kafka",)

    @property
    def base_url(self) -> str:
        # The Apicurio this stack runs, whatever CDCHUB_REGISTRY__URL points the installation at (it has no auth).
        return self.settings.registry.local_url()

    def daemon(self, java: str = "java") -> Daemon:
        reg = self.settings.registry
        props = {
            "quarkus.http.host": "127.0.0.1",
            "quarkus.http.port": reg.port,
            # The management interface (health, metrics) is on at build time; its default port 9000 clashes.
            "quarkus.management.host": "127.0.0.1",
            "quarkus.management.port": reg.management_port,
            "quarkus.http.access-log.enabled": "false",
            "apicurio.storage.kind": "kafkasql",
            "apicurio.kafkasql.bootstrap.servers": self.settings.kafka.bootstrap_servers,
            "apicurio.kafkasql.topic": JOURNAL_TOPIC,
            "apicurio.kafkasql.topic.auto-create": "true",
            # Topic settings take the prefix "apicurio.kafkasql.topic." (RegistryProperties in
            # KafkaSqlConfiguration); one partition keeps the journal totally ordered and its replay short.
            # "replication.factor" is NOT understood by 3.3.3: it is passed on as a topic config and Kafka
            # rejects it, so the broker default (1) applies.
            "apicurio.kafkasql.topic.partitions": "1",
            # Startup waits this poll timeout (default 5000 ms) several times reading journal and snapshots.
            "apicurio.kafkasql.consumer.poll.timeout": "1000",
            'quarkus.log.category."org.apache.kafka".level': "WARN",
        }
        argv = [
            java,
            f"-Xmx{reg.heap}",
            f"-Xms{reg.heap}",
            # Start-up over peak speed (a low-traffic service on a 2-core machine): C1 only, serial GC, and a
            # class-data archive written at the first clean exit and reused after (measured 14 s -> 8-10 s).
            "-XX:TieredStopAtLevel=1",
            "-XX:+UseSerialGC",
            "-XX:+AutoCreateSharedArchive",
            f"-XX:SharedArchiveFile={CDS_ARCHIVE}",
            "-Djava.awt.headless=true",
            *(f"-D{k}={v}" for k, v in props.items()),
            "-jar",
            str(RUN_JAR),
        ]
        return Daemon(
            name=self.name,
            argv=argv,
            is_ready=self.is_ready,
            marker=str(RUN_JAR),
            ports=(reg.port, reg.management_port),
            cwd=APP_DIR,
            ready_timeout_s=180,
            stop_timeout_s=30,
        )

    def is_ready(self) -> bool:
        # The API answers before the kafkasql storage has replayed its journal (a restarted registry briefly
        # lists no subjects); the readiness check on the management port waits for the storage.
        mgmt = f"http://127.0.0.1:{self.settings.registry.management_port}/health/ready"
        return http_status(mgmt) == 200 and http_status(f"{self.base_url}/subjects") == 200

    def install(self) -> None:
        if RUN_JAR.exists():
            return
        if not ARCHIVE.exists():
            log.info("registry: downloading %s from Maven Central", COORDINATES)
            copy_artifact(COORDINATES, ARCHIVE.parent, "apicurio registry")
        if not ARCHIVE.exists():
            raise StackError(f"registry: mvn finished but {ARCHIVE} is missing")
        tmp = APP_DIR.with_name(APP_DIR.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        ensure_dir(tmp)
        proc = subprocess.run(["tar", "-xzf", str(ARCHIVE), "-C", str(tmp)], capture_output=True, text=True)
        if proc.returncode != 0 or not (tmp / "quarkus-run.jar").exists():
            ARCHIVE.unlink(missing_ok=True)  # most likely a truncated download: fetch again next time
            raise StackError(
                f"registry: unpacking {ARCHIVE} failed: {proc.stderr.strip() or 'no quarkus-run.jar'}"
            )
        tmp.rename(APP_DIR)
        ARCHIVE.unlink()  # 150 MB; Maven's ~/.m2 still holds a copy if the app dir is ever removed

    def ensure_compatibility(self) -> str:
        want = self.settings.registry.compatibility
        with httpx.Client(base_url=self.base_url, timeout=10) as client:
            put = client.put("/config", json={"compatibility": want})
            if put.status_code != 200:
                raise StackError(f"registry: PUT /config {want} answered {put.status_code}: {put.text[:300]}")
            got = client.get("/config").json().get("compatibilityLevel")
        if got != want:
            raise StackError(f"registry: global compatibility is {got!r} after setting {want!r}")
        return str(got)

    def up(self) -> str:
        daemon = self.daemon()
        if daemon.pid() is None:
            self.install()
            daemon = self.daemon(str(temurin_java(21)))
        detail = daemon.ensure_started()
        return f"{detail}, compatibility {self.ensure_compatibility()}"

    def down(self) -> bool:
        return self.daemon().stop()

    def status(self) -> ComponentStatus:
        pid = self.daemon().pid()
        if pid is None:
            return ComponentStatus(self.name, False, "stopped")
        ready = self.is_ready()
        return ComponentStatus(
            self.name, ready, f"pid {pid}, {self.base_url}" + ("" if ready else ", NOT answering")
        )
