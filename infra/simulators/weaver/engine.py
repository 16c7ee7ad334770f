"""What a workflow request can go through: create (save or submit), submit/approve, reject, forward, comment.

Rules (linear node path, see ``workflows.py``):

- Only the current operator may act: the creator on the create node, the node's approver on an approval node.
  Anyone else gets ``NO_PERMISSION``; acting on an archived request gets ``NO_PERMISSION`` too.
- Submitting from the create node checks required fields (``PARAM_ERROR`` names them) and logs ``2`` (submit);
  approving logs ``0`` and moves one node on; reaching the archive node (type 3) finishes the request.
- Reject (only on approval nodes) logs ``3`` and sends the request back to its creator (``isbereject = 1``);
  the creator may edit the form (``mainData``/``detailData`` on ``submitRequest``) and submit again.
- Forward logs ``7``, lets the named person see the request, and leaves it where it is; comment logs ``9``.
- Saving without submitting logs ``1``.

Unknown form field names are ignored (as far as is known, e-cology ignores them too [L]); unknown detail
tables and malformed values are ``PARAM_ERROR``.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from infra.simulators.weaver.clock import OaClock, now_ms
from infra.simulators.weaver.directory import OaUser
from infra.simulators.weaver.errors import no_permission, param_error
from infra.simulators.weaver.files import FileStore
from infra.simulators.weaver.requests_store import RequestStore, StoredRequest
from infra.simulators.weaver.workflows import NODE_APPROVE, NODE_ARCHIVE, NODE_CREATE, FormField, WorkflowDef

LOG_APPROVE, LOG_SAVE, LOG_SUBMIT, LOG_REJECT, LOG_FORWARD, LOG_COMMENT = "0", "1", "2", "3", "7", "9"
ADMIN_USER_ID = 1


def remark_html(text: str | None) -> str:
    """An opinion as the OA stores it, HTML: plain text is escaped and wrapped in ``<p>``, HTML kept."""
    text = (text or "").strip()
    if not text:
        return ""
    return text if text.startswith("<") else f"<p>{html.escape(text, quote=False)}</p>"


def _fields(items: Any, where: str) -> dict[str, Any]:
    if not isinstance(items, list):
        raise param_error(f'{where}格式错误：应为[{{"fieldName","fieldValue"}}]数组')
    values: dict[str, Any] = {}
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("fieldName"), str) or not item["fieldName"]:
            raise param_error(f"{where}格式错误：每项需要fieldName和fieldValue")
        values[item["fieldName"]] = item.get("fieldValue")
    return values


class WorkflowEngine:
    def __init__(
        self, store: RequestStore, files: FileStore, workflows: Mapping[int, WorkflowDef],
        users: Mapping[int, OaUser], clock: OaClock,
    ) -> None:  # fmt: skip
        self.store = store
        self.files = files
        self.workflows = workflows
        self.users = users
        self.clock = clock

    # -- lookups ---------------------------------------------------------------------------------------------
    def workflow(self, workflow_id: Any) -> WorkflowDef:
        try:
            wf = self.workflows.get(int(str(workflow_id).strip()))
        except ValueError:
            wf = None
        if wf is None:
            raise param_error(f"流程不存在：workflowId={workflow_id}")
        return wf

    def request(self, request_id: Any) -> tuple[StoredRequest, WorkflowDef]:
        try:
            req = self.store.get(int(str(request_id).strip()))
        except ValueError:
            req = None
        if req is None:
            raise param_error(f"流程请求不存在：requestId={request_id}")
        return req, self.workflows[req.workflowid]

    def current_operator(self, req: StoredRequest, wf: WorkflowDef) -> int | None:
        node = wf.node(req.current_node_id)
        if node.type == NODE_ARCHIVE:
            return None
        return req.creatorid if node.type == NODE_CREATE else node.operator_id

    def can_view(self, user: OaUser, req: StoredRequest, wf: WorkflowDef) -> bool:
        involved = {ADMIN_USER_ID, req.creatorid, *req.viewers}
        involved.update(n.operator_id for n in wf.nodes if n.operator_id)
        return user.id in involved

    def check_view(self, user: OaUser, request_id: Any) -> tuple[StoredRequest, WorkflowDef]:
        req, wf = self.request(request_id)
        if not self.can_view(user, req, wf):
            raise no_permission(f"用户{user.name}无权查看该流程：requestId={req.requestid}")
        return req, wf

    def _check_actor(self, user: OaUser, req: StoredRequest, wf: WorkflowDef) -> None:
        operator = self.current_operator(req, wf)
        if operator is None:
            raise no_permission(f"流程已归档，不能再操作：requestId={req.requestid}")
        if user.id != operator:
            raise no_permission(f"用户{user.name}不是当前节点操作者：requestId={req.requestid}")

    # -- form values -----------------------------------------------------------------------------------------
    def _value(self, field: FormField, value: Any, user: OaUser, at_ms: int) -> Any:
        if value is None:
            return ""
        if field.kind == "number" and str(value).strip() != "":
            try:
                return str(Decimal(str(value).strip()))
            except InvalidOperation as exc:
                raise param_error(f"字段{field.name}({field.label})应为数字：{value}") from exc
        if field.kind == "file":
            return self._file_value(field, value, user, at_ms)
        if isinstance(value, dict | list):
            return json.dumps(value, ensure_ascii=False)
        return str(value)

    def _file_value(self, field: FormField, value: Any, user: OaUser, at_ms: int) -> str:
        """Comma-separated file ids, or ``[{"filePath": "base64:...", "fileName": ...}]`` (stored here)."""
        if isinstance(value, str) and value.strip().startswith("["):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise param_error(f"附件字段{field.name}格式错误") from exc
        ids: list[str] = []
        if isinstance(value, list):
            for item in value:
                path = item.get("filePath") if isinstance(item, dict) else None
                name = item.get("fileName") if isinstance(item, dict) else None
                if not isinstance(path, str) or not path.startswith("base64:") or not name:
                    raise param_error(
                        f"附件字段{field.name}：仅支持 filePath 为 base64: 的附件，且需要fileName"
                    )
                try:
                    data = base64.b64decode(path[len("base64:") :], validate=True)
                except (binascii.Error, ValueError) as exc:
                    raise param_error(f"附件字段{field.name}：base64 内容无效") from exc
                ids.append(str(self.files.add(str(name), data, at_ms, uploader_id=user.id).fileid))
        else:
            for part in str(value).split(","):
                if not part.strip():
                    continue
                if not part.strip().isdigit() or self.files.meta(int(part)) is None:
                    raise param_error(f"附件字段{field.name}：文件不存在：{part.strip()}")
                ids.append(part.strip())
        return ",".join(ids)

    def _apply_form(
        self, req: StoredRequest, wf: WorkflowDef, main_data: Any, detail_data: Any, user: OaUser, at_ms: int
    ) -> None:
        if main_data is not None:
            for name, value in _fields(main_data, "mainData").items():
                field = wf.field(name)
                if field is not None:
                    req.main[name] = self._value(field, value, user, at_ms)
        if detail_data is None:
            return
        if not isinstance(detail_data, list):
            raise param_error("detailData格式错误：应为数组")
        for table in detail_data:
            if not isinstance(table, dict):
                raise param_error("detailData格式错误")
            detail = wf.detail(str(table.get("tableDBName") or ""))
            if detail is None:
                raise param_error(f"明细表不存在：{table.get('tableDBName')}")
            records = table.get("workflowRequestTableRecords") or []
            if not isinstance(records, list):
                raise param_error("workflowRequestTableRecords格式错误")
            rows = []
            for record in records:
                if not isinstance(record, dict):
                    raise param_error("workflowRequestTableRecords格式错误")
                values = _fields(record.get("workflowRequestTableFields") or [], "workflowRequestTableFields")
                known = {f.name: f for f in detail.fields}
                rows.append(
                    {n: self._value(known[n], v, user, at_ms) for n, v in values.items() if n in known}
                )
            req.details[detail.db_name] = rows

    def _check_required(self, req: StoredRequest, wf: WorkflowDef) -> None:
        missing = [
            f"{f.name}({f.label})"
            for f in wf.fields
            if f.required and not str(req.main.get(f.name, "")).strip()
        ]
        if missing:
            raise param_error("必填字段为空：" + "、".join(missing))

    # -- moves -----------------------------------------------------------------------------------------------
    def _move(self, req: StoredRequest, wf: WorkflowDef, node_id: int, user: OaUser, at_ms: int) -> None:
        req.current_node_id = node_id
        req.node_arrived_ms = at_ms
        req.modified_ms = at_ms
        req.last_operator_id = user.id
        req.last_operate_ms = at_ms
        if wf.node(node_id).type == NODE_ARCHIVE:
            req.archived_ms = at_ms

    def create(
        self, user: OaUser, workflow_id: Any, request_name: Any, main_data: Any, detail_data: Any,
        other_params: Any, remark: Any, origin: str = "api",
    ) -> int:  # fmt: skip
        wf = self.workflow(workflow_id)
        if wf.creator_departments and user.department not in wf.creator_departments:
            raise no_permission(f"用户{user.name}({user.department})没有创建{wf.name}的权限")
        if not main_data:
            raise param_error("mainData不能为空")
        other = other_params if isinstance(other_params, dict) else {}
        submit = str(other.get("isnextflow", "0")).strip() == "1"
        at = now_ms()
        req = StoredRequest(
            requestid=0, workflowid=wf.id, requestname="", creatorid=user.id, created_ms=at, modified_ms=at,
            current_node_id=wf.create_node.id, node_arrived_ms=at, isbereject=False, main={}, details={},
            origin=origin, last_operator_id=user.id, last_operate_ms=at,
        )  # fmt: skip
        with self.store.db.transaction():
            self._apply_form(req, wf, main_data, detail_data, user, at)
            if submit:
                self._check_required(req, wf)
            title = str(request_name or "").strip() or (
                f"{wf.name}-{user.name}-{req.main.get(wf.title_field) or self.clock.date_time(at)[0]}"
            )
            req.requestname = title
            req.requestid = self.store.new_request_id()
            logtype = LOG_SUBMIT if submit else LOG_SAVE
            self.store.add_log(req.requestid, logtype, wf.create_node.id, user.id, at, remark_html(remark))
            if submit:
                self._move(req, wf, wf.next_node(wf.create_node.id).id, user, at)
            self.store.save(req)
        return req.requestid

    def submit(
        self, user: OaUser, request_id: Any, remark: Any, main_data: Any = None, detail_data: Any = None
    ) -> StoredRequest:
        req, wf = self.request(request_id)
        self._check_actor(user, req, wf)
        node = wf.node(req.current_node_id)
        at = now_ms()
        with self.store.db.transaction():
            if node.type == NODE_CREATE:
                self._apply_form(req, wf, main_data, detail_data, user, at)
                self._check_required(req, wf)
                self.store.add_log(req.requestid, LOG_SUBMIT, node.id, user.id, at, remark_html(remark))
                req.isbereject = False
            else:
                self.store.add_log(req.requestid, LOG_APPROVE, node.id, user.id, at, remark_html(remark))
            self._move(req, wf, wf.next_node(node.id).id, user, at)
            self.store.save(req)
        return req

    def reject(self, user: OaUser, request_id: Any, remark: Any) -> StoredRequest:
        req, wf = self.request(request_id)
        self._check_actor(user, req, wf)
        node = wf.node(req.current_node_id)
        if node.type != NODE_APPROVE:
            raise param_error(f"当前节点不能退回：{node.name}")
        at = now_ms()
        with self.store.db.transaction():
            self.store.add_log(req.requestid, LOG_REJECT, node.id, user.id, at, remark_html(remark))
            self._move(req, wf, wf.create_node.id, user, at)
            req.isbereject = True
            self.store.save(req)
        return req

    def forward(self, user: OaUser, request_id: Any, target: OaUser, remark: Any) -> StoredRequest:
        req, wf = self.request(request_id)
        self._check_actor(user, req, wf)
        at = now_ms()
        with self.store.db.transaction():
            text = remark_html(remark) or f"<p>请{html.escape(target.name)}阅示。</p>"
            self.store.add_log(
                req.requestid, LOG_FORWARD, req.current_node_id, user.id, at, text, (target.id,)
            )
            if target.id not in req.viewers:
                req.viewers.append(target.id)
            req.modified_ms = at
            self.store.save(req)
        return req

    def comment(self, user: OaUser, request_id: Any, remark: Any) -> StoredRequest:
        req, wf = self.check_view(user, request_id)
        at = now_ms()
        with self.store.db.transaction():
            self.store.add_log(
                req.requestid, LOG_COMMENT, req.current_node_id, user.id, at, remark_html(remark)
            )
            req.modified_ms = at
            self.store.save(req)
        return req
