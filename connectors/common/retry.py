"""Retry with capped exponential backoff and full jitter: the one retry loop every connector uses."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from connectors.common.token_cache import TokenUnavailable
from core.errors import PermanentError, TransientError

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    first_delay_s: float = 0.2
    max_delay_s: float = 10.0
    #: Give up (raise the last transient error) after this long; the caller dead-letters the record then.
    give_up_after_s: float = 300.0


class GaveUp(PermanentError):
    """A transient error persisted past the policy's deadline."""

    def __init__(self, message: str, attempts: int) -> None:
        super().__init__(message, code="RETRIES_EXHAUSTED")
        self.attempts = attempts


def call_with_retry(
    fn: Callable[[], T],
    what: str,
    policy: RetryPolicy = RetryPolicy(),
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[T, int]:
    """Run ``fn`` until it succeeds; returns (result, attempts).  Permanent errors pass through at once.

    Waiting for an access token (``TokenUnavailable``: the org's refresh budget is used up, or a refresh was refused)
    is nobody's failure: it is waited out without spending the give-up budget, however long it takes."""
    start = clock()
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn(), attempt
        except PermanentError:
            raise
        except TokenUnavailable as exc:
            delay = max(policy.first_delay_s, exc.retry_after or policy.max_delay_s)
            log.warning("%s waits %.0fs for an access token: %s", what, delay, exc)
            sleep(delay)
            start += delay
            attempt -= 1
        except Exception as exc:  # unknown errors count as transient
            elapsed = clock() - start
            if elapsed >= policy.give_up_after_s:
                raise GaveUp(f"{what}: still failing after {attempt} attempts: {exc}", attempt) from exc
            delay = min(policy.max_delay_s, policy.first_delay_s * 2 ** (attempt - 1))
            delay = random.uniform(delay / 2, delay)
            if isinstance(exc, TransientError) and exc.retry_after:
                delay = max(delay, exc.retry_after)
            log.warning("%s failed (attempt %d, retrying in %.2fs): %s", what, attempt, delay, exc)
            sleep(delay)
