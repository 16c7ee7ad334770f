"""The loop every REST poller shares: prepare once, poll, log what was sent, wait the interval or until stopped.

A failed preparation or poll is logged and retried at the next interval (a poller's cursor moves only after Kafka
acknowledged, so nothing is lost by failing); :meth:`PollLoop.stop` (SIGINT/SIGTERM in a poller's own process, the
``pollers`` process's main thread otherwise) stops it between polls.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

log = logging.getLogger(__name__)


class PollLoop:
    #: For log lines: "Weaver poll: 3 request versions".
    source_name = "?"
    unit = "changes"

    def __init__(self) -> None:
        self._stop = threading.Event()

    def prepare(self) -> None:
        """Once before the first poll (topics, schemas)."""

    def poll_once(self) -> int:
        """One poll; returns how many events were sent."""
        raise NotImplementedError

    def interval_s(self) -> float:
        raise NotImplementedError

    def stop(self, *_: Any) -> None:
        self._stop.set()

    def run(self, *, once: bool = False) -> None:
        while not self._stop.is_set():
            try:
                self.prepare()
                break
            except Exception as exc:  # the source or Kafka not there yet: try again, do not die
                log.warning("%s poller cannot start yet (retrying in %.0fs): %s", self.source_name,
                            self.interval_s(), exc)
                self._stop.wait(self.interval_s())
        while not self._stop.is_set():
            try:
                sent = self.poll_once()
                if sent:
                    log.info("%s poll: %d %s", self.source_name, sent, self.unit)
            except Exception as exc:  # transient trouble must not stop polling; the cursor did not move
                log.warning("%s poll failed (will retry): %s", self.source_name, exc)
            if once:
                return
            self._stop.wait(self.interval_s())

    def stop_on_signals(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
