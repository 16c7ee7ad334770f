"""A Huilianyi simulator per test (a real process on a free port, own state dir and credentials) and its control
API; the test's child processes (``poll-huilianyi``, the expense flows) are configured to use it."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from infra.simulators.common.process import SimulatorProcess
from tests.integration.harness import ChildProcess, IsolatedEnv


class HuilianyiSim:
    """The Huilianyi simulator's ``/__sim/`` API: reports created and moved as people would, faults, tokens."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url, timeout=10)

    def create(self, *, status: int = 1001, **spec: Any) -> dict[str, Any]:
        """One report (``lines``: ``[{"expenseTypeCode", "amount", "comment"}]``, ``campaignId``, ``title``…) walked
        to ``status``."""
        resp = self.http.post("/__sim/reports", json={"count": 1, "status": status, **spec})
        resp.raise_for_status()
        report: dict[str, Any] = resp.json()["reports"][0]
        return report

    def advance(self, code: str, *, to: int | None = None, reject: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"businessCode": code}
        body.update({"to": to} if to is not None else {"reject": reject})
        resp = self.http.post("/__sim/advance", json=body)
        resp.raise_for_status()
        report: dict[str, Any] = resp.json()["report"]
        return report

    def report(self, code: str) -> dict[str, Any]:
        resp = self.http.get(f"/__sim/reports/{code}")
        resp.raise_for_status()
        return dict(resp.json())

    def journal_no(self, code: str) -> str | None:
        value = self.report(code)["report"].get("journalNo")
        return str(value) if value else None

    def journal_writes(self, code: str) -> int:
        """How many times the journal number of the report changed (its history)."""
        return sum(1 for h in self.report(code)["history"] if h["action"] == "journal_no")

    def requests(self, path_regex: str) -> list[dict[str, Any]]:
        resp = self.http.get("/__sim/requests", params={"path_regex": path_regex})
        resp.raise_for_status()
        return list(resp.json()["requests"])

    def expire_tokens(self) -> int:
        resp = self.http.post("/__sim/expire-tokens")
        resp.raise_for_status()
        return int(resp.json()["expired"])

    def fault(self, **rule: Any) -> None:
        self.http.post("/__sim/faults", json=rule).raise_for_status()

    def clear_faults(self) -> None:
        self.http.delete("/__sim/faults").raise_for_status()


def start_huilianyi(env: IsolatedEnv, poll_interval_s: float = 0.3) -> HuilianyiSim:
    """A Huilianyi simulator for this test; stopped with the test's environment."""
    app_id, app_secret = f"hly{uuid.uuid4().hex[:10]}", uuid.uuid4().hex
    args = ["--state-dir", str(env.tmp / "huilianyi-sim"), "--app-id", app_id, "--app-secret", app_secret]
    proc = SimulatorProcess("infra.simulators.huilianyi", args=args, log_path=env.tmp / "huilianyi-sim.log").start()
    env.simulators.append(proc)
    env.env.update({
        "CDCHUB_HUILIANYI__BASE_URL": proc.base_url, "CDCHUB_HUILIANYI__APP_ID": app_id,
        "CDCHUB_HUILIANYI__APP_SECRET": app_secret, "CDCHUB_HUILIANYI__POLL_INTERVAL_S": str(poll_interval_s),
    })
    return HuilianyiSim(proc.base_url)


def huilianyi_poller(env: IsolatedEnv) -> ChildProcess:
    return env.spawn(f"poll-huilianyi-{len(env.children)}", "poll-huilianyi")
