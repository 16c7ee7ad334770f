"""The simulated workflows, declared as data: form fields, detail tables and the node path with its approvers.

A node has a type as ``currentnodetype`` shows it: 0 create (创建), 1 approve (审批), 2 submit (提交),
3 archive (归档). The path is linear: reject goes back to the create node (the creator), approve moves
one node on, and reaching the archive node finishes the request.

To add a workflow, declare a :class:`WorkflowDef` and list it in ``WORKFLOWS``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

NODE_CREATE, NODE_APPROVE, NODE_SUBMIT, NODE_ARCHIVE = 0, 1, 2, 3


@dataclass(frozen=True)
class FormField:
    name: str  # fieldName as the API uses it (database column of the form table)
    label: str
    required: bool = False
    kind: str = "text"  # text | number | date | file (comma separated file ids, or filePath uploads)


@dataclass(frozen=True)
class DetailTable:
    db_name: str  # tableDBName, e.g. formtable_main_101_dt1
    fields: tuple[FormField, ...]


@dataclass(frozen=True)
class Node:
    id: int
    name: str
    type: int
    operator_id: int | None = None  # None on the create node: the request's creator acts there


@dataclass(frozen=True)
class WorkflowDef:
    id: int
    name: str
    form_table: str
    fields: tuple[FormField, ...]
    details: tuple[DetailTable, ...]
    nodes: tuple[Node, ...]
    title_field: str  # the field the request name is built from when none is given
    creator_departments: frozenset[str] = frozenset()  # who may create (empty: everyone); else NO_PERMISSION

    def __post_init__(self) -> None:
        assert self.nodes[0].type == NODE_CREATE, f"{self.name}: the first node must be the create node"
        assert self.nodes[-1].type == NODE_ARCHIVE, f"{self.name}: the last node must be the archive node"
        assert all(n.operator_id for n in self.nodes[1:-1]), (
            f"{self.name}: every approval node needs an operator"
        )

    @property
    def create_node(self) -> Node:
        return self.nodes[0]

    def node(self, node_id: int) -> Node:
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)

    def next_node(self, node_id: int) -> Node:
        index = [n.id for n in self.nodes].index(node_id)
        return self.nodes[min(index + 1, len(self.nodes) - 1)]

    def field(self, name: str) -> FormField | None:
        return next((f for f in self.fields if f.name == name), None)

    def detail(self, db_name: str) -> DetailTable | None:
        return next((d for d in self.details if d.db_name == db_name), None)


CAMPAIGN_APPROVAL = WorkflowDef(
    id=101,
    name="市场活动审批",
    form_table="formtable_main_101",
    title_field="hdmc",
    creator_departments=frozenset({"市场部", "信息部"}),
    fields=(
        FormField("hdmc", "活动名称", required=True),
        FormField("crmid", "CRM活动ID", required=True),
        FormField("hdlx", "活动类型"),
        FormField("ksrq", "开始日期", kind="date"),
        FormField("jsrq", "结束日期", kind="date"),
        FormField("ysje", "预算金额", required=True, kind="number"),
        FormField("yqsr", "预期收入", kind="number"),
        FormField("fzr", "负责人"),
        FormField("hdsm", "活动说明"),
        FormField("fj", "附件", kind="file"),
    ),
    details=(
        DetailTable(
            "formtable_main_101_dt1",
            (FormField("fyxm", "费用项目"), FormField("je", "金额", kind="number"), FormField("bz", "备注")),
        ),
    ),
    nodes=(
        Node(1011, "申请人", NODE_CREATE),
        Node(1012, "部门经理", NODE_APPROVE, operator_id=102),
        Node(1013, "市场总监", NODE_APPROVE, operator_id=103),
        Node(1014, "归档", NODE_ARCHIVE),
    ),
)

CONTRACT_APPROVAL = WorkflowDef(
    id=102,
    name="合同审批",
    form_table="formtable_main_102",
    title_field="htmc",
    creator_departments=frozenset({"销售部", "信息部"}),
    fields=(
        FormField("htbh", "合同编号", required=True),
        FormField("htmc", "合同名称", required=True),
        FormField("crmdealid", "CRM商机ID", required=True),
        FormField("khmc", "客户名称"),
        FormField("htje", "合同金额", required=True, kind="number"),
        FormField("qdrq", "签订日期", kind="date"),
        FormField("htfj", "合同附件", kind="file"),
    ),
    details=(
        DetailTable(
            "formtable_main_102_dt1",
            (
                FormField("cpmc", "产品名称"),
                FormField("sl", "数量", kind="number"),
                FormField("dj", "单价", kind="number"),
                FormField("je", "金额", kind="number"),
            ),
        ),
    ),
    nodes=(
        Node(1021, "申请人", NODE_CREATE),
        Node(1022, "法务", NODE_APPROVE, operator_id=104),
        Node(1023, "财务", NODE_APPROVE, operator_id=105),
        Node(1024, "总经理", NODE_APPROVE, operator_id=106),
        Node(1025, "归档", NODE_ARCHIVE),
    ),
)

SEAL_APPLICATION = WorkflowDef(
    id=103,
    name="用印申请",
    form_table="formtable_main_103",
    title_field="sy",
    creator_departments=frozenset({"销售部", "市场部", "信息部"}),
    fields=(
        FormField("sy", "用印事由", required=True),
        FormField("yzlx", "印章类型"),
        FormField("crmdealid", "CRM商机ID"),
    ),
    details=(),
    nodes=(
        Node(1031, "申请人", NODE_CREATE),
        Node(1032, "法务经理", NODE_APPROVE, operator_id=110),
        Node(1033, "归档", NODE_ARCHIVE),
    ),
)

WORKFLOWS: Mapping[int, WorkflowDef] = {w.id: w for w in (CAMPAIGN_APPROVAL, CONTRACT_APPROVAL, SEAL_APPLICATION)}
