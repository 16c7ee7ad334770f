"""Integration helpers for the approval flows: a Weaver OA simulator per test (driver idle: approvals happen on
``tick``), the processes the approval flows need, and what the CRM shows (notes, attachments)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from sqlalchemy import delete, select

from connectors.weaver.client import WeaverClient, client_for
from connectors.zoho.client import ZohoClient
from core.ledger import open_engine, sync_ledger
from infra.simulators.common.process import SimulatorProcess
from tests.integration.harness import ChildProcess, IsolatedEnv, wait_for

SIM_APP_ID = "5A1D3C6E-0B4F-4E2A-9C1D-CDCHUB000006"


@dataclass
class WeaverSim:
    """The Weaver OA simulator's control API (driver scripts and ticks, contracts, tokens, faults)."""

    process: SimulatorProcess
    http: httpx.Client

    def script(self, request_id: int | str, steps: list[str]) -> None:
        self.http.post("/__sim/script", json={"requestId": int(request_id), "steps": steps}).raise_for_status()

    def tick(self, rounds: int = 1, request_id: int | str | None = None) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"rounds": rounds}
        if request_id is not None:
            body["requestId"] = int(request_id)
        resp = self.http.post("/__sim/tick", json=body)
        resp.raise_for_status()
        return list(resp.json()["acted"])

    def contract(self, crm_deal_id: str, steps: list[str] | None = None, **fields: str) -> dict[str, Any]:
        """A contract workflow started by a simulated sales person (with a PDF and a PNG attachment); its state,
        ``attachments`` included."""
        body: dict[str, Any] = {"crmDealId": crm_deal_id, "fields": fields}
        if steps is not None:
            body["steps"] = steps
        resp = self.http.post("/__sim/contracts", json=body)
        resp.raise_for_status()
        return dict(resp.json())

    def requests(self) -> list[dict[str, Any]]:
        resp = self.http.get("/__sim/workflow-requests")
        resp.raise_for_status()
        return list(resp.json()["requests"])

    def request(self, request_id: str) -> dict[str, Any]:
        return next(r for r in self.requests() if r["requestId"] == str(request_id))

    def expire_tokens(self) -> int:
        resp = self.http.post("/__sim/expire-tokens")
        resp.raise_for_status()
        return int(resp.json()["expired"])

    def calls(self, path_regex: str) -> list[dict[str, Any]]:
        resp = self.http.get("/__sim/requests", params={"path_regex": path_regex})
        resp.raise_for_status()
        return list(resp.json()["requests"])

    def fault(self, **rule: Any) -> None:
        self.http.post("/__sim/faults", json=rule).raise_for_status()

    def clear_faults(self) -> None:
        self.http.delete("/__sim/faults").raise_for_status()


def start_weaver(env: IsolatedEnv) -> WeaverSim:
    """A Weaver OA simulator for this test (stopped with the env); children are configured for it."""
    state = env.tmp / "weaver-sim"
    args = ["--state-dir", str(state), "--app-id", SIM_APP_ID, "--secrets-dir", str(state / "secrets"),
            "--driver-interval", "0", "--approval-delay", "3600"]
    proc = SimulatorProcess("infra.simulators.weaver", args=args, log_path=env.tmp / "weaver-sim.log").start()
    env.simulators.append(proc)
    env.env.update({"CDCHUB_WEAVER__BASE_URL": proc.base_url, "CDCHUB_WEAVER__APP_ID": SIM_APP_ID,
                    "CDCHUB_WEAVER__POLL_INTERVAL_S": "0.3"})
    return WeaverSim(proc, httpx.Client(base_url=proc.base_url, timeout=10))


def weaver_poller(env: IsolatedEnv) -> ChildProcess:
    return env.spawn(f"weaver-poller-{len(env.children)}", "poll-weaver")


def notes_of(env: IsolatedEnv, record_id: str) -> list[dict[str, Any]]:
    return [n for n in env.zoho.records("Notes") if (n.get("Parent_Id") or {}).get("id") == record_id]


def record(env: IsolatedEnv, module: str, record_id: str) -> dict[str, Any]:
    return next(r for r in env.zoho.records(module) if r["id"] == record_id)


def wait_status(env: IsolatedEnv, module: str, record_id: str, status: str, timeout_s: float = 30) -> dict[str, Any]:
    return wait_for(lambda: (r := record(env, module, record_id)).get("Approval_Status") == status and r, timeout_s,
                    f"{module} {record_id} Approval_Status {status}")


def crm_client(env: IsolatedEnv) -> ZohoClient:
    return ZohoClient(env.settings.zoho)


def ledger_actions(env: IsolatedEnv, flow: str, target_system: str) -> dict[str, str]:
    """What the sync ledger recorded per key of a flow and target: ``insert``, ``found`` (already in the target)…"""
    engine = open_engine(env.settings.ledger_database_url())
    t = sync_ledger.c
    with engine.connect() as conn:
        rows = conn.execute(select(t.source_key, t.action).where(t.flow == flow, t.target_system == target_system))
        found = {r.source_key: r.action for r in rows}
    engine.dispose()
    return found


def oa_client(env: IsolatedEnv, oa: WeaverSim, user_id: int) -> WeaverClient:
    """A Weaver client acting as an OA user (a sales person starting a workflow in the OA)."""
    return client_for(oa.process.base_url, SecretStr(SIM_APP_ID), user_id, 1800, 30,
                      env.tmp / f"weaver-user-{user_id}.json")


def peak_rss_kb(child: ChildProcess) -> int:
    """The process's peak resident memory so far (VmHWM)."""
    assert child.proc is not None
    status = Path(f"/proc/{child.proc.pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))


def forget_ledger(env: IsolatedEnv, flow: str) -> int:
    """Delete a flow's ledger rows (a ledger restored from an old backup); returns how many."""
    engine = open_engine(env.settings.ledger_database_url())
    with engine.begin() as conn:
        count = conn.execute(delete(sync_ledger).where(sync_ledger.c.flow == flow)).rowcount
    engine.dispose()
    return int(count)
