"""The real local stack, started once per test session (and stopped after, if this session started it).

Each test gets its own slice: a fresh Kingdee database, replication slot, topic prefix and state folder; the session
runs its own ZOHO simulator on a free port with a temporary state folder, so a developer's ``make run`` data is
never touched. That simulator is strict like the local stack's: cdchub's client has only the scopes cdchub needs
(a call outside them fails the test with OAUTH_SCOPE_MISMATCH) and ``/search`` trails writes by
``zoho_simulator_search_lag_s`` (2 s), so every flow test also proves the search index lag is tolerated.
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from connectors.settings import Settings, get_settings
from infra.simulators.common.process import SimulatorProcess
from infra.stack.simulators import zoho_args
from tests.integration.harness import IsolatedEnv, ZohoSim, isolated_env

pytestmark = pytest.mark.integration

STACK = ["postgres", "kafka", "registry"]
#: Lines of each child's log a failed test's report ends with.
LOG_TAIL_LINES = 40

# the tests' own HTTP calls to the simulators' admin APIs would fill a failure's captured log
logging.getLogger("httpx").setLevel(logging.WARNING)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport,
                                                                                             pytest.TestReport]:
    """A failed test's report ends with the tail of every log its processes wrote (capture, flows, pollers,
    simulators): they live in the test's temporary folder, which a CI run does not keep."""
    report = yield
    test_env = getattr(item, "funcargs", {}).get("env")
    if report.failed and isinstance(test_env, IsolatedEnv):
        for path in sorted(test_env.tmp.rglob("*.log")):
            lines = path.read_text(errors="replace").splitlines()
            title = f"{path.relative_to(test_env.tmp)}, last {LOG_TAIL_LINES} lines"
            report.sections.append((title, "\n".join(lines[-LOG_TAIL_LINES:])))
    return report


@pytest.fixture(scope="session")
def stack() -> Iterator[Settings]:
    from infra.stack.manager import down, status, up

    settings = get_settings()
    already = {row.name for row in status(settings) if row.running}
    up(settings, STACK)
    get_settings.cache_clear()  # `up` may have written the local secrets
    settings = get_settings()
    yield settings
    if not already.intersection(STACK):
        down(settings)


@pytest.fixture(scope="session")
def zoho_sim(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ZohoSim, str]]:
    state = tmp_path_factory.mktemp("zoho-sim")
    proc = SimulatorProcess("infra.simulators.zoho", args=["--state-dir", str(state), *zoho_args(stack)],
                            log_path=state / "sim.log").start()
    yield ZohoSim(proc.base_url), proc.base_url
    proc.stop()


@pytest.fixture()
def env(stack: Settings, zoho_sim: tuple[ZohoSim, str], tmp_path: Path,
        request: pytest.FixtureRequest) -> Iterator[IsolatedEnv]:
    """A test's slice of the stack; its capture reads the log, unless the test is parametrized with a capture mode
    (``@pytest.mark.parametrize("env", CAPTURE_MODES, indirect=True)``)."""
    sim, base = zoho_sim
    sim.reset()
    with isolated_env(stack, sim, base, tmp_path, getattr(request, "param", "log")) as test_env:
        yield test_env
