"""Reference data of the simulated tenant, declared as data: employees, expense types, custom form fields."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

from infra.simulators.huilianyi.statuses import ReportType


def stable_oid(kind: str, key: str) -> str:
    """A UUID that is the same in every run, so references survive a reset or restart."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"huilianyi-sim/{kind}/{key}"))


@dataclass(frozen=True)
class Employee:
    employee_id: str
    name: str
    department: str

    @property
    def oid(self) -> str:
        return stable_oid("user", self.employee_id)


@dataclass(frozen=True)
class ExpenseType:
    code: str
    name: str
    tax_rate: Decimal  # input VAT rate of the typical invoice
    low: int  # typical amount range, CNY
    high: int
    comments: tuple[str, ...]


EMPLOYEES = (
    Employee("E0001", "张伟", "市场部"),
    Employee("E0002", "王芳", "市场部"),
    Employee("E0003", "李娜", "销售一部"),
    Employee("E0004", "刘洋", "销售一部"),
    Employee("E0005", "陈静", "销售二部"),
    Employee("E0006", "杨帆", "销售二部"),
    Employee("E0007", "赵敏", "研发中心"),
    Employee("E0008", "黄磊", "财务部"),
    Employee("E0009", "周婷", "行政部"),
    Employee("E0010", "吴强", "华南大区"),
)
EMPLOYEES_BY_ID = {e.employee_id: e for e in EMPLOYEES}

EXPENSE_TYPES = (
    ExpenseType("TRAVEL_TRANSPORT", "差旅费-交通", Decimal("0.09"), 80, 2400,
                ("高铁二等座 上海-北京", "机票 深圳-上海", "出租车", "高铁 杭州-南京")),
    ExpenseType("TRAVEL_HOTEL", "差旅费-住宿", Decimal("0.06"), 300, 1800,
                ("全季酒店 2晚", "汉庭酒店 1晚", "亚朵酒店 3晚")),
    ExpenseType("TRAVEL_ALLOWANCE", "差旅费-补助", Decimal("0"), 100, 600, ("出差补助",)),
    ExpenseType("ENTERTAINMENT", "业务招待费", Decimal("0"), 200, 3000, ("客户晚餐", "客户午餐 4人")),
    ExpenseType("MEETING", "会议费", Decimal("0.06"), 500, 8000, ("季度经营会议场地", "客户研讨会茶歇")),
    ExpenseType("MARKETING", "市场推广费", Decimal("0.06"), 1000, 20000,
                ("展会展位费", "线上推广投放", "宣传物料印刷")),
    ExpenseType("OFFICE", "办公费", Decimal("0.13"), 30, 800, ("办公用品", "打印耗材")),
)  # fmt: skip
EXPENSE_TYPES_BY_CODE = {t.code: t for t in EXPENSE_TYPES}

#: Which expense types a report of each type draws its lines from.
LINE_TYPES = {
    ReportType.DAILY: ("ENTERTAINMENT", "MEETING", "MARKETING", "OFFICE"),
    ReportType.TRAVEL: ("TRAVEL_TRANSPORT", "TRAVEL_HOTEL", "TRAVEL_ALLOWANCE"),
    ReportType.EXPENSE: ("ENTERTAINMENT", "MEETING", "MARKETING", "OFFICE", "TRAVEL_TRANSPORT"),
}
REPORT_TYPE_TITLES = {
    ReportType.DAILY: "日常费用报销",
    ReportType.TRAVEL: "差旅费报销",
    ReportType.EXPENSE: "费用报销",
}
DESTINATIONS = ("北京", "上海", "广州", "深圳", "杭州", "成都", "武汉", "南京")

#: Custom form fields (``customFormValueVOList``): code → label.
CAMPAIGN_FIELD = "crm_campaign_id"
FORM_FIELDS = {
    CAMPAIGN_FIELD: "关联市场活动",
    "travel_destination": "出差目的地",
    "reason": "报销事由",
}
CURRENCY = "CNY"
