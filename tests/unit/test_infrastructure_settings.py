"""Settings that point cdchub at real infrastructure: Kafka security (secrets kept out of reprs), the registry's URL
and credentials, the Kingdee database's TLS, and the replication of new topics from the cluster's broker count."""

from __future__ import annotations

import base64
from typing import Any

import psycopg2.extensions
import pytest
from confluent_kafka import KafkaError
from pydantic import ValidationError
from sqlalchemy.engine import make_url

from connectors.common import kafka as kafka_module
from connectors.common.kafka import FailOnRefusal, KafkaAuthenticationFailed, bytewax_config, ensure_topics
from connectors.kingdee.settings import KingdeeDbSettings
from connectors.settings import Settings
from core.settings import KafkaSettings, RegistrySettings
from infra.stack.kafka import server_properties


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith(("CDCHUB_KAFKA__", "CDCHUB_REGISTRY__", "CDCHUB_KINGDEE_DB__")):
            monkeypatch.delenv(name)


# --- Kafka ------------------------------------------------------------------------------------------------------------
def test_client_json_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDCHUB_KAFKA__BOOTSTRAP_SERVERS", "b-1.example.cn:9096,b-2.example.cn:9096")
    monkeypatch.setenv("CDCHUB_KAFKA__CLIENT", '{"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",'
                                               ' "ssl.ca.location": "/etc/ssl/ca.pem", "socket.timeout.ms": 30000,'
                                               ' "enable.ssl.certificate.verification": true}')
    monkeypatch.setenv("CDCHUB_KAFKA__SASL_USERNAME", "cdchub")
    monkeypatch.setenv("CDCHUB_KAFKA__SASL_PASSWORD", "pw-from-env")
    kafka = Settings().kafka
    assert kafka.client["socket.timeout.ms"] == "30000"  # librdkafka takes strings
    assert kafka.client["enable.ssl.certificate.verification"] == "true"
    assert kafka.client_config() == {
        "bootstrap.servers": "b-1.example.cn:9096,b-2.example.cn:9096", "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512", "ssl.ca.location": "/etc/ssl/ca.pem", "socket.timeout.ms": "30000",
        "enable.ssl.certificate.verification": "true", "sasl.username": "cdchub", "sasl.password": "pw-from-env"}
    assert "pw-from-env" not in repr(kafka) and "pw-from-env" not in str(Settings())


def test_secrets_given_in_client_are_moved_out_of_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDCHUB_KAFKA__CLIENT", '{"security.protocol": "SASL_SSL", "sasl.username": "u",'
                                               ' "sasl.password": "inline-pw", "ssl.key.password": "key-pw"}')
    kafka = Settings().kafka
    assert set(kafka.client) == {"security.protocol", "sasl.username"}
    assert set(kafka.client_secrets) == {"sasl.password", "ssl.key.password"}
    assert "inline-pw" not in repr(kafka) and "key-pw" not in repr(kafka)
    config = kafka.client_config({"group.id": "g"})
    assert config["sasl.password"] == "inline-pw" and config["ssl.key.password"] == "key-pw"
    assert config["sasl.username"] == "u" and config["group.id"] == "g"


def test_client_secrets_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDCHUB_KAFKA__CLIENT_SECRETS", '{"sasl.oauthbearer.client.secret": "oidc"}')
    kafka = Settings().kafka
    assert "oidc" not in repr(kafka)
    assert kafka.client_config()["sasl.oauthbearer.client.secret"] == "oidc"


def test_sasl_credentials_only_for_sasl_protocols() -> None:
    plain = KafkaSettings(sasl_username="u", sasl_password="p")  # type: ignore[arg-type]
    assert "sasl.password" not in plain.client_config() and "sasl.username" not in plain.client_config()
    sasl = KafkaSettings.model_validate({"client": {"security.protocol": "sasl_plaintext"}, "sasl_username": "u",
                                         "sasl_password": "p"})
    assert sasl.client_config()["sasl.username"] == "u" and sasl.client_config()["sasl.password"] == "p"


def test_bytewax_connectors_get_the_security_settings() -> None:
    kafka = KafkaSettings.model_validate({"client": {"security.protocol": "SASL_SSL"}, "sasl_username": "u",
                                          "sasl_password": "p"})
    config = bytewax_config(kafka, {"message.max.bytes": "100"})
    assert config["sasl.password"] == "p" and config["security.protocol"] == "SASL_SSL"
    assert config["message.max.bytes"] == "100"


@pytest.mark.parametrize(("brokers", "expected"), [(1, (1, 1)), (2, (2, 1)), (3, (3, 2)), (6, (3, 2)), (0, (1, 1))])
def test_replication_defaults_from_the_broker_count(brokers: int, expected: tuple[int, int]) -> None:
    assert KafkaSettings().replication_for(brokers) == expected


def test_explicit_replication_settings_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDCHUB_KAFKA__REPLICATION_FACTOR", "2")
    assert Settings().kafka.replication_for(5) == (2, 1)
    monkeypatch.setenv("CDCHUB_KAFKA__MIN_INSYNC_REPLICAS", "2")
    assert Settings().kafka.replication_for(5) == (2, 2)
    monkeypatch.setenv("CDCHUB_KAFKA__REPLICATION_FACTOR", "0")
    with pytest.raises(ValidationError, match="replication_factor"):
        Settings()


class _Future:
    def result(self, timeout: float | None = None) -> Any:
        return {}


class _FakeAdmin:
    def __init__(self) -> None:
        self.created: list[Any] = []

    def create_topics(self, topics: list[Any]) -> dict[str, _Future]:
        self.created += topics
        return {t.topic: _Future() for t in topics}


class _Meta:
    def __init__(self, brokers: int) -> None:
        self.brokers = {i: object() for i in range(brokers)}
        self.topics: dict[str, Any] = {}


@pytest.mark.parametrize(("brokers", "replicas", "min_isr"), [(1, 1, "1"), (3, 3, "2"), (5, 3, "2")])
def test_topic_creator_asks_the_cluster(monkeypatch: pytest.MonkeyPatch, brokers: int, replicas: int,
                                        min_isr: str) -> None:
    admin = _FakeAdmin()
    monkeypatch.setattr(kafka_module, "connect_admin", lambda config, timeout_s=0: (admin, _Meta(brokers)))
    monkeypatch.setattr(kafka_module, "_wait_until_usable", lambda admin, topics: None)
    monkeypatch.setattr(kafka_module, "_raise_size_limits", lambda admin, topics, wanted: {})
    ensure_topics(KafkaSettings(), ["a"], 3, {"cleanup.policy": "compact"})
    (topic,) = admin.created
    assert (topic.topic, topic.num_partitions, topic.replication_factor) == ("a", 3, replicas)
    assert topic.config["min.insync.replicas"] == min_isr and topic.config["cleanup.policy"] == "compact"


def test_a_refusal_is_one_line_without_the_password() -> None:
    config = {"bootstrap.servers": "k:9096", "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
              "sasl.username": "cdchub", "sasl.password": "hunter2"}
    on_error = FailOnRefusal(config)
    on_error(KafkaError(KafkaError._TRANSPORT, "broker restarting"))  # retried by librdkafka: no exception
    with pytest.raises(KafkaAuthenticationFailed) as refused:
        on_error(KafkaError(KafkaError._AUTHENTICATION, "SASL authentication error: invalid credentials"))
    message = str(refused.value)
    assert "\n" not in message and "hunter2" not in message
    assert message.startswith("Kafka k:9096 (SASL_SSL, SCRAM-SHA-512, user 'cdchub') refused the credentials")


def test_local_stack_has_a_sasl_listener() -> None:
    props = dict(line.split("=", 1) for line in server_properties(Settings()).splitlines())
    assert props["listeners"] == ("PLAINTEXT://127.0.0.1:19092,SASL_PLAINTEXT://127.0.0.1:19094,"
                                  "CONTROLLER://127.0.0.1:19093")
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092,SASL_PLAINTEXT://127.0.0.1:19094"
    assert props["inter.broker.listener.name"] == "PLAINTEXT"
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert "ScramLoginModule required;" in props["listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config"]
    off = server_properties(Settings(kafka=KafkaSettings(sasl_listener_port=0)))
    assert "SASL" not in off.replace("SASL_PLAINTEXT:SASL_PLAINTEXT", "")


# --- registry ---------------------------------------------------------------------------------------------------------
def test_registry_url_defaults_to_the_local_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDCHUB_REGISTRY__PORT", "28081")
    registry = Settings().registry
    assert registry.url == registry.local_url() == "http://127.0.0.1:28081/apis/ccompat/v7"
    assert registry.client_config() == {"url": registry.url, "timeout": 10.0}
    assert registry.auth_headers() == {}


def test_registry_url_and_basic_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDCHUB_REGISTRY__URL", "https://sr.example.cn/apis/ccompat/v7/")
    monkeypatch.setenv("CDCHUB_REGISTRY__USERNAME", "sr-user")
    monkeypatch.setenv("CDCHUB_REGISTRY__PASSWORD", "sr:pw")
    monkeypatch.setenv("CDCHUB_REGISTRY__CA_LOCATION", "/etc/ssl/corp-ca.pem")
    registry = Settings().registry
    assert registry.url == "https://sr.example.cn/apis/ccompat/v7"
    assert registry.local_url() == "http://127.0.0.1:18081/apis/ccompat/v7"  # what the stack starts and probes
    assert registry.client_config()["basic.auth.user.info"] == "sr-user:sr:pw"
    assert registry.client_config()["ssl.ca.location"] == "/etc/ssl/corp-ca.pem"
    assert registry.auth_headers() == {"Authorization": "Basic " + base64.b64encode(b"sr-user:sr:pw").decode()}
    assert registry.httpx_options()["verify"] == "/etc/ssl/corp-ca.pem"
    assert "sr:pw" not in repr(registry)


def test_registry_bearer_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDCHUB_REGISTRY__TOKEN", "tok")
    monkeypatch.setenv("CDCHUB_REGISTRY__LOGICAL_CLUSTER", "lsrc-1")
    registry = Settings().registry
    config = registry.client_config()
    assert config["bearer.auth.credentials.source"] == "STATIC_TOKEN" and config["bearer.auth.token"] == "tok"
    assert registry.auth_headers() == {"Authorization": "Bearer tok", "target-sr-cluster": "lsrc-1"}
    assert "tok" not in repr(registry).replace("token", "")


# --- Kingdee database -------------------------------------------------------------------------------------------------
def test_kingdee_db_tls_reaches_dsn_and_sqlalchemy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDCHUB_KINGDEE_DB__HOST", "pg.example.cn")
    monkeypatch.setenv("CDCHUB_KINGDEE_DB__PORT", "5432")
    monkeypatch.setenv("CDCHUB_KINGDEE_DB__SSLMODE", "verify-full")
    monkeypatch.setenv("CDCHUB_KINGDEE_DB__SSLROOTCERT", "/etc/ssl/rds ca.pem")
    monkeypatch.setenv("CDCHUB_KINGDEE_DB__PASSWORD", "p@ss w'rd\\x")
    db = Settings().kingdee_db
    parsed = psycopg2.extensions.parse_dsn(db.dsn())
    assert parsed == {"host": "pg.example.cn", "port": "5432", "dbname": "kingdee", "user": "cdchub",
                      "password": "p@ss w'rd\\x", "sslmode": "verify-full", "sslrootcert": "/etc/ssl/rds ca.pem"}
    url = make_url(db.sqlalchemy_url())
    assert (url.host, url.port, url.password) == ("pg.example.cn", 5432, "p@ss w'rd\\x")
    assert dict(url.query) == {"sslmode": "verify-full", "sslrootcert": "/etc/ssl/rds ca.pem"}


def test_kingdee_db_defaults_unchanged() -> None:
    db = KingdeeDbSettings(password="pw")  # type: ignore[arg-type]
    assert db.dsn() == "host=127.0.0.1 port=15432 dbname=kingdee user=cdchub password=pw"
    assert db.sqlalchemy_url() == "postgresql+psycopg2://cdchub:pw@127.0.0.1:15432/kingdee"


def test_a_wrong_sslmode_fails_naming_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDCHUB_KINGDEE_DB__SSLMODE", "verify")
    with pytest.raises(ValidationError, match="sslmode"):
        Settings()


def test_registry_settings_alone() -> None:
    assert RegistrySettings(url="http://r:1/x/").url == "http://r:1/x"
