"""How requests, logs and attachments look in the API's answers.

Ids and codes are strings in these views, as e-cology's Java services return them
(``"currentNodeType": "3"``); only ``doCreateRequest`` answers ``requestid`` as a number. Clients should
accept both. ``getRequestStatus`` also carries the lower-case ``currentnodetype`` the list services use.
"""

from __future__ import annotations

from typing import Any

from infra.simulators.weaver.engine import WorkflowEngine
from infra.simulators.weaver.files import FileMeta
from infra.simulators.weaver.requests_store import StoredRequest
from infra.simulators.weaver.workflows import NODE_ARCHIVE, NODE_CREATE, WorkflowDef

LOG_TYPE_NAMES = {
    "0": "批准",
    "1": "保存",
    "2": "提交",
    "3": "退回",
    "7": "转发",
    "9": "批注",
    "e": "强制归档",
}


class Views:
    def __init__(self, engine: WorkflowEngine) -> None:
        self.engine = engine
        self.clock = engine.clock
        self.users = engine.users

    def _user_name(self, user_id: int | None) -> str:
        user = self.users.get(user_id) if user_id is not None else None
        return user.name if user else ""

    def status_text(self, req: StoredRequest, wf: WorkflowDef) -> str:
        node = wf.node(req.current_node_id)
        if node.type == NODE_ARCHIVE:
            return "归档"
        if node.type == NODE_CREATE:
            return "退回" if req.isbereject else "创建"
        return "审批"

    def status(self, req: StoredRequest, wf: WorkflowDef) -> dict[str, Any]:
        node = wf.node(req.current_node_id)
        created_date, created_time = self.clock.date_time(req.created_ms)
        operator = self.engine.current_operator(req, wf)
        last_date, last_time = self.clock.date_time(req.last_operate_ms or req.created_ms)
        return {
            "requestId": str(req.requestid),
            "requestName": req.requestname,
            "workflowId": str(wf.id),
            "workflowName": wf.name,
            "currentNodeId": str(node.id),
            "currentNodeName": node.name,
            "currentNodeType": str(node.type),
            "currentnodetype": str(node.type),
            "status": self.status_text(req, wf),
            "isbereject": "1" if req.isbereject else "0",
            "creatorId": str(req.creatorid),
            "creatorName": self._user_name(req.creatorid),
            "createDate": created_date,
            "createTime": created_time,
            "currentOperators": []
            if operator is None
            else [{"id": str(operator), "name": self._user_name(operator)}],
            "lastOperatorId": str(req.last_operator_id or ""),
            "lastOperatorName": self._user_name(req.last_operator_id),
            "lastOperateDate": last_date,
            "lastOperateTime": last_time,
            "requestLevel": "0",
        }

    def list_row(self, req: StoredRequest, wf: WorkflowDef) -> dict[str, Any]:
        status = self.status(req, wf)
        arrived_date, arrived_time = self.clock.date_time(req.node_arrived_ms)
        return {
            "requestId": status["requestId"], "requestName": status["requestName"],
            "workflowId": status["workflowId"], "workflowName": status["workflowName"],
            "currentNodeId": status["currentNodeId"], "currentNodeName": status["currentNodeName"],
            "currentnodetype": status["currentnodetype"], "status": status["status"],
            "isbereject": status["isbereject"], "creatorId": status["creatorId"],
            "creatorName": status["creatorName"],
            "createTime": f"{status['createDate']} {status['createTime']}",
            "receiveTime": f"{arrived_date} {arrived_time}",
        }  # fmt: skip

    def workflow_request(self, req: StoredRequest, wf: WorkflowDef) -> dict[str, Any]:
        def table_fields(values: dict[str, Any], fields: tuple[Any, ...]) -> list[dict[str, Any]]:
            return [
                {
                    "fieldName": f.name,
                    "fieldShowName": f.label,
                    "fieldValue": values.get(f.name, ""),
                    "fieldShowValue": values.get(f.name, ""),
                }  # fmt: skip
                for f in fields
                if f.name in values
            ]

        status = self.status(req, wf)
        details = []
        for detail in wf.details:
            rows = req.details.get(detail.db_name, [])
            details.append(
                {
                    "tableDBName": detail.db_name,
                    "workflowRequestTableRecords": [
                        {"recordOrder": i, "workflowRequestTableFields": table_fields(row, detail.fields)}
                        for i, row in enumerate(rows)
                    ],
                }
            )
        return {
            **status,
            "workflowBaseInfo": {"workflowId": str(wf.id), "workflowName": wf.name},
            "currentNodeInfo": {
                "nodeId": status["currentNodeId"],
                "nodeName": status["currentNodeName"],
                "nodeType": status["currentNodeType"],
            },  # fmt: skip
            "workflowMainTableInfo": {
                "tableDBName": wf.form_table,
                "requestRecords": [
                    {"recordOrder": 0, "workflowRequestTableFields": table_fields(req.main, wf.fields)}
                ],
            },
            "workflowDetailTableInfos": details,
        }

    def log(self, req: StoredRequest, wf: WorkflowDef) -> list[dict[str, Any]]:
        rows = []
        for entry in self.engine.store.logs(req.requestid):
            operator = self.users.get(entry.operator_id)
            date, clock_time = self.clock.date_time(entry.operate_ms)
            rows.append(
                {
                    "logid": str(entry.logid),
                    "requestid": str(entry.requestid),
                    "logtype": entry.logtype,
                    "logtypeName": LOG_TYPE_NAMES.get(entry.logtype, ""),
                    "nodeid": str(entry.nodeid),
                    "nodename": wf.node(entry.nodeid).name,
                    "operator": str(entry.operator_id),
                    "operatorName": operator.name if operator else "",
                    "operatorDept": operator.department if operator else "",
                    "operatedate": date,
                    "operatetime": clock_time,
                    "remarkHtml": entry.remark_html,
                    "receivedPersonIds": ",".join(str(i) for i in entry.received_ids),
                    "receivedPersons": ",".join(self._user_name(i) for i in entry.received_ids),
                }
            )
        return rows

    def attachments(self, req: StoredRequest, wf: WorkflowDef) -> list[FileMeta]:
        metas = []
        for field in wf.fields:
            if field.kind != "file":
                continue
            for part in str(req.main.get(field.name, "")).split(","):
                meta = self.engine.files.meta(int(part)) if part.strip().isdigit() else None
                if meta is not None:
                    metas.append(meta)
        return metas

    def resources(self, req: StoredRequest, wf: WorkflowDef) -> list[dict[str, Any]]:
        rows = []
        for meta in self.attachments(req, wf):
            date, clock_time = self.clock.date_time(meta.created_ms)
            rows.append(
                {
                    "id": str(meta.fileid),
                    "name": meta.filename,
                    "type": "3",
                    "createdate": date,
                    "createtime": clock_time,
                    "filesize": str(meta.size),
                    "downloadUrl": meta.download_url,
                }  # fmt: skip
            )
        return rows
