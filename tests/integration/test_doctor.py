"""``cdchub doctor`` on the real local stack: an installation of its own (Kingdee database, slot, topic prefix, state
dir, a running capture and pollers, simulators of the four systems) passes every check; with one setting broken at
a time the doctor returns 1 and prints the check that found it with its fix.

The doctor runs in-process (``doctor.main()``), configured through the environment as an operator configures it.
ZOHO's refresh budget (10 per 10 minutes per org) belongs to this session's own simulator org, and the doctor is
shown to reuse the installation's cached token instead of refreshing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient
from sqlalchemy import text

from cdchub import doctor
from cdchub.doctor.kafka_checks import expected_topics
from connectors.common.kafka import DLQ_TOPIC_CONFIG, ensure_topics
from connectors.settings import Settings, get_settings
from tests.integration.harness import IsolatedEnv, ZohoSim, isolated_env, wait_for
from tests.integration.huilianyi_harness import start_huilianyi
from tests.integration.weaver_harness import start_weaver

#: Every check of the ``log`` capture mode, in the order the doctor prints them.
LOG_MODE_CHECKS = ["state-dir", "kafka", "topics", "registry", "kingdee-db", "wal_level", "replication", "slot",
                   "publication", "grants", "clock", "zoho-token", "zoho-scopes", "zoho-fields", "kingdee-webapi",
                   "weaver", "huilianyi"]


def _settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    return get_settings()


@pytest.fixture(scope="module")
def installation(stack: Settings, zoho_sim: tuple[ZohoSim, str],
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[IsolatedEnv]:
    """A running installation: capture (its slot active) and pollers started, every topic there."""
    sim, base = zoho_sim
    sim.reset()
    with isolated_env(stack, sim, base, tmp_path_factory.mktemp("doctor")) as env:
        env.start_kingdee_api()
        start_weaver(env)
        start_huilianyi(env, poll_interval_s=5)
        env.env["CDCHUB_WEAVER__POLL_INTERVAL_S"] = "5"
        env.capture()
        env.spawn("pollers", "pollers")
        with pytest.MonkeyPatch.context() as mp:
            settings = _settings_from(env.env, mp)
            # the dataflows' dead-letter topics (each dataflow makes its own at start; none runs here)
            wanted = expected_topics(settings)
            dlq = [t for t, n in wanted.items() if ".dlq." in t]
            ensure_topics(settings.kafka, dlq, 1, DLQ_TOPIC_CONFIG)
            slot = settings.kingdee_db.slot
            wait_for(lambda: _slot_active(env, slot), 60, "the capture reading its slot")
            change = [t for t in wanted if t not in dlq]
            wait_for(lambda: _topics_exist(settings, change), 60, "the capture's and pollers' topics")
        get_settings.cache_clear()
        yield env
    get_settings.cache_clear()


def _topics_exist(settings: Settings, topics: list[str]) -> bool:
    """The capture and the pollers make their topics at start: wait for them, do not make them."""
    config: dict[str, str | int | float | bool] = {**settings.kafka.client_config()}
    listed = AdminClient(config).list_topics(timeout=10).topics
    return all(t in listed for t in topics)


def _slot_active(env: IsolatedEnv, slot: str) -> bool:
    with env.kingdee.connect() as conn:
        return bool(conn.execute(text("SELECT active FROM pg_replication_slots WHERE slot_name = :s"),
                                 {"s": slot}).scalar())


def _doctor(env: IsolatedEnv, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
            **overrides: str) -> tuple[int, dict[str, str]]:
    """Run the doctor with the installation's settings plus ``overrides``; (exit code, output line by check)."""
    _settings_from({**env.env, **overrides}, monkeypatch)
    try:
        code = doctor.main()
    finally:
        get_settings.cache_clear()
    out = capsys.readouterr().out
    with capsys.disabled():
        print("\n" + out)  # the doctor's own output, for whoever reads the test log
    return code, {line.split()[1]: line for line in out.splitlines() if line and line[0] in "✓⚠✗–"}


def _token_requests(env: IsolatedEnv) -> int:
    return sum(1 for r in env.zoho.requests() if str(r.get("path", "")).endswith("/oauth/v2/token"))


def test_every_check_passes_on_a_running_installation(installation: IsolatedEnv, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    notify = {"CDCHUB_ZOHO__WATCH_NOTIFY_URL": "http://127.0.0.1:9/zoho/notify"}  # so notifications.ALL is probed
    code, lines = _doctor(installation, monkeypatch, capsys, **notify)
    assert code == 0
    assert list(lines) == LOG_MODE_CHECKS
    assert all(line.startswith("✓") for line in lines.values()), lines
    assert "REPLICA IDENTITY FULL" in lines["publication"]
    assert "ZohoCRM.notifications.ALL" in lines["zoho-scopes"]
    # a second run reuses the installation's tokens: no ZOHO refresh, however often the doctor runs
    before = _token_requests(installation)
    code, lines = _doctor(installation, monkeypatch, capsys, **notify)
    assert code == 0
    assert _token_requests(installation) == before
    assert "reused the installation's cached token" in lines["zoho-token"]


@pytest.mark.parametrize(("mode", "database_checks"), [("query", ["kingdee-db", "grants", "clock"]),
                                                       ("webapi", [])])
def test_polled_capture_modes_check_what_they_need(installation: IsolatedEnv, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str], mode: str,
                                                   database_checks: list[str]) -> None:
    """``query`` reads the database through SQLAlchemy (here the same PostgreSQL): no slot, no publication; ``webapi``
    reads no database but every captured form through the WebAPI."""
    code, lines = _doctor(installation, monkeypatch, capsys, CDCHUB_CAPTURE__MODE=mode)
    assert code == 0
    assert list(lines) == ["state-dir", "kafka", "topics", "registry", *database_checks, "zoho-token",
                           "zoho-scopes", "zoho-fields", "kingdee-webapi", "weaver", "huilianyi"]
    assert all(line.startswith("✓") for line in lines.values()), lines
    if mode == "query":
        assert "all 34 captured tables can be read" in lines["grants"]
    else:
        assert "14 forms readable" in lines["kingdee-webapi"]


def test_wrong_kafka_port(installation: IsolatedEnv, monkeypatch: pytest.MonkeyPatch,
                          capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = _doctor(installation, monkeypatch, capsys, CDCHUB_KAFKA__BOOTSTRAP_SERVERS="127.0.0.1:1")
    assert code == 1
    assert lines["kafka"].startswith("✗") and "127.0.0.1:1" in lines["kafka"]
    assert "fix: check CDCHUB_KAFKA__BOOTSTRAP_SERVERS" in lines["kafka"]
    assert lines["topics"].startswith("–")  # not a second failure: it needs Kafka's metadata
    assert lines["kingdee-db"].startswith("✓")


def test_wrong_postgres_password(installation: IsolatedEnv, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = _doctor(installation, monkeypatch, capsys, CDCHUB_KINGDEE_DB__PASSWORD="not-the-password")
    assert code == 1
    assert lines["kingdee-db"].startswith("✗") and "password authentication failed" in lines["kingdee-db"]
    assert "fix: set CDCHUB_KINGDEE_DB__USER / CDCHUB_KINGDEE_DB__PASSWORD" in lines["kingdee-db"]
    assert "not-the-password" not in "".join(lines.values())
    for dependent in ("wal_level", "replication", "slot", "publication", "grants", "clock"):
        assert lines[dependent].startswith("–"), lines[dependent]


def test_wrong_publication_name(installation: IsolatedEnv, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = _doctor(installation, monkeypatch, capsys, CDCHUB_KINGDEE_DB__PUBLICATION="cdchub_other")
    assert code == 1
    line = lines["publication"]
    assert line.startswith("✗") and "'cdchub_other' does not exist" in line
    assert 'fix: as the tables\' owner run: CREATE PUBLICATION "cdchub_other" FOR TABLE' in line
    assert "cdchub capture --resnapshot" in line  # the slot is older than such a publication
    assert lines["slot"].startswith("✓")


def test_zoho_client_secret_refused(installation: IsolatedEnv, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A fresh state dir (no cached token), so the refresh is really tried — once — and refused by the org."""
    before = _token_requests(installation)
    code, lines = _doctor(installation, monkeypatch, capsys, CDCHUB_ZOHO__CLIENT_SECRET="not-the-secret",
                          CDCHUB_STATE_DIR=str(tmp_path / "state"))
    assert code == 1
    line = lines["zoho-token"]
    assert line.startswith("✗") and "refused to refresh the token" in line
    assert "CDCHUB_ZOHO__CLIENT_SECRET" in line.split("fix:")[1]
    assert lines["zoho-scopes"].startswith("–")
    assert _token_requests(installation) - before == 1
    assert lines["state-dir"].startswith("⚠")
    assert "not-the-secret" not in "".join(lines.values())
