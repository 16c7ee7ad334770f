"""Settings of the ZOHO CRM connector (``CDCHUB_ZOHO__*``)."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr

from core.settings import read_secret


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
    #: How long a write of fewer than 10 records (one credit's worth) may wait for more to join it while changes keep
    #: coming (a lone change goes at once).  ZOHO charges a credit per call of up to 10 records, so at a steady few
    #: hundred changes a second calls of 2–3 records cost 3–5× the credits and most of the flow's CPU; 0: never.
    batch_linger_ms: int = 30
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
