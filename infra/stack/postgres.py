"""PostgreSQL 15 with logical decoding (built-in ``pgoutput``): the local Kingdee database, in a project-owned cluster.

The Debian cluster ``15/cdchub`` (``pg_createcluster``; data in ``/var/lib/postgresql/15/cdchub``, config in
``/etc/postgresql/15/cdchub``) listens on 127.0.0.1:``settings.kingdee_db.port`` only.  Its
``conf.d/cdchub.conf`` and ``pg_hba.conf`` are rewritten by every ``up`` (restart only when they changed).
The role (LOGIN REPLICATION CREATEDB; CREATEDB so ``reset_kingdee_db`` needs no superuser; ``pg_signal_backend`` so
``DROP DATABASE … (FORCE)`` may also end an autovacuum worker, which runs as the superuser and otherwise makes the drop
fail now and then) gets its password from ``.cache/secrets/pg_password``.

A cluster still running the binaries of an older package (the package was upgraded under it) is restarted, so the
server is the version the machine has installed.

Needs root (or the ``postgres`` user) for ``pg_createcluster`` / ``apt-get``; superuser SQL runs through
``runuser -u postgres -- psql`` on the local socket, with the SQL on stdin so no secret appears in ``ps``.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg2

from connectors.settings import Settings
from infra.stack import debian
from infra.stack.component import ComponentStatus
from infra.stack.errors import StackError
from infra.stack.local_secrets import secret
from infra.stack.probes import port_open, port_owner, wait_until
from infra.stack.process import tail

log = logging.getLogger(__name__)

VERSION = "15"
CLUSTER = "cdchub"
BIN = Path(f"/usr/lib/postgresql/{VERSION}/bin")
CONF_DIR = Path(f"/etc/postgresql/{VERSION}/{CLUSTER}")
SERVER_LOG = Path(f"/var/log/postgresql/postgresql-{VERSION}-{CLUSTER}.log")

SERVER_CONF = """\
# Written by infra/stack/postgres.py on every `up` (project-owned cluster); edit it there.
listen_addresses = '127.0.0.1'
wal_level = logical
max_replication_slots = 10
max_wal_senders = 10
shared_buffers = 32MB
"""

HBA_CONF = """\
# Written by infra/stack/postgres.py on every `up` (project-owned cluster); edit it there.
# TYPE  DATABASE     USER      ADDRESS         METHOD
local   all          postgres                  peer
host    all          {user}    127.0.0.1/32    scram-sha-256
host    replication  {user}    127.0.0.1/32    scram-sha-256
"""

_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


def _run(cmd: list[str], what: str, stdin: str | None = None, env: dict[str, str] | None = None) -> str:
    try:
        proc = subprocess.run(
            cmd,
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            env={**os.environ, **(env or {})},
        )
    except OSError as exc:
        raise StackError(f"postgres: {what}: cannot run {cmd[0]}: {exc}") from exc
    if proc.returncode != 0:
        raise StackError(
            f"postgres: {what} failed (exit {proc.returncode}):\n{(proc.stdout + proc.stderr).strip()}"
        )
    return proc.stdout


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _write_if_changed(path: Path, text: str) -> bool:
    if path.exists() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")
    return True


def password(settings: Settings) -> str:
    # Settings may have been built before `up` generated the secret; the file is the source of truth.
    return settings.kingdee_db.password.get_secret_value() or secret("pg_password")


def connect(
    settings: Settings, dbname: str | None = None, **kwargs: object
) -> psycopg2.extensions.connection:
    db = settings.kingdee_db
    return psycopg2.connect(
        host=db.host,
        port=db.port,
        dbname=dbname or db.database,
        user=db.user,
        password=password(settings),
        connect_timeout=3,
        **kwargs,
    )


@dataclass
class Postgres:
    settings: Settings
    name: str = "postgres"
    requires: tuple[str, ...] = ()

    @property
    def port(self) -> int:
        return self.settings.kingdee_db.port

    def install(self) -> None:
        if (BIN / "postgres").exists() and shutil.which("pg_createcluster"):
            return
        log.info("postgres: installing %s with apt-get", " ".join(debian.POSTGRES))
        debian.install(debian.POSTGRES, refresh=True)

    def _binary_version(self) -> str:
        """``15.20 (Debian 15.20-0+deb12u1)``: what the installed server binary is."""
        return _run([str(BIN / "postgres"), "--version"], "postgres --version").split("(PostgreSQL)", 1)[-1].strip()

    def _running_version(self) -> str | None:
        try:
            conn = connect(self.settings)
        except psycopg2.Error:
            return None
        try:
            with conn.cursor() as cur:
                cur.execute("SHOW server_version")
                row = cur.fetchone()
            return str(row[0]) if row else None
        finally:
            conn.close()

    def cluster_state(self) -> tuple[int, str] | None:
        """(port, 'online'|'down') of our cluster, or None if it does not exist."""
        if not shutil.which("pg_lsclusters"):
            return None
        for line in _run(["pg_lsclusters", "-h"], "pg_lsclusters").splitlines():
            f = line.split()
            if len(f) >= 4 and f[0] == VERSION and f[1] == CLUSTER:
                return int(f[2]), f[3]
        return None

    def _fail_if_port_taken(self) -> None:
        if port_open(self.port):
            owner = port_owner(self.port)
            raise StackError(f"postgres: port {self.port} is already in use by another process ({owner})")

    def _create(self) -> None:
        log.info("postgres: creating cluster %s/%s on port %s", VERSION, CLUSTER, self.port)
        _run(
            [
                "pg_createcluster",
                VERSION,
                CLUSTER,
                "-p",
                str(self.port),
                "--encoding",
                "UTF8",
                "--locale",
                "C.UTF-8",
                "--start-conf",
                "manual",
            ],
            "pg_createcluster",
        )

    def _configure(self) -> bool:
        user = self.settings.kingdee_db.user
        changed = _write_if_changed(CONF_DIR / "conf.d" / "cdchub.conf", SERVER_CONF)
        return _write_if_changed(CONF_DIR / "pg_hba.conf", HBA_CONF.format(user=user)) or changed

    def _ctl(self, action: str) -> None:
        try:
            _run(["pg_ctlcluster", VERSION, CLUSTER, action], f"pg_ctlcluster {action}")
        except StackError as exc:
            raise StackError(f"{exc}\n--- last lines of {SERVER_LOG} ---\n{tail(SERVER_LOG)}") from exc

    def _bootstrap(self) -> None:
        db = self.settings.kingdee_db
        for ident in (db.user, db.database):
            if not _IDENT.match(ident):
                raise StackError(f"postgres: {ident!r} is not a plain lower-case SQL identifier")
        pw = password(self.settings)
        if not pw:
            raise StackError("postgres: no password in .cache/secrets/pg_password (up generates it)")
        sql = f"""\\set ON_ERROR_STOP 1
SELECT 'CREATE ROLE {db.user}' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{db.user}')\\gexec
ALTER ROLE {db.user} WITH LOGIN REPLICATION CREATEDB PASSWORD '{pw}';
GRANT pg_signal_backend TO {db.user};
SELECT 'CREATE DATABASE {db.database} OWNER {db.user} ENCODING ''UTF8'' TEMPLATE template0'
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '{db.database}')\\gexec
"""
        psql = _as_postgres([str(BIN / "psql"), "-X", "-q", "-p", str(self.port), "-d", "postgres"])
        _run(psql, "creating role and database", stdin=sql)

    def is_ready(self) -> bool:
        try:
            conn = connect(self.settings)
        except psycopg2.Error:
            return False
        try:
            with conn.cursor() as cur:
                cur.execute("SHOW wal_level")
                row = cur.fetchone()
                cur.execute("SELECT pg_has_role(current_user, 'pg_signal_backend', 'MEMBER')")
                signals = cur.fetchone()
            return row is not None and row[0] == "logical" and signals is not None and bool(signals[0])
        except psycopg2.Error:
            return False
        finally:
            conn.close()

    def _accepting(self) -> bool:
        cmd = [str(BIN / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)]
        return subprocess.run(cmd, stdin=subprocess.DEVNULL).returncode == 0

    def up(self) -> str:
        self.install()
        state = self.cluster_state()
        if state is None:
            self._fail_if_port_taken()
            self._create()
            state = self.cluster_state()
            assert state is not None
        port, online = state
        if port != self.port:
            raise StackError(
                f"postgres: cluster {VERSION}/{CLUSTER} exists on port {port}, settings say {self.port}; "
                f"change the setting or `pg_dropcluster --stop {VERSION} {CLUSTER}`"
            )
        changed = self._configure()
        if online == "online" and not changed:
            running, installed = self._running_version(), self._binary_version()
            if running is not None and running != installed:
                log.info("postgres: cluster runs %s but %s is installed; restarting it", running, installed)
                changed = True
            elif self.is_ready():
                return f"already running (cluster {VERSION}/{CLUSTER}, {running})"
        if online == "online":
            self._ctl("restart" if changed else "reload")
            action = "restarted" if changed else "running"
        else:
            self._fail_if_port_taken()
            self._ctl("start")
            action = "started"
        wait_until(self._accepting, 60, "postgres accepting connections")
        if not self.is_ready():
            self._bootstrap()
            wait_until(self.is_ready, 10, "postgres login as the kingdee role with wal_level=logical")
        return f"{action} (cluster {VERSION}/{CLUSTER}, {self._binary_version()}, wal_level=logical)"

    def down(self) -> bool:
        state = self.cluster_state()
        if state is None or state[1] != "online":
            return False
        self._ctl("stop")
        return True

    def status(self) -> ComponentStatus:
        state = self.cluster_state()
        if state is None:
            return ComponentStatus(self.name, False, f"no cluster {VERSION}/{CLUSTER}")
        if state[1] != "online":
            return ComponentStatus(self.name, False, f"cluster {VERSION}/{CLUSTER} {state[1]}")
        ready = self.is_ready()
        db = self.settings.kingdee_db
        where = f"{db.host}:{db.port}/{db.database}"
        return ComponentStatus(
            self.name, ready, where + ("" if ready else ", NOT accepting the kingdee role")
        )


def reset_kingdee_db(settings: Settings) -> None:
    """Drop the replication slots of the Kingdee database and recreate it empty (tests, ``reset-kingdee``).

    Runs as the kingdee role (REPLICATION + CREATEDB): active slots are released by terminating their
    walsender first; sessions still connected to the database are closed by ``DROP DATABASE ... (FORCE)``.
    """
    db = settings.kingdee_db
    conn = connect(settings, dbname="postgres")
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots"
                " WHERE active_pid IS NOT NULL AND database = %s",
                (db.database,),
            )

            def slots_idle() -> bool:
                cur.execute(
                    "SELECT count(*) FROM pg_replication_slots WHERE active AND database = %s", (db.database,)
                )
                row = cur.fetchone()
                return row is not None and row[0] == 0

            wait_until(slots_idle, 10, "replication slots released")
            cur.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = %s",
                (db.database,),
            )
            cur.execute(f'DROP DATABASE IF EXISTS "{db.database}" WITH (FORCE)')
            cur.execute(
                f'CREATE DATABASE "{db.database}" OWNER "{db.user}" ENCODING \'UTF8\' TEMPLATE template0'
            )
    finally:
        conn.close()
