"""Configuration of cdchub, validated at start.

Every setting comes from the environment (prefix ``CDCHUB_``, nested with ``__``) or from ``.env``-style files; a wrong
setting fails at start naming the field.  Secrets are ``SecretStr`` and are read from the environment or from files in
the secrets folder (``.cache/secrets`` for the local stack, written by ``cdchub up``); they are never logged.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = PROJECT_ROOT / ".cache"
SECRETS_DIR = CACHE_DIR / "secrets"


def read_secret(name: str, default: str = "") -> str:
    """A secret from the local secrets folder (one file per secret), or ``default``."""
    path = SECRETS_DIR / name
    return path.read_text(encoding="utf-8").strip() if path.exists() else default


class KafkaSettings(BaseModel):
    bootstrap_servers: str = "127.0.0.1:19092"
    controller_port: int = 19093
    heap: str = "512m"
    topic_partitions: int = 3
    #: Prefix of every topic this installation uses (isolates tests and side-by-side installations).
    topic_prefix: str = ""
    #: The largest event (key + value, before compression) the installation's topics take: 8 MiB, what managed
    #: Kafka services commonly allow.  A document whose event is bigger is dead-lettered (key, size, position) and
    #: the capture moves on; topics are created (or raised) to this limit.  See docs/capture.md "Document size".
    max_event_bytes: int = 8 * 1024 * 1024
    #: Replicas of every topic the project creates, and the in-sync replicas a write needs (None: the broker's).
    replication_factor: int = 1
    min_insync_replicas: int | None = None
    #: librdkafka settings for every client — producers, consumers, admin — e.g. ``security.protocol``, ``sasl.*``,
    #: ``ssl.*`` (``CDCHUB_KAFKA__CLIENT='{"security.protocol": "SASL_SSL", ...}'``).
    client: dict[str, str] = Field(default_factory=dict)

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    def client_config(self) -> dict[str, str]:
        """Connection settings of every Kafka client of this installation."""
        return {"bootstrap.servers": self.bootstrap_servers, **self.client}


class RegistrySettings(BaseModel):
    port: int = 18081
    management_port: int = 18082  # Quarkus management interface (health/metrics); its default 9000 clashes easily
    heap: str = "256m"
    compatibility: str = "BACKWARD"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/apis/ccompat/v7"


class KingdeeDbSettings(BaseModel):
    """The Kingdee database (PostgreSQL with logical decoding)."""

    host: str = "127.0.0.1"
    port: int = 15432
    database: str = "kingdee"
    user: str = "cdchub"
    password: SecretStr = Field(default_factory=lambda: SecretStr(read_secret("pg_password")))
    slot: str = "cdchub_kingdee"
    #: The publication the capture's slot reads (pgoutput).  With ``publication_autocreate`` the capture creates it
    #: (or adds missing tables) when its role owns the tables; otherwise it stops and prints the DBA's statements.
    publication: str = "cdchub_kingdee"
    publication_autocreate: bool = True

    def sqlalchemy_url(self) -> str:
        pw = self.password.get_secret_value()
        return f"postgresql+psycopg2://{self.user}:{pw}@{self.host}:{self.port}/{self.database}"

    def dsn(self) -> str:
        pw = self.password.get_secret_value()
        return f"host={self.host} port={self.port} dbname={self.database} user={self.user} password={pw}"


class ZohoSettings(BaseModel):
    """ZOHO CRM: accounts host for OAuth, API domain for calls (both the simulator locally)."""

    accounts_url: str = "http://127.0.0.1:18090"
    api_domain: str = "http://127.0.0.1:18090"
    api_version: str = "v8"
    client_id: str = Field(default_factory=lambda: read_secret("zoho_client_id", "1000.CDCHUBLOCAL"))
    client_secret: SecretStr = Field(default_factory=lambda: SecretStr(read_secret("zoho_client_secret")))
    refresh_token: SecretStr = Field(default_factory=lambda: SecretStr(read_secret("zoho_refresh_token")))
    timeout_s: float = 10.0
    max_concurrency: int = 5
    #: The org's API credits per rolling 24 h (Standard: 50,000 + 250 per user); `cdchub status` shows the share used.
    daily_credits: int = 50_000
    #: Change polling without notifications.  Budget: each module costs 2 calls per poll (records, deleted); at 30 s
    #: and five modules that is ~28,800 of the Standard edition's 50,000 daily credits.
    poll_interval_s: float = 30.0
    poll_overlap_s: float = 2.0
    poll_modules: list[str] = ["Products", "Accounts", "Leads", "Sales_Orders", "Campaigns"]
    #: Watch notifications (on by default, for the local stack): where ZOHO can reach us, e.g.
    #: https://cdchub.example.cn/zoho/notify behind the company's reverse proxy; empty: off (polling only).  A
    #: notification wakes the poller at once for the module it names, so CRM changes arrive in well under a second.
    watch_notify_url: str = "http://127.0.0.1:18099/zoho/notify"
    #: Where the notification listener binds (``host:port``); empty: the notify URL's host and port.
    watch_listen: str = ""
    #: While notifications are on, the full poll is only a safety net (a notification ZOHO never sent).
    safety_poll_interval_s: float = 300.0
    #: At most one notification-driven poll of a module per this many seconds (a burst of writes, ours included,
    #: becomes one read).
    watch_min_gap_s: float = 1.0
    #: Modules read too when one is notified: converting a lead creates an account (notified) while the lead's
    #: own change may come with no notification of its own.
    watch_also: dict[str, list[str]] = {"Accounts": ["Leads"]}
    #: Extra list parameters per module: converted leads leave the Leads list unless asked for.
    poll_params: dict[str, dict[str, str]] = {"Leads": {"converted": "both"}}


class KingdeeApiSettings(BaseModel):
    """Kingdee K/3 Cloud WebAPI (the simulator locally): where edits from the CRM are saved."""

    base_url: str = "http://127.0.0.1:18091/K3Cloud"
    acct_id: str = Field(default_factory=lambda: read_secret("kingdee_acct_id"))
    user: str = Field(default_factory=lambda: read_secret("kingdee_user"))
    app_id: str = Field(default_factory=lambda: read_secret("kingdee_app_id"))
    app_secret: SecretStr = Field(default_factory=lambda: SecretStr(read_secret("kingdee_app_secret")))
    timeout_s: float = 30.0


class WeaverSettings(BaseModel):
    """Weaver e-cology OA (the simulator locally): approval workflows for campaigns and contracts."""

    base_url: str = "http://127.0.0.1:18092"
    #: The secrets file may list several ids, one per line (the simulator accepts all); the first is ours.
    app_id: SecretStr = Field(default_factory=lambda: SecretStr(read_secret("weaver_app_id").split("\n")[0]))
    user_id: int = 1  # the OA user business calls act as
    token_ttl_s: int = 1800
    timeout_s: float = 30.0
    poll_interval_s: float = 10.0


class HuilianyiSettings(BaseModel):
    """Huilianyi 汇联易 (the simulator locally): expense reports."""

    #: ``https://api.huilianyi.com/gateway`` in production; the simulator locally.
    base_url: str = "http://127.0.0.1:18093"
    app_id: str = Field(default_factory=lambda: read_secret("huilianyi_app_id"))
    app_secret: SecretStr = Field(default_factory=lambda: SecretStr(read_secret("huilianyi_app_secret")))
    scope: str = "write"
    timeout_s: float = 10.0
    page_size: int = Field(default=100, ge=1, le=100)
    poll_interval_s: float = 10.0


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


class CaptureSettings(BaseModel):
    """How Kingdee changes are captured (``docs/capture-modes.md``): ``log`` reads PostgreSQL's write-ahead log
    (sub-second, every version, before-images); ``query`` polls any database SQLAlchemy reaches (SQL Server, Oracle
    …) by ``FMODIFYDATE``; ``webapi`` polls Kingdee's WebAPI (Kingdee Cloud, no database access)."""

    mode: Literal["log", "query", "webapi"] = "log"
    #: Seconds between polls (``query``: 1, ``webapi``: 5 when unset).
    interval_s: float | None = Field(default=None, gt=0)
    #: How far behind the newest modified time each poll looks again (commit lag, application servers' clocks).
    margin_s: float = Field(default=10.0, ge=0)
    #: The modified time's resolution: a document read at the newest time is read again until the source's clock
    #: passed it by this much (two saves within one tick show the same time).
    resolution_s: float = Field(default=1.0, ge=0)
    #: Seconds between key-set comparisons (how soon a deletion is seen).
    keyset_interval_s: float = Field(default=30.0, gt=0)
    #: Seconds between full comparisons (changes that did not move the modified time); 0: never.
    full_compare_interval_s: float = Field(default=3600.0, ge=0)
    #: Keys per bucket of the key-set summary.
    bucket_size: int = Field(default=1024, ge=1)
    #: ``query`` mode: the Kingdee database as a SQLAlchemy URL (``mssql+pyodbc://…``, ``oracle+oracledb://…``);
    #: unset: the ``kingdee_db`` settings (PostgreSQL).
    query_url: SecretStr | None = None
    #: ``query`` mode: the schema of Kingdee's tables (SQL Server: ``dbo``), unset: the connection's default.
    query_schema: str | None = None

    def poll_interval_s(self) -> float:
        return self.interval_s or (5.0 if self.mode == "webapi" else 1.0)


class RuntimeSettings(BaseModel):
    """How ``cdchub run`` starts each dataflow (``docs/runtime.md``)."""

    #: Bytewax workers (threads) per process.
    workers: int = Field(default=1, ge=1, le=16)
    #: Local processes per dataflow (they talk over 127.0.0.1:<base_port + 10 × dataflow index + i>).
    processes: int = Field(default=1, ge=1, le=16)
    base_port: int = 2101


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CDCHUB_", env_nested_delimiter="__", frozen=True, extra="ignore"
    )

    kafka: KafkaSettings = KafkaSettings()
    registry: RegistrySettings = RegistrySettings()
    kingdee_db: KingdeeDbSettings = Field(default_factory=KingdeeDbSettings)
    zoho: ZohoSettings = Field(default_factory=ZohoSettings)
    kingdee_api: KingdeeApiSettings = Field(default_factory=KingdeeApiSettings)
    weaver: WeaverSettings = Field(default_factory=WeaverSettings)
    huilianyi: HuilianyiSettings = Field(default_factory=HuilianyiSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    runtime: RuntimeSettings = RuntimeSettings()
    capture: CaptureSettings = CaptureSettings()
    state_dir: Path = CACHE_DIR / "state"
    #: Logs of ``cdchub run``'s processes (``<name>.log``).
    run_log_dir: Path = CACHE_DIR / "run"
    ledger_url: str = ""
    #: State, pid files and logs of the local simulators (another folder and other ports give a second set).
    simulators_dir: Path = CACHE_DIR / "simulators"
    zoho_simulator_port: int = 18090
    kingdee_webapi_simulator_port: int = 18091
    weaver_simulator_port: int = 18092
    huilianyi_simulator_port: int = 18093
    #: How long the local ZOHO simulator's ``/search`` trails writes, like the real search index (0: at once).
    zoho_simulator_search_lag_s: float = Field(default=2.0, ge=0)
    #: Seconds between capture heartbeats (they keep an idle slot from pinning WAL).
    capture_heartbeat_s: float = 5.0
    #: How long a document waits for a record it references (an order's customer, its materials) to reach the
    #: target before it is dead-lettered naming it.
    reference_wait_s: float = 300.0

    def ledger_database_url(self) -> str:
        return self.ledger_url or f"sqlite:///{self.state_dir / 'ledger.db'}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
