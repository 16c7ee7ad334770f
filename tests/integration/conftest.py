"""The real local stack, started once per test session (and stopped after, if this session started it).

Each test gets its own slice: a fresh Kingdee database, replication slot, topic prefix and state folder; the session
runs its own ZOHO simulator on a free port with a temporary state folder, so a developer's ``make run`` data is
never touched.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from cdchub.settings import PROJECT_ROOT, KingdeeDbSettings, Settings, ZohoSettings, get_settings
from connectors.kingdee.models import create_schema
from tests.integration.harness import IsolatedEnv, ZohoSim, wait_for

pytestmark = pytest.mark.integration

STACK = ["postgres", "kafka", "registry"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def stack() -> Iterator[Settings]:
    from infra.stack.manager import down, status, up

    settings = get_settings()
    already = {row.name for row in status(settings) if row.running}
    up(settings, STACK)
    get_settings.cache_clear()  # `up` may have written the local secrets
    settings = get_settings()
    yield settings
    if not already.intersection(STACK):
        down(settings)


@pytest.fixture(scope="session")
def zoho_sim(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ZohoSim, str]]:
    port = _free_port()
    state = tmp_path_factory.mktemp("zoho-sim")
    log = open(state / "sim.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "infra.simulators.zoho", "--port", str(port), "--state-dir", str(state)],
        cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    sim = ZohoSim(base)

    def healthy() -> bool:
        try:
            return sim.http.get("/healthz").status_code == 200
        except Exception:  # noqa: BLE001
            return proc.poll() is not None and pytest.fail((state / "sim.log").read_text())
    wait_for(healthy, 30, "the ZOHO simulator")
    yield sim, base
    proc.terminate()
    proc.wait(10)


@pytest.fixture()
def env(stack: Settings, zoho_sim: tuple[ZohoSim, str], tmp_path: Path) -> Iterator[IsolatedEnv]:
    sim, base = zoho_sim
    sim.reset()
    database = f"kingdee_t{uuid.uuid4().hex[:8]}"
    admin = create_engine(stack.kingdee_db.sqlalchemy_url().rsplit("/", 1)[0] + "/postgres",
                          isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{database}" ENCODING \'UTF8\' TEMPLATE template0')
    base = stack.model_copy(update={
        "kingdee_db": KingdeeDbSettings(**{**stack.kingdee_db.model_dump(), "database": database}),
        "zoho": ZohoSettings(**{**stack.zoho.model_dump(), "accounts_url": base, "api_domain": base}),
    })
    kingdee = create_engine(base.kingdee_db.sqlalchemy_url(), future=True)
    create_schema(kingdee)
    test_env = IsolatedEnv.create(base, tmp_path, kingdee, sim)
    test_env.env.update({
        "CDCHUB_KINGDEE_DB__DATABASE": database,
        "CDCHUB_ZOHO__ACCOUNTS_URL": base.zoho.accounts_url,
        "CDCHUB_ZOHO__API_DOMAIN": base.zoho.api_domain,
    })
    yield test_env
    test_env.close()
    kingdee.dispose()
    with admin.connect() as conn:
        slot = test_env.settings.kingdee_db.slot
        conn.exec_driver_sql(
            "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = %s AND active",
            (slot,))
        wait_for(lambda: conn.exec_driver_sql(
            "SELECT count(*) FROM pg_replication_slots WHERE slot_name = %s AND active", (slot,)).scalar() == 0,
            10, "slot released")
        conn.exec_driver_sql(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s", (slot,))
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    admin.dispose()
