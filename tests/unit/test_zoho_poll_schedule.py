"""The ZOHO poller's schedule (connectors/zoho/source.py): a failing full poll waits its interval like any other."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from connectors.settings import Settings
from connectors.zoho.settings import ZohoSettings
from connectors.zoho.source import ZohoChangePoller
from core.errors import TransientError


class Down(ZohoChangePoller):
    """A poller whose CRM is down: every read fails."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, client=object())  # type: ignore[arg-type]
        self.polls = 0

    def prepare(self) -> None:
        return None

    def poll_module(self, module: str, *, deleted: bool = True) -> int:
        self.polls += 1
        raise TransientError("ZOHO GET Products: HTTP 503")


def test_a_crm_outage_is_polled_once_per_interval_not_in_a_tight_loop(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, zoho=ZohoSettings(poll_interval_s=30, poll_modules=["Products"],
                                                              watch_notify_url=""))
    poller = Down(settings)
    runner = threading.Thread(target=poller.run, daemon=True)
    runner.start()
    deadline = time.monotonic() + 5
    while poller.polls == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    quiet_until = time.monotonic() + 0.5  # a tight loop makes thousands of calls in this window
    while time.monotonic() < quiet_until:
        assert poller.polls == 1, f"{poller.polls} polls: the failing poll was repeated at once"
        time.sleep(0.01)
    poller.stop()
    runner.join(5)
    assert not runner.is_alive()
