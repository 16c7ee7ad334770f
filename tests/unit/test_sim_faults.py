"""Fault rules shared by the simulators: validation, counting, method and path matching."""

from __future__ import annotations

import pytest

from infra.simulators.common.faults import FaultInjector, FaultRule


def test_count_rule_expires_after_n_matches() -> None:
    injector = FaultInjector()
    injector.add({"path_regex": "/upsert$", "status": 500, "count": 2, "method": "post"})

    picks = [injector.pick("POST", "/crm/v8/Products/upsert") for _ in range(3)]

    assert [p.id if p else None for p in picks] == ["f1", "f1", None]
    assert injector.pick("GET", "/crm/v8/Products/upsert") is None


def test_rate_rule_is_reproducible_with_a_seed() -> None:
    def draws(seed: int) -> list[bool]:
        injector = FaultInjector(seed)
        injector.add({"path_regex": ".", "status": 503, "rate": 0.3})
        return [injector.pick("GET", "/x") is not None for _ in range(200)]

    assert draws(7) == draws(7)
    assert 30 < sum(draws(7)) < 90


def test_apply_defaults() -> None:
    assert not FaultRule.from_json("a", {"path_regex": ".", "status": 500}).reaches_app
    assert FaultRule.from_json("b", {"path_regex": ".", "malformed": True}).reaches_app
    assert FaultRule.from_json("c", {"path_regex": ".", "status": 500, "apply": True}).reaches_app


@pytest.mark.parametrize(
    "raw",
    [
        {"status": 500},
        {"path_regex": "("},
        {"path_regex": ".", "status": 500, "count": 0},
        {"path_regex": ".", "status": 500, "count": 1, "rate": 0.5},
        {"path_regex": ".", "status": 500, "rate": 2},
        {"path_regex": "."},
        {"path_regex": ".", "status": 500, "colour": "red"},
    ],
)
def test_invalid_rules_are_refused(raw: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        FaultRule.from_json("x", raw)
