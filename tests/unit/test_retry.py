import pytest

from connectors.common.retry import GaveUp, RetryPolicy, call_with_retry
from connectors.common.token_cache import TokenUnavailable
from core.errors import PermanentError, RateLimited, TransientError


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s


def flaky(failures: list[Exception]):  # type: ignore[no-untyped-def]
    def fn() -> str:
        if failures:
            raise failures.pop(0)
        return "ok"
    return fn


def test_transient_errors_are_retried_with_growing_delays() -> None:
    clock = Clock()
    result, attempts = call_with_retry(flaky([TransientError("a"), TimeoutError("b"), TransientError("c")]), "x",
                                       RetryPolicy(first_delay_s=1, max_delay_s=100), clock.sleep, lambda: clock.now)
    assert (result, attempts) == ("ok", 4)
    assert clock.sleeps[2] > clock.sleeps[0]


def test_retry_after_is_honoured() -> None:
    clock = Clock()
    call_with_retry(flaky([RateLimited("429", retry_after=30)]), "x", RetryPolicy(), clock.sleep, lambda: clock.now)
    assert clock.sleeps == [30]


def test_permanent_errors_are_not_retried() -> None:
    clock = Clock()
    with pytest.raises(PermanentError):
        call_with_retry(flaky([PermanentError("bad")]), "x", RetryPolicy(), clock.sleep, lambda: clock.now)
    assert clock.sleeps == []


def test_gives_up_after_the_deadline() -> None:
    clock = Clock()
    with pytest.raises(GaveUp) as info:
        call_with_retry(flaky([TransientError("x")] * 100), "x", RetryPolicy(first_delay_s=1, max_delay_s=1,
                        give_up_after_s=5), clock.sleep, lambda: clock.now)
    assert info.value.attempts > 2


def test_waiting_for_an_access_token_does_not_spend_the_records_budget() -> None:
    clock = Clock()
    waits = [TokenUnavailable("no token yet", retry_after=240.0)] * 5  # 20 minutes without a token
    result, attempts = call_with_retry(flaky([*waits, TransientError("a moment")]), "x",
                                       RetryPolicy(first_delay_s=1, max_delay_s=1, give_up_after_s=60),
                                       clock.sleep, lambda: clock.now)
    assert result == "ok" and clock.now >= 1200, "waited as long as the token took, and did not give up"
    assert attempts == 2, "only the real failure counts as an attempt"
