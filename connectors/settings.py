"""The one ``Settings`` of an installation: the hub-wide sections (``core.settings``) and each system's (next to
its connector), from the environment (prefix ``CDCHUB_``, nested with ``__``).  See ``core/settings.py`` for how
secrets are read."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from connectors.huilianyi.settings import HuilianyiSettings
from connectors.kingdee.settings import CaptureSettings, KingdeeApiSettings, KingdeeDbSettings
from connectors.weaver.settings import WeaverSettings
from connectors.zoho.settings import ZohoSettings
from core.settings import CACHE_DIR, ConsoleSettings, FlowSettings, KafkaSettings, RegistrySettings, RuntimeSettings


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
    flows: FlowSettings = FlowSettings()
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
