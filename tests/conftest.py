"""Marks everything under tests/integration and tests/acceptance as ``integration`` (it needs the local stack)."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.fspath) or "/acceptance/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
