"""One access token per credential per installation, shared by every cdchub process, refreshed only when needed.

A subclass says how to get a token (:meth:`CachedToken._fetch`); this class decides when: only when there is none,
when it is due to expire, or after the server refused it (:meth:`CachedToken.invalidate`).

**Shared** (after ``shared_state.share``, which every long-running cdchub process does with the state dir): the token,
its expiry, the moments tokens were minted and a refusal's "not before" live in
``<state dir>/tokens/<credential>.json`` (mode 600) under a file lock, so all processes of an installation use one
token and one refresh budget — ZOHO allows a refresh token 10 mints per 10 minutes per org, however many processes
run.  Without it (unit tests, one-off scripts) the same state lives in the process.  Thread-safe: concurrent callers
wait for one fetch instead of each fetching.

**A token that cannot be had now** (the mint budget is used up, or the server refused a refresh) raises
:class:`TokenUnavailable` with the time to wait.  It is not a mint, it is remembered for every process (no process
asks again before that time), and it is never a record's fault: retry loops wait for it without spending the
record's retry budget (``retry.py``).
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from connectors.common.shared_state import locked_record, read_records
from core.errors import TransientError

TOKENS = "tokens"

log = logging.getLogger(__name__)

#: How long to wait after a refused refresh when the server does not say and no mint history tells.
DEFAULT_REFUSAL_WAIT_S = 60.0

class TokenUnavailable(TransientError):
    """No token can be had before ``retry_after`` seconds: wait and try again; not a failure of any record."""


@dataclass(frozen=True)
class Token:
    value: str
    #: Wall-clock time (epoch s) after which the token is not used any more (already less a safety margin).
    expires_at: float
    #: What else the token endpoint said that users of the token need (e.g. ZOHO's ``api_domain``).
    extra: dict[str, str] = field(default_factory=dict)


class CachedToken(ABC):
    #: At most this many tokens per ``mint_window_s`` (None: no limit known).
    mint_limit: int | None = None
    mint_window_s: float = 600.0

    def __init__(self, credential: str) -> None:
        """``credential`` names the credential in the shared store (e.g. its host and client id, no secret)."""
        self.credential = credential
        self._lock = threading.Lock()
        self._token: Token | None = None
        self._local: dict[str, Any] = {}  # the record when nothing is shared
        #: Tokens this process minted, and refreshes refused to it (for status and tests).
        self.mint_count = 0
        self.refusals = 0

    @property
    def current(self) -> Token | None:
        return self._token

    def token(self) -> str:
        with self._lock:
            if self._token is None or time.time() >= self._token.expires_at:
                self._token = self._obtain()
            return self._token.value

    def invalidate(self, token: str) -> None:
        """Drop ``token`` if it is still the current one (a 401 on a call made with it), here and in the store."""
        with self._lock:
            if self._token is not None and self._token.value == token:
                self._token = None
            with self._state() as state:
                if (state.get("token") or {}).get("value") == token:
                    state["token"] = None

    def _obtain(self) -> Token:
        with self._state() as state:
            now = time.time()
            stored = state.get("token")
            if stored and now < float(stored["expires_at"]):
                return Token(stored["value"], float(stored["expires_at"]), dict(stored.get("extra") or {}))
            not_before = float(state.get("not_before") or 0)
            if now < not_before:
                raise TokenUnavailable(f"{self.credential}: no token before {not_before - now:.0f}s (a refresh was "
                                       "refused or the refresh budget is used up)", retry_after=not_before - now)
            mints = [t for t in state.get("mints") or [] if now - t < self.mint_window_s]
            state["mints"] = mints
            if self.mint_limit is not None and len(mints) >= self.mint_limit:
                wait = mints[0] + self.mint_window_s - now
                state["not_before"] = now + wait
                raise TokenUnavailable(f"{self.credential}: {len(mints)} tokens minted in the last "
                                       f"{self.mint_window_s:.0f}s, the most allowed; next in {wait:.0f}s",
                                       retry_after=wait)
            try:
                token = self._fetch()
            except TokenUnavailable as exc:
                wait = exc.retry_after or (mints[0] + self.mint_window_s - now if mints else DEFAULT_REFUSAL_WAIT_S)
                state["not_before"] = now + wait
                state["refusals"] = int(state.get("refusals") or 0) + 1
                state["last_refusal_at"], state["last_refusal"] = now, str(exc)[:300]  # for `cdchub status`
                self.refusals += 1
                raise TokenUnavailable(f"{exc} (not asking again for {wait:.0f}s)", retry_after=wait) from exc
            state["mints"] = [*mints, now]
            state["token"] = asdict(token)
            self.mint_count += 1
            log.info("%s: new access token (%d minted in the last %.0fs by this installation)", self.credential,
                     len(state["mints"]), self.mint_window_s)
            return token

    def _state(self) -> AbstractContextManager[dict[str, Any]]:
        return locked_record(TOKENS, self.credential, self._local)

    @abstractmethod
    def _fetch(self) -> Token:
        """A new token.  Raise :class:`TokenUnavailable` when the server refuses to mint one now."""


def token_stats(state_dir: Path) -> dict[str, dict[str, Any]]:
    """Every shared credential's record without its token (for ``cdchub status``): mints, refusals (with the last
    one's time and reason), not-before."""
    return {name: {k: v for k, v in record.items() if k != "token"}
            for name, record in read_records(state_dir, TOKENS).items()}
