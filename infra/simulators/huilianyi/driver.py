"""The people using the expense system: applicants create and submit reports, managers approve or reject,
finance audits or rejects, the cashier pays.

``tick`` runs one round: create up to ``create_per_tick`` reports, then give every open report one chance to
move, each move drawn with its ``odds`` (per tick, among the moves allowed from the report's status). With a
seed a tick is reproducible for the same stored state. The background loop (``run_forever``) ticks every
``interval_s`` seconds (0: off). ``advance`` moves one report where a test wants it. Rejections send a report
back to 1001 with ``rejectType``; a later ``submit`` starts it again.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from dataclasses import dataclass, field, replace
from typing import Any

from infra.simulators.huilianyi.catalog import EMPLOYEES_BY_ID
from infra.simulators.huilianyi.generator import ReportFactory, ReportSpec
from infra.simulators.huilianyi.reports import ReportStore
from infra.simulators.huilianyi.statuses import REJECTIONS, TRANSITIONS, Status, path_to
from infra.simulators.huilianyi.timefmt import now_ms
from infra.simulators.huilianyi.workflow import ReportWorkflow

log = logging.getLogger(__name__)

#: Chance per tick that an open report makes this move (moves from the same status share one draw).
DEFAULT_ODDS = {
    "submit": 0.5,
    "approval_pass": 0.45,
    "approval_reject": 0.1,
    "audit_pass": 0.35,
    "audit_reject": 0.05,
    "pay": 0.4,
}
APPROVER = "部门经理 王建国"
FINANCE = EMPLOYEES_BY_ID["E0008"].name
CASHIER = "出纳 孙丽"
#: Who makes each move and what they write (a random pick).
ACTORS: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "submit": (None, ("提交报销",)),
    "approval_pass": (APPROVER, ("同意", "同意报销", "情况属实, 同意")),
    "approval_reject": (APPROVER, ("请补充发票", "金额超出标准, 请修改后重新提交", "事由不清楚")),
    "audit_pass": (FINANCE, ("审核通过",)),
    "audit_reject": (FINANCE, ("发票抬头错误", "缺少行程单", "税率与发票不符")),
    "pay": (CASHIER, ("已付款",)),
}


@dataclass
class DriverSettings:
    interval_s: float = 0.0
    create_per_tick: int = 2
    campaign_share: float = 0.3  # share of new daily reports linked to a marketing campaign
    campaign_ids: tuple[str, ...] = ()
    odds: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_ODDS))
    max_moves_per_tick: int = 50


class DriverError(ValueError):
    """A misuse of the driver (bad target status, unknown reject kind)."""


class WrongDirection(DriverError):
    """The report is already past the asked status (statuses only move forward, or back by a rejection)."""


class ReportDriver:
    def __init__(
        self,
        store: ReportStore,
        workflow: ReportWorkflow,
        factory: ReportFactory,
        settings: DriverSettings,
        seed: int | None = None,
    ) -> None:
        self.store = store
        self.workflow = workflow
        self.factory = factory
        self.defaults = replace(settings, odds=dict(settings.odds))
        self.settings = replace(settings, odds=dict(settings.odds))
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def reset(self) -> None:
        self.settings = replace(self.defaults, odds=dict(self.defaults.odds))

    # -- one report -----------------------------------------------------------------------------------------
    def create(self, spec: ReportSpec, *, rng: random.Random | None = None, at_ms: int | None = None) -> dict[str, Any]:
        report_id, business_code = self.store.new_keys()
        doc = self.factory.build(
            rng or self._rng, spec, report_id=report_id, business_code=business_code,
            at_ms=at_ms if at_ms is not None else now_ms(),
        )  # fmt: skip
        return self.workflow.create(doc)

    def advance(
        self,
        business_code: str,
        *,
        to: int | None = None,
        reject: str | None = None,
        text: str | None = None,
        at_ms: int | None = None,
    ) -> tuple[dict[str, Any], list[str]]:
        """Walk forward to status ``to``, or to where ``reject`` applies and reject; returns the moves."""
        if (to is None) == (reject is None):
            raise DriverError('give exactly one of "to" (1002-1005) or "reject" ("approval" or "finance")')
        doc = self.workflow.load(business_code)
        if reject is not None:
            if reject not in REJECTIONS:
                raise DriverError(f"reject must be one of {sorted(REJECTIONS)}")
            final = REJECTIONS[reject]
            target = TRANSITIONS[final].source
        else:
            try:
                target = Status(int(to or 0))
            except ValueError:
                raise DriverError(f"to must be one of {[int(s) for s in Status]}") from None
            final = None
        try:
            moves = path_to(doc["status"], target)
        except ValueError as exc:
            raise WrongDirection(str(exc)) from None
        if final:
            moves.append(final)
        for action in moves:
            operator, texts = ACTORS[action]
            doc = self.workflow.move(
                business_code, action, operator=operator or doc["applicantName"],
                text=text if text and action == moves[-1] else texts[0], at_ms=at_ms,
            )  # fmt: skip
        return doc, moves

    # -- the random round -----------------------------------------------------------------------------------
    def tick(self, seed: int | None = None, create: int | None = None) -> dict[str, Any]:
        with self._lock:
            rng = random.Random(seed) if seed is not None else self._rng
            settings = self.settings
            created: list[str] = []
            count = create if create is not None else rng.randint(0, settings.create_per_tick)
            for _ in range(count):
                created.append(self.create(self._random_spec(rng, settings), rng=rng)["businessCode"])
            moved: list[dict[str, Any]] = []
            open_statuses = [int(s) for s in Status if s != Status.PAID]
            for doc in self.store.all(open_statuses):
                if len(moved) >= settings.max_moves_per_tick:
                    break
                if doc["businessCode"] in created:
                    continue
                action = self._draw_move(rng, doc["status"], settings.odds)
                if action is None:
                    continue
                operator, texts = ACTORS[action]
                after = self.workflow.move(
                    doc["businessCode"],
                    action,
                    operator=operator or doc["applicantName"],
                    text=rng.choice(texts),
                )
                moved.append({"businessCode": doc["businessCode"], "action": action,
                              "from": doc["status"], "to": after["status"]})  # fmt: skip
            return {"created": created, "moved": moved}

    @staticmethod
    def _random_spec(rng: random.Random, settings: DriverSettings) -> ReportSpec:
        campaign = None
        if settings.campaign_ids and rng.random() < settings.campaign_share:
            campaign = rng.choice(settings.campaign_ids)
        return ReportSpec(campaign_id=campaign)

    @staticmethod
    def _draw_move(rng: random.Random, status: int, odds: dict[str, float]) -> str | None:
        draw = rng.random()
        threshold = 0.0
        for action, move in TRANSITIONS.items():
            if move.source == status:
                threshold += odds.get(action, 0.0)
                if draw < threshold:
                    return action
        return None

    async def run_forever(self) -> None:
        """The background loop; settings are re-read each round (``PUT /__sim/driver`` acts at once)."""
        while True:
            interval = self.settings.interval_s
            await asyncio.sleep(interval if interval > 0 else 0.5)
            if interval > 0 and self.settings.interval_s > 0:
                try:
                    result = await asyncio.to_thread(self.tick)
                    created, moved = len(result["created"]), len(result["moved"])
                    log.info("driver tick: %d created, %d moved", created, moved)
                except Exception:  # keep driving; one bad round must not stop the simulator
                    log.exception("driver tick failed")
