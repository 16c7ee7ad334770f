"""One running ZOHO CRM simulator: its settings and the parts built from them, shared by all routes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from infra.simulators.common.faults import FaultInjector
from infra.simulators.common.requestlog import RequestLog
from infra.simulators.common.sqlite import SqliteDb
from infra.simulators.zoho.attachments import AttachmentStore
from infra.simulators.zoho.auth import ApiUser, TokenAuthority
from infra.simulators.zoho.catalog import MODULES
from infra.simulators.zoho.config import ZohoSimConfig
from infra.simulators.zoho.convert import LeadConverter
from infra.simulators.zoho.limits import ConcurrencyGate, CreditMeter
from infra.simulators.zoho.modules import ModuleDef
from infra.simulators.zoho.reader import RecordReader
from infra.simulators.zoho.search_index import SearchIndex
from infra.simulators.zoho.store import RecordStore
from infra.simulators.zoho.timefmt import ZohoClock
from infra.simulators.zoho.watch import Notifier, WatchRegistry
from infra.simulators.zoho.writer import RecordWriter


@dataclass
class ZohoSimulator:
    config: ZohoSimConfig
    modules: Mapping[str, ModuleDef]
    clock: ZohoClock
    db: SqliteDb
    store: RecordStore
    authority: TokenAuthority
    writer: RecordWriter
    reader: RecordReader
    concurrency: ConcurrencyGate
    credits: CreditMeter
    injector: FaultInjector
    request_log: RequestLog
    integration_user: ApiUser
    attachments: AttachmentStore
    watches: WatchRegistry
    notifier: Notifier
    converter: LeadConverter
    search_index: SearchIndex

    @classmethod
    def build(cls, config: ZohoSimConfig, modules: Mapping[str, ModuleDef] = MODULES) -> ZohoSimulator:
        clock = ZohoClock(config.utc_offset)
        db = SqliteDb(config.db_path)
        store = RecordStore(db)
        search_index = SearchIndex(round(config.search_lag_s * 1000))
        store.on_write = search_index.written
        authority = TokenAuthority(
            db,
            ttl_s=config.token_ttl_s,
            tokens_per_window=config.tokens_per_window,
            window_s=config.token_window_s,
        )
        user = authority.register_client(config.credentials, config.integration_user, config.scopes)
        writer = RecordWriter(store, modules, clock)
        watches = WatchRegistry(db, modules, clock)
        notifier = Notifier(watches)
        writer.listener = notifier.on_change
        return cls(
            config=config,
            modules=modules,
            clock=clock,
            db=db,
            store=store,
            authority=authority,
            writer=writer,
            reader=RecordReader(store, clock, modules, search_index),
            concurrency=ConcurrencyGate(config.max_concurrency),
            credits=CreditMeter(config.daily_credits),
            injector=FaultInjector(config.fault_seed),
            request_log=RequestLog(),
            integration_user=user,
            attachments=AttachmentStore(db, config.state_dir),
            watches=watches,
            notifier=notifier,
            converter=LeadConverter(store, writer, modules, clock),
            search_index=search_index,
        )

    def reset(self) -> None:
        """Forget records, tokens, mints, extra clients, spent credits; limits and the search lag back to the
        configured values.

        Fault rules and the request log are cleared by the caller (the shared ``/__sim/reset`` route).
        """
        self.store.reset()
        self.search_index.reset(round(self.config.search_lag_s * 1000))
        self.attachments.reset()
        self.watches.reset()
        self.notifier.clear()
        self.authority.reset(keep_client_ids={self.config.credentials.client_id})
        self.authority.ttl_s = self.config.token_ttl_s
        self.authority.tokens_per_window = self.config.tokens_per_window
        self.authority.window_s = self.config.token_window_s
        self.concurrency.limit = self.config.max_concurrency
        self.credits.budget = self.config.daily_credits
        self.credits.reset()

    def close(self) -> None:
        self.notifier.close()
        self.attachments.close()
        self.db.close()
