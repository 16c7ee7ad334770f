"""One running Huilianyi simulator: its settings and the parts built from them, shared by all routes."""

from __future__ import annotations

from dataclasses import dataclass

from infra.simulators.common.faults import FaultInjector
from infra.simulators.common.requestlog import RequestLog
from infra.simulators.common.sqlite import SqliteDb
from infra.simulators.huilianyi.auth import TokenAuthority
from infra.simulators.huilianyi.config import HuilianyiSimConfig
from infra.simulators.huilianyi.driver import DriverSettings, ReportDriver
from infra.simulators.huilianyi.generator import ReportFactory
from infra.simulators.huilianyi.reports import ReportStore
from infra.simulators.huilianyi.workflow import ReportWorkflow


@dataclass
class HuilianyiSimulator:
    config: HuilianyiSimConfig
    db: SqliteDb
    store: ReportStore
    workflow: ReportWorkflow
    driver: ReportDriver
    authority: TokenAuthority
    injector: FaultInjector
    request_log: RequestLog

    @classmethod
    def build(cls, config: HuilianyiSimConfig) -> HuilianyiSimulator:
        db = SqliteDb(config.db_path)
        store = ReportStore(db)
        workflow = ReportWorkflow(store)
        driver = ReportDriver(
            store,
            workflow,
            ReportFactory(config.company_code, config.company_oid),
            DriverSettings(interval_s=config.driver_interval_s, campaign_ids=config.campaign_ids),
            seed=config.driver_seed,
        )
        return cls(
            config=config,
            db=db,
            store=store,
            workflow=workflow,
            driver=driver,
            authority=TokenAuthority(db, config.credentials, ttl_s=config.token_ttl_s),
            injector=FaultInjector(config.fault_seed),
            request_log=RequestLog(),
        )

    def reset(self) -> None:
        """Forget reports, history and tokens; driver settings and token lifetime back to the flags' values.

        Fault rules and the request log are cleared by the caller (the shared ``/__sim/reset`` route). The id
        and business-code counter keeps counting, so a code seen before a reset never names another report.
        """
        self.store.reset()
        self.authority.reset()
        self.authority.ttl_s = self.config.token_ttl_s
        self.driver.reset()

    def close(self) -> None:
        self.db.close()
