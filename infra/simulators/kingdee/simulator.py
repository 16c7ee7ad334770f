"""One running Kingdee WebAPI simulator: its settings and the parts built from them, shared by all routes."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, create_engine

from infra.simulators.common.faults import FaultInjector
from infra.simulators.common.requestlog import RequestLog
from infra.simulators.common.sqlite import SqliteDb
from infra.simulators.kingdee.auth import Authenticator
from infra.simulators.kingdee.config import KingdeeSimConfig
from infra.simulators.kingdee.push import Pusher
from infra.simulators.kingdee.query import BillQuery
from infra.simulators.kingdee.save import DocumentWriter
from infra.simulators.kingdee.services import KingdeeApi
from infra.simulators.kingdee.status_ops import StatusOperations
from infra.simulators.kingdee.view import DocumentViewer


@dataclass
class KingdeeSimulator:
    config: KingdeeSimConfig
    db: SqliteDb
    engine: Engine
    auth: Authenticator
    api: KingdeeApi
    injector: FaultInjector
    request_log: RequestLog

    @classmethod
    def build(cls, config: KingdeeSimConfig) -> KingdeeSimulator:
        db = SqliteDb(config.db_path)
        engine = create_engine(config.database_url, future=True, pool_pre_ping=True, pool_size=10)
        auth = Authenticator(
            db, config.credentials, session_ttl_s=config.session_ttl_s, sign_window_s=config.sign_window_s
        )
        api = KingdeeApi(
            auth,
            DocumentWriter(engine, config.api_user_id, config.forms),
            StatusOperations(engine, config.api_user_id),
            DocumentViewer(engine),
            BillQuery(engine, config.max_query_limit),
            Pusher(engine, config.api_user_id),
            config.forms,
        )
        return cls(config, db, engine, auth, api, FaultInjector(config.fault_seed), RequestLog())

    def reset(self) -> None:
        """Forget sessions and put the session lifetime back; documents stay in the Kingdee database."""
        self.auth.expire_sessions()
        self.auth.session_ttl_s = self.config.session_ttl_s

    def close(self) -> None:
        self.engine.dispose()
        self.db.close()
