"""The hub-wide sections of cdchub's configuration (Kafka, registry, console, runtime, flows, state), validated at
start; each system's section is next to its connector, and `connectors/settings.py` composes them into `Settings`.

Every setting comes from the environment (prefix ``CDCHUB_``, nested with ``__``) or from ``.env``-style files; a wrong
setting fails at start naming the field.  Secrets are ``SecretStr`` and are read from the environment or from files in
the secrets folder (``.cache/secrets`` for the local stack, written by ``cdchub up``); they are never logged.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr, model_validator

PROJECT_ROOT = Path(__file__).resolve().parent.parent


CACHE_DIR = PROJECT_ROOT / ".cache"


SECRETS_DIR = CACHE_DIR / "secrets"


def read_secret(name: str, default: str = "") -> str:
    """A secret from the local secrets folder (one file per secret), or ``default``."""
    path = SECRETS_DIR / name
    return path.read_text(encoding="utf-8").strip() if path.exists() else default


#: librdkafka settings whose values are secrets (besides any name containing "password" or "secret"): they never stay
#: in ``KafkaSettings.client`` (whose repr may reach a log line) but are kept as ``SecretStr`` and merged only into the
#: configuration handed to a client.
KAFKA_SECRET_KEYS = frozenset({"sasl.password", "ssl.key.password", "ssl.keystore.password", "ssl.key.pem",
                               "sasl.oauthbearer.client.secret", "sasl.oauthbearer.config"})


def _is_kafka_secret(key: str) -> bool:
    return key in KAFKA_SECRET_KEYS or "password" in key or "secret" in key


def _librdkafka_value(value: object) -> str:
    """librdkafka takes every setting as a string; JSON gives numbers and booleans too."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class KafkaSettings(BaseModel):
    """Kafka: where it is, how clients authenticate, how the project's topics are made.

    Every client of the installation (producers, consumers, admin clients, Bytewax's Kafka connectors) is configured
    by :meth:`client_config` alone.  Secrets (``sasl.password`` …) are ``SecretStr``: given in ``client`` they are
    moved out of it at validation, so ``repr(settings)`` and log lines never show them.
    """

    bootstrap_servers: str = "127.0.0.1:19092"
    controller_port: int = 19093
    #: The local stack's second listener, SASL_PLAINTEXT with SCRAM-SHA-512 (user ``cdchub``, password in the secrets
    #: file ``kafka_sasl_password``); 0: none.  Only the stack uses it (docs/stack.md).
    sasl_listener_port: int = 19094
    heap: str = "512m"
    topic_partitions: int = 3
    #: Once a flow's input has a message, how long it waits for more to come with it (ms).  At a steady 600 changes/s
    #: 10–20 ms of it cut the flow's CPU per record by ~15–20 % and its ZOHO calls (fewer, fuller); 0: no wait.
    input_linger_ms: int = 10
    #: Prefix of every topic this installation uses (isolates tests and side-by-side installations).
    topic_prefix: str = ""
    #: The largest event (key + value, before compression) the installation's topics take: 8 MiB, what managed
    #: Kafka services commonly allow.  A document whose event is bigger is dead-lettered (key, size, position) and
    #: the capture moves on; topics are created (or raised) to this limit.  See docs/capture.md "Document size".
    max_event_bytes: int = 8 * 1024 * 1024
    #: Replicas of every topic the project creates, and the in-sync replicas a write needs.  Unset: from the
    #: cluster's broker count when the topic is created — min(3, brokers) replicas, min ISR replicas - 1 (at least
    #: 1); see :meth:`replication_for`.
    replication_factor: int | None = Field(default=None, ge=1)
    min_insync_replicas: int | None = Field(default=None, ge=1)
    #: librdkafka settings for every client — producers, consumers, admin, Bytewax's — e.g. ``security.protocol``,
    #: ``sasl.mechanism``, ``ssl.ca.location`` (``CDCHUB_KAFKA__CLIENT='{"security.protocol": "SASL_SSL", ...}'``).
    client: dict[str, str] = Field(default_factory=dict)
    #: Secret librdkafka settings (``CDCHUB_KAFKA__CLIENT_SECRETS='{"ssl.key.password": "..."}'``); secret keys
    #: given in ``client`` land here too.
    client_secrets: dict[str, SecretStr] = Field(default_factory=dict)
    #: SASL credentials, merged into the client settings when ``security.protocol`` is ``SASL_*``.  The password
    #: defaults to the secrets file ``kafka_sasl_password`` (the local stack's SASL listener).
    sasl_username: str = ""
    sasl_password: SecretStr = Field(default_factory=lambda: SecretStr(read_secret("kafka_sasl_password")))

    @model_validator(mode="before")
    @classmethod
    def _secrets_out_of_client(cls, data: object) -> object:
        if not isinstance(data, dict) or "client" not in data:
            return data
        client = data["client"]
        if isinstance(client, str):  # a JSON object given as text
            client = json.loads(client or "{}")
        if not isinstance(client, dict):
            return data  # let the field's own validation name the problem
        plain = {str(k): _librdkafka_value(v) for k, v in client.items() if not _is_kafka_secret(str(k))}
        secret = {str(k): _librdkafka_value(v) for k, v in client.items() if _is_kafka_secret(str(k))}
        given = data.get("client_secrets") or {}
        if isinstance(given, str):
            given = json.loads(given or "{}")
        return {**data, "client": plain, "client_secrets": {**secret, **given}}

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    def client_config(self, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
        """The librdkafka configuration of every Kafka client of this installation (secrets included: hand it to
        a client, never to a log line), plus the caller's own ``overrides`` (``group.id`` …)."""
        config = {"bootstrap.servers": self.bootstrap_servers, **self.client}
        if config.get("security.protocol", "").upper().startswith("SASL"):
            if self.sasl_username:
                config["sasl.username"] = self.sasl_username
            if self.sasl_password.get_secret_value():
                config["sasl.password"] = self.sasl_password.get_secret_value()
        config.update({k: v.get_secret_value() for k, v in self.client_secrets.items()})
        config.update(overrides or {})
        return config

    def replication_for(self, brokers: int) -> tuple[int, int]:
        """(replication factor, min.insync.replicas) of a new topic on a cluster of ``brokers`` brokers: the
        settings when given, else min(3, brokers) replicas and one fewer in sync (at least 1) — a write survives
        one broker down, and a single-broker cluster still works."""
        replicas = self.replication_factor or max(1, min(3, brokers))
        min_isr = self.min_insync_replicas or max(1, replicas - 1)
        return replicas, min_isr


class RegistrySettings(BaseModel):
    """The schema registry (Confluent-compatible API): where it is and how cdchub signs in.

    ``url`` defaults to the local stack's Apicurio (``http://127.0.0.1:<port>/apis/ccompat/v7``); the stack starts
    Apicurio on ``port`` whatever ``url`` says.  Credentials: HTTP basic (``username`` + ``password``) and/or a bearer
    ``token``; every client — the confluent ``SchemaRegistryClient`` (:meth:`client_config`) and plain HTTP calls
    (:meth:`auth_headers`) — sends them.
    """

    port: int = 18081
    management_port: int = 18082  # Quarkus management interface (health/metrics); its default 9000 clashes easily
    heap: str = "256m"
    compatibility: str = "BACKWARD"
    #: The registry's Confluent-compatible base URL, e.g. ``https://registry.example.cn/apis/ccompat/v7``; empty:
    #: the local stack's.
    url: str = ""
    username: str = ""
    password: SecretStr = Field(default_factory=lambda: SecretStr(read_secret("registry_password")))
    token: SecretStr = Field(default_factory=lambda: SecretStr(read_secret("registry_token")))
    #: Confluent Cloud's ``target-sr-cluster`` (``lsrc-…``), sent with a bearer token; other registries ignore it.
    logical_cluster: str = ""
    #: A CA bundle to verify the registry's certificate (a private CA); empty: the system's.
    ca_location: str = ""
    timeout_s: float = Field(default=10.0, gt=0)

    @model_validator(mode="after")
    def _default_url(self) -> RegistrySettings:
        object.__setattr__(self, "url", (self.url or self.local_url()).rstrip("/"))
        return self

    def local_url(self) -> str:
        """The local stack's Apicurio, whatever ``url`` says (the stack starts and probes this one)."""
        return f"http://127.0.0.1:{self.port}/apis/ccompat/v7"

    def client_config(self) -> dict[str, Any]:
        """The confluent-kafka ``SchemaRegistryClient`` configuration (secrets included: never log it)."""
        config: dict[str, Any] = {"url": self.url, "timeout": self.timeout_s}
        if self.username:
            config["basic.auth.user.info"] = f"{self.username}:{self.password.get_secret_value()}"
        if self.token.get_secret_value():
            config.update({"bearer.auth.credentials.source": "STATIC_TOKEN",
                           "bearer.auth.token": self.token.get_secret_value(),
                           "bearer.auth.logical.cluster": self.logical_cluster})
        if self.ca_location:
            config["ssl.ca.location"] = self.ca_location
        return config

    def auth_headers(self) -> dict[str, str]:
        """Headers of a plain HTTP call to the registry (httpx): its credentials, if any."""
        if self.token.get_secret_value():
            headers = {"Authorization": f"Bearer {self.token.get_secret_value()}"}
            return {**headers, "target-sr-cluster": self.logical_cluster} if self.logical_cluster else headers
        if self.username:
            basic = base64.b64encode(f"{self.username}:{self.password.get_secret_value()}".encode()).decode()
            return {"Authorization": f"Basic {basic}"}
        return {}

    def httpx_options(self) -> dict[str, Any]:
        """``httpx.Client(**registry.httpx_options())``: base URL, credentials, CA and timeout of the registry."""
        return {"base_url": self.url, "headers": self.auth_headers(), "timeout": self.timeout_s,
                "verify": self.ca_location or True}


class ConsoleSettings(BaseModel):
    """The web console (``cdchub console``): where it listens and its one user's password.

    The password comes from ``CDCHUB_CONSOLE__PASSWORD`` or the secrets file ``console_password`` (the console
    generates that file, mode 600, when neither is set).  Only a salted hash of it is kept in memory.
    """

    host: str = "127.0.0.1"
    port: int = 18100
    user: str = "cdchub"
    password: SecretStr = Field(default_factory=lambda: SecretStr(read_secret("console_password")))
    #: How long a sign-in lasts.
    session_ttl_s: int = 8 * 3600


class RuntimeSettings(BaseModel):
    """How ``cdchub run`` starts each dataflow (``docs/runtime.md``)."""

    #: Bytewax workers (threads) per process.
    workers: int = Field(default=1, ge=1, le=16)
    #: Local processes per dataflow (they talk over 127.0.0.1:<base_port + 10 × dataflow index + i>).
    processes: int = Field(default=1, ge=1, le=16)
    base_port: int = 2101


class FlowSettings(BaseModel):
    """Tunables of the business flows (``CDCHUB_FLOWS__…``; ``docs/erp-documents.md``, ``docs/expenses.md``)."""

    #: Changes of one sales order's deliveries are written at most this often: a burst, or a replayed backlog,
    #: becomes one write per order.
    deliveries_coalesce_ms: float = Field(default=300.0, ge=0)
    #: Writes of one material's stock are at least this far apart.
    inventory_coalesce_ms: float = Field(default=1000.0, ge=0)
    #: How long a stock total is looked up often while its material is not in the CRM; afterwards it is parked
    #: (looked up every 30 s).
    inventory_unsynced_give_up_ms: float = Field(default=60_000.0, ge=0)
    #: Changes of one campaign's cost are gathered this long before the write.
    campaign_costs_coalesce_ms: float = Field(default=300.0, ge=0)
    #: How long an invoice or receipt waits for the sales order it names to reach the CRM before it is written
    #: unlinked (at most half of ``reference_wait_s``).
    order_link_wait_s: float = Field(default=60.0, ge=0)
    #: The expense rules file; unset: ``flows/mappings/expenses.toml``.
    expenses_mapping: Path | None = None
