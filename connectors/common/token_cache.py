"""One cached OAuth access token per client, shared by the connectors that fetch their own tokens.

A subclass says how to get a token (:meth:`CachedToken._fetch`); this class decides when: only when there is
none, when it is due to expire, or after the server refused it (:meth:`CachedToken.invalidate`). Thread-safe:
concurrent callers wait for one fetch instead of each fetching.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod


class CachedToken(ABC):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._token: str | None = None  # the cached token, seen by ``_fetch`` as the previous one
        self._expires_at = 0.0  # time.monotonic() after which the token is not used any more

    def token(self) -> str:
        with self._lock:
            if self._token is None or time.monotonic() >= self._expires_at:
                self._token, self._expires_at = self._fetch()
            return self._token

    def invalidate(self, token: str) -> None:
        """Drop ``token`` if it is still the cached one (a 401 on a call made with it)."""
        with self._lock:
            if self._token == token:
                self._token = None

    @abstractmethod
    def _fetch(self) -> tuple[str, float]:
        """A new token and the ``time.monotonic()`` moment to stop using it. Called with the lock held."""
