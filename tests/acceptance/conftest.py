"""One company for the whole acceptance run: ``cdchub run`` (the main job, every flow) on a demo installation of its
own, and the people who work with it (``people.py``).  The scenarios share it, as a company's people share their
systems; each uses its own records.  Per-hop latencies are printed in the run's summary."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, create_engine

from connectors.kingdee.client import KingdeeWebApiClient
from connectors.kingdee.settings import KingdeeApiSettings
from connectors.kingdee.sink import kingdee_client
from connectors.settings import Settings
from tests.acceptance.hops import Hops
from tests.acceptance.people import CrmPerson, CrmUser
from tests.integration.conftest import stack  # noqa: F401  (the shared local stack, started once)
from tests.integration.harness import ZohoSim, wait_for
from tests.integration.huilianyi_harness import HuilianyiSim
from tests.integration.run_harness import Run, run_installation

pytestmark = pytest.mark.integration
HOPS = Hops()

#: The CRM users of the scenarios (their emails are their OA accounts': the OA knows them by email).
YANGFAN = CrmPerson("4876876000000099109", "杨帆", "yangfan@cdchub.local")  # 销售经理: orders, deals
LINA = CrmPerson("4876876000000099101", "李娜", "lina@cdchub.local")  # 市场专员: campaigns


class Approvers:
    """The OA's approvers and its sales people acting in the OA (the simulator's approval driver and forms)."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=15)

    def script(self, request_id: str, steps: list[str]) -> None:
        self.http.post("/__sim/script", json={"requestId": int(request_id), "steps": steps}).raise_for_status()

    def act(self, request_id: str, rounds: int = 5) -> list[dict[str, Any]]:
        resp = self.http.post("/__sim/tick", json={"rounds": rounds, "requestId": int(request_id)})
        resp.raise_for_status()
        return list(resp.json()["acted"])

    def request(self, request_id: str) -> dict[str, Any]:
        rows = self.http.get("/__sim/workflow-requests", params={"requestId": request_id}).json()["requests"]
        return dict(rows[0])

    def start_contract(self, deal_id: str, steps: list[str]) -> dict[str, Any]:
        resp = self.http.post("/__sim/contracts", json={"crmDealId": deal_id, "steps": steps})
        resp.raise_for_status()
        return dict(resp.json())


@dataclass
class Company:
    settings: Settings
    run: Run
    crm: ZohoSim  # what the CRM shows (read by the test, as anyone looking at the screen)
    kingdee: Engine  # what the ERP holds (read only)
    clerk: KingdeeWebApiClient
    rep: CrmUser
    marketer: CrmUser
    oa: Approvers
    hly: HuilianyiSim


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if HOPS.hops:
        terminalreporter.section("acceptance: per-hop latencies (person's action → where it shows)")
        terminalreporter.write_line(HOPS.table())


@pytest.fixture(scope="session")
def hops() -> Hops:
    return HOPS


@pytest.fixture(scope="session")
def company(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Company]:  # noqa: F811
    tmp = tmp_path_factory.mktemp("company")
    with run_installation(stack, tmp) as (env, settings):
        run = Run(env, tmp / "run.err")
        try:
            wait_for(lambda: "started capture" in run.read() or run.proc.poll() is not None, 300, "cdchub run")
            assert run.proc.poll() is None, run.read() + (tmp / "run.err").read_text()
            crm = ZohoSim(env["CDCHUB_ZOHO__API_DOMAIN"])
            wait_for(lambda: len(crm.by_kingdee_id()) >= 10, 180, "the demo products in the CRM", 0.5)
            # read now: on a new machine the Kingdee simulator made its credentials when `cdchub run` started it
            api = KingdeeApiSettings(base_url=env["CDCHUB_KINGDEE_API__BASE_URL"])
            clerk = kingdee_client(settings.model_copy(update={"kingdee_api": api}))
            kingdee = create_engine(settings.kingdee_db.sqlalchemy_url())
            yield Company(settings, run, crm, kingdee, clerk,
                          CrmUser(env["CDCHUB_ZOHO__API_DOMAIN"], YANGFAN).register(),
                          CrmUser(env["CDCHUB_ZOHO__API_DOMAIN"], LINA).register(),
                          Approvers(env["CDCHUB_WEAVER__BASE_URL"]), HuilianyiSim(env["CDCHUB_HUILIANYI__BASE_URL"]))
            clerk.close()
            kingdee.dispose()
        finally:
            if run.proc.poll() is None:
                run.proc.send_signal(2)
                run.proc.wait(90)
