"""The simulated approvers: they act on requests waiting at their node, after a delay, scripted or at random.

Each tick every open request gets at most one action:

- On an approval node, once ``delay_s`` has passed since the request got there (``/__sim/tick`` can ignore the
  delay), the node's approver takes the next step of the request's script, or when it has none left, the
  configured outcome: ``approve`` always, or ``random`` (seeded: reject with ``reject_rate``, forward with
  ``forward_rate``, else approve; a request is rejected at most twice so random runs always finish).
- On the create node after a rejection, the creator re-submits if the script says ``resubmit``, or, with
  ``auto_resubmit``, if the driver created the request (contracts from ``/__sim/contracts``). Requests created
  through the API wait for their creator (the connector, a test) to edit and submit them.

Script steps: ``approve[:opinion]``, ``reject[:opinion]``, ``forward:<name or id>[:opinion]``,
``comment:<text>``, ``resubmit[:remark]``. Opinions are plain text (wrapped in ``<p>``) or HTML.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import asdict, dataclass, replace
from typing import Any

from infra.simulators.weaver import attachments
from infra.simulators.weaver.clock import now_ms
from infra.simulators.weaver.config import DriverSettings
from infra.simulators.weaver.directory import USERS, OaUser, user_by_name
from infra.simulators.weaver.engine import WorkflowEngine
from infra.simulators.weaver.requests_store import StoredRequest
from infra.simulators.weaver.workflows import CONTRACT_APPROVAL, NODE_APPROVE, NODE_CREATE, WorkflowDef

log = logging.getLogger(__name__)

ACTIONS = ("approve", "reject", "forward", "comment", "resubmit")
MAX_RANDOM_REJECTS = 2
CONTRACT_CREATOR_ID = 108  # 孙丽, 销售部

APPROVE_OPINIONS = (
    "<p>同意。</p>",
    "<p>同意，请按计划执行。</p>",
    "<p>已审核，<strong>同意</strong>。</p>",
    "<p>情况属实，同意。</p>",
    "<p>条款已审阅，无异议。</p>",
)
REJECT_OPINIONS = (
    "<p>预算超标，请调整后重新提交。</p>",
    "<p>付款条款需修改，退回。</p>",
    '<p>资料不全，请补充<span style="color:#ff0000">报价单</span>。</p>',
)
RESUBMIT_REMARK = "<p>已按审批意见修改，请重新审批。</p>"


class ScriptError(ValueError):
    """A script step that does not parse; the message says which."""


@dataclass(frozen=True)
class Step:
    action: str
    opinion: str | None = None
    target: OaUser | None = None


def parse_step(text: str) -> Step:
    action, _, rest = str(text).partition(":")
    action = action.strip().lower()
    if action not in ACTIONS:
        raise ScriptError(f"unknown step {text!r}; steps are {', '.join(ACTIONS)} (with ':' and an opinion)")
    if action == "forward":
        name, _, opinion = rest.partition(":")
        target = user_by_name(name)
        if target is None:
            raise ScriptError(f"forward needs a known OA user, got {name!r} (see GET /__sim/workflows)")
        return Step(action, opinion or None, target)
    if action == "comment" and not rest.strip():
        raise ScriptError("comment needs a text: comment:<text>")
    return Step(action, rest or None)


@dataclass(frozen=True)
class Action:
    request_id: int
    action: str
    node_id: int
    node_name: str
    operator: str
    scripted: bool

    def to_json(self) -> dict[str, Any]:
        return {"requestId": self.request_id, "action": self.action, "nodeId": self.node_id,
                "nodeName": self.node_name, "operator": self.operator, "scripted": self.scripted}  # fmt: skip


class ApprovalDriver:
    def __init__(self, engine: WorkflowEngine, settings: DriverSettings) -> None:
        self.engine = engine
        self.defaults = settings
        self.settings = settings
        self.rng = random.Random(settings.seed)

    # -- settings and scripts --------------------------------------------------------------------------------
    def configure(self, **changes: Any) -> DriverSettings:
        unknown = set(changes) - set(asdict(self.settings))
        if unknown:
            raise ValueError(
                f"unknown driver settings {sorted(unknown)}; known: {sorted(asdict(self.settings))}"
            )
        new = replace(self.settings, **changes)
        if new.outcomes not in ("approve", "random"):
            raise ValueError("outcomes must be 'approve' or 'random'")
        if new.interval_s < 0 or new.delay_s < 0 or not (0 <= new.reject_rate + new.forward_rate <= 1):
            raise ValueError("interval_s and delay_s must be >= 0; reject_rate + forward_rate within [0, 1]")
        if "seed" in changes:
            self.rng = random.Random(new.seed)
        self.settings = new
        return new

    def reset(self) -> None:
        self.settings = self.defaults
        self.rng = random.Random(self.defaults.seed)

    def set_script(self, request_id: int, steps: list[str]) -> None:
        for step in steps:
            parse_step(step)
        self.engine.request(request_id)  # PARAM_ERROR if unknown
        self.engine.store.set_script(request_id, [str(s) for s in steps])

    def _next_scripted(self, request_id: int) -> Step | None:
        script = self.engine.store.script(request_id)
        if script is None or script[1] >= len(script[0]):
            return None
        return parse_step(script[0][script[1]])

    # -- acting ----------------------------------------------------------------------------------------------
    def _random_step(self, req: StoredRequest, operator_id: int) -> Step:
        if self.settings.outcomes != "random":
            return Step("approve")
        draw = self.rng.random()
        rejects = sum(1 for e in self.engine.store.logs(req.requestid) if e.logtype == "3")
        if draw < self.settings.reject_rate and rejects < MAX_RANDOM_REJECTS:
            return Step("reject", self.rng.choice(REJECT_OPINIONS))
        if draw < self.settings.reject_rate + self.settings.forward_rate:
            candidates = [u for u in USERS.values() if u.id not in (operator_id, 1, *req.viewers)]
            if candidates:
                return Step("forward", None, self.rng.choice(candidates))
        return Step("approve", self.rng.choice(APPROVE_OPINIONS))

    def _act(self, req: StoredRequest, wf: WorkflowDef, ignore_delay: bool, now: int) -> Action | None:
        node = wf.node(req.current_node_id)
        operator_id = self.engine.current_operator(req, wf)
        if operator_id is None:
            return None
        scripted = self._next_scripted(req.requestid)
        step: Step | None
        if node.type == NODE_CREATE:
            if not req.isbereject:
                return None
            if scripted and scripted.action == "resubmit":
                step = scripted
            elif req.origin == "driver" and self.settings.auto_resubmit:
                step, scripted = Step("resubmit"), None
            else:
                return None
        elif node.type == NODE_APPROVE:
            if not ignore_delay and now - req.node_arrived_ms < self.settings.delay_s * 1000:
                return None
            if scripted and scripted.action == "resubmit":
                scripted = None  # a resubmit step waits for the request to be back with its creator
            step = scripted or self._random_step(req, operator_id)
        else:
            return None
        operator = self.engine.users[operator_id]
        if step.action in ("approve", "resubmit"):
            default = RESUBMIT_REMARK if step.action == "resubmit" else self.rng.choice(APPROVE_OPINIONS)
            self.engine.submit(operator, req.requestid, step.opinion or default)
        elif step.action == "reject":
            self.engine.reject(operator, req.requestid, step.opinion or REJECT_OPINIONS[0])
        elif step.action == "forward":
            assert step.target is not None
            self.engine.forward(operator, req.requestid, step.target, step.opinion)
        else:
            self.engine.comment(operator, req.requestid, step.opinion)
        if scripted is not None:
            self.engine.store.advance_script(req.requestid)
        return Action(req.requestid, step.action, node.id, node.name, operator.name, scripted is not None)

    def tick(self, *, ignore_delay: bool = False, request_id: int | None = None) -> list[Action]:
        """One round: each open request (or just ``request_id``) gets at most one action."""
        acted = []
        now = now_ms()
        for req in self.engine.store.all():
            if req.archived_ms is not None or (request_id is not None and req.requestid != request_id):
                continue
            action = self._act(req, self.engine.workflows[req.workflowid], ignore_delay, now)
            if action is not None:
                acted.append(action)
        return acted

    async def run_forever(self) -> None:
        """The background task: tick every ``interval_s`` (0: idle, only ``/__sim/tick`` acts)."""
        while True:
            interval = self.settings.interval_s
            await asyncio.sleep(interval if interval > 0 else 1.0)
            if interval <= 0:
                continue
            try:
                for action in self.tick():
                    log.info("driver: %s", action.to_json())
            except Exception:  # noqa: BLE001 - the loop must survive one bad request
                log.exception("approval driver tick failed")

    # -- contracts started by a simulated sales rep ----------------------------------------------------------
    def create_contract(
        self,
        crm_deal_id: str,
        *,
        fields: dict[str, Any] | None = None,
        creator_id: int = CONTRACT_CREATOR_ID,
        submit: bool = True,
    ) -> int:  # fmt: skip
        wf = CONTRACT_APPROVAL
        creator = self.engine.users.get(creator_id)
        if creator is None:
            raise ValueError(f"unknown OA user {creator_id}")
        at = now_ms()
        date = self.engine.clock.date_time(at)[0]
        serial = self.engine.store.db.next_sequence("contract_serial")
        values: dict[str, Any] = {
            "htbh": f"HT-{date.replace('-', '')}-{serial:04d}",
            "khmc": "上海启明科技有限公司",
            "htje": "128000.00",
            "qdrq": date,
            "crmdealid": crm_deal_id,
            **(fields or {}),
        }
        values.setdefault("htmc", f"{values['khmc']}销售合同")
        pdf = attachments.contract_pdf(
            [
                f"Sales Contract {values['htbh']}",
                f"CRM deal: {crm_deal_id}",
                f"Amount: CNY {values['htje']}",
                f"Signed: {values['qdrq']}",
            ]  # fmt: skip
        )
        pdf_meta = self.engine.files.add(
            f"合同正文_{values['htbh']}.pdf", pdf, at, "application/pdf", creator.id
        )
        png_meta = self.engine.files.add(
            "盖章页扫描件.png", attachments.seal_png(), at, "image/png", creator.id
        )
        values["htfj"] = f"{pdf_meta.fileid},{png_meta.fileid}"
        amount = str(values["htje"])
        detail = [{
            "tableDBName": f"{wf.form_table}_dt1",
            "workflowRequestTableRecords": [{"recordOrder": 0, "workflowRequestTableFields": [
                {"fieldName": "cpmc", "fieldValue": "企业版软件许可"}, {"fieldName": "sl", "fieldValue": "1"},
                {"fieldName": "dj", "fieldValue": amount}, {"fieldName": "je", "fieldValue": amount},
            ]}],
        }]  # fmt: skip
        return self.engine.create(
            creator, wf.id, f"合同审批-{values['htmc']}-{values['htbh']}",
            [{"fieldName": k, "fieldValue": v} for k, v in values.items()], detail,
            {"isnextflow": "1" if submit else "0"}, "<p>请审批。</p>", origin="driver",
        )  # fmt: skip
