"""One running Weaver OA simulator: its settings and the parts built from them, shared by all routes."""

from __future__ import annotations

from dataclasses import dataclass

from infra.simulators.common.faults import FaultInjector
from infra.simulators.common.requestlog import RequestLog
from infra.simulators.common.sqlite import SqliteDb
from infra.simulators.weaver.approval_driver import ApprovalDriver
from infra.simulators.weaver.clock import OaClock
from infra.simulators.weaver.config import WeaverSimConfig
from infra.simulators.weaver.directory import USERS
from infra.simulators.weaver.engine import WorkflowEngine
from infra.simulators.weaver.files import FileStore
from infra.simulators.weaver.requests_store import RequestStore
from infra.simulators.weaver.tokens import TokenAuthority
from infra.simulators.weaver.views import Views
from infra.simulators.weaver.workflows import WORKFLOWS


@dataclass
class WeaverSimulator:
    config: WeaverSimConfig
    db: SqliteDb
    authority: TokenAuthority
    files: FileStore
    store: RequestStore
    engine: WorkflowEngine
    views: Views
    driver: ApprovalDriver
    injector: FaultInjector
    request_log: RequestLog

    @classmethod
    def build(cls, config: WeaverSimConfig) -> WeaverSimulator:
        db = SqliteDb(config.db_path)
        authority = TokenAuthority(
            db,
            app_ids=config.app_ids,
            users=USERS,
            ttl_s=config.token_ttl_s,
            max_ttl_s=config.max_token_ttl_s,
        )
        files = FileStore(db)
        store = RequestStore(db)
        engine = WorkflowEngine(store, files, WORKFLOWS, USERS, OaClock(config.utc_offset_h))
        return cls(
            config=config, db=db, authority=authority, files=files, store=store, engine=engine,
            views=Views(engine), driver=ApprovalDriver(engine, config.driver),
            injector=FaultInjector(config.fault_seed), request_log=RequestLog(),
        )  # fmt: skip

    def reset(self) -> None:
        """Forget requests, logs, scripts, files and tokens; driver settings and token TTL back to the flags.

        Registrations (``secrit``) and the server key pair stay, like the app's row in the real OA. Fault
        rules and the request log are cleared by the shared ``/__sim/reset`` route.
        """
        with self.db.transaction():
            self.store.reset()
            self.files.reset()
            self.authority.reset()
        self.authority.ttl_s = self.config.token_ttl_s
        self.driver.reset()

    def close(self) -> None:
        self.db.close()
