"""Simulators of external systems, each a supervised ``python -m <module> --port N --state-dir DIR`` process.

State, pid file and log live under the setting ``simulators_dir`` (``.cache/simulators``), so a second set of
simulators on other ports (the smoke test of ``cdchub run``) never touches the first one's data.

Add a simulator with one line in ``SIMULATORS``; it must answer ``GET /healthz`` with 200 once ready. The ZOHO
simulator gives cdchub's OAuth client exactly the scopes cdchub needs (``connectors/zoho/scopes.py``) and a search
index that trails writes by the setting ``zoho_simulator_search_lag_s``, as the real CRM does.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

from connectors.settings import Settings
from connectors.zoho.scopes import REQUIRED_SCOPES
from infra.stack.component import ComponentStatus
from infra.stack.local_secrets import ensure_secrets
from infra.stack.paths import PROJECT_ROOT, ensure_dir
from infra.stack.probes import http_status
from infra.stack.process import Daemon


def project_python() -> str:
    """The project's venv interpreter (``.venv/bin/python``), else the one running us."""
    venv = PROJECT_ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


@dataclass(frozen=True)
class SimulatorSpec:
    name: str  # component name and state folder: <settings.simulators_dir>/<name>
    module: str  # run as `python -m <module>`
    port: Callable[[Settings], int]
    extra_args: Callable[[Settings], list[str]] = lambda s: []


def zoho_args(settings: Settings) -> list[str]:
    """The ZOHO simulator as cdchub meets the real CRM: its grant's scopes only, a search index that lags."""
    return ["--scopes", ",".join(REQUIRED_SCOPES), "--search-lag", str(settings.zoho_simulator_search_lag_s)]


SIMULATORS: tuple[SimulatorSpec, ...] = (
    SimulatorSpec("zoho", "infra.simulators.zoho", lambda s: s.zoho_simulator_port, zoho_args),
    SimulatorSpec("kingdee", "infra.simulators.kingdee", lambda s: s.kingdee_webapi_simulator_port),
    SimulatorSpec("weaver", "infra.simulators.weaver", lambda s: s.weaver_simulator_port),
    SimulatorSpec("huilianyi", "infra.simulators.huilianyi", lambda s: s.huilianyi_simulator_port),
)


@dataclass
class Simulator:
    settings: Settings
    spec: SimulatorSpec
    requires: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"sim-{self.spec.name}"

    @property
    def port(self) -> int:
        return self.spec.port(self.settings)

    def daemon(self) -> Daemon:
        state_dir = self.settings.simulators_dir / self.spec.name
        return Daemon(
            name=self.name,
            argv=[
                project_python(),
                "-m",
                self.spec.module,
                "--port",
                str(self.port),
                "--state-dir",
                str(state_dir),
                *self.spec.extra_args(self.settings),
            ],
            is_ready=self.is_ready,
            marker=f"-m {self.spec.module} --port {self.port}",
            ports=(self.port,),
            cwd=PROJECT_ROOT,
            ready_timeout_s=30,
            stop_timeout_s=10,
            run_dir=self.settings.simulators_dir,
        )

    def is_ready(self) -> bool:
        return http_status(f"http://127.0.0.1:{self.port}/healthz") == 200

    def up(self) -> str:
        ensure_secrets()  # the simulators accept exactly the credentials in .cache/secrets
        ensure_dir(self.settings.simulators_dir / self.spec.name)
        return self.daemon().ensure_started()

    def down(self) -> bool:
        return self.daemon().stop()

    def status(self) -> ComponentStatus:
        pid = self.daemon().pid()
        if pid is None:
            return ComponentStatus(self.name, False, "stopped")
        ready = self.is_ready()
        return ComponentStatus(
            self.name,
            ready,
            f"pid {pid}, http://127.0.0.1:{self.port}" + ("" if ready else ", NOT answering /healthz"),
        )
