"""The OA's people: user ids, Chinese names, departments. Declared as data; the approvers of the workflows.

User ``1`` is the system administrator (系统管理员) an integration usually acts as.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class OaUser:
    id: int
    loginid: str
    name: str
    department: str
    title: str

    @property
    def email(self) -> str:
        return f"{self.loginid}@cdchub.local"

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "loginid": self.loginid, "lastname": self.name, "email": self.email,
                "departmentName": self.department, "jobtitle": self.title, "status": "1"}  # fmt: skip


USERS: Mapping[int, OaUser] = {
    u.id: u
    for u in (
        OaUser(1, "sysadmin", "系统管理员", "信息部", "管理员"),
        OaUser(101, "lina", "李娜", "市场部", "市场专员"),
        OaUser(102, "wangqiang", "王强", "市场部", "部门经理"),
        OaUser(103, "chenjing", "陈静", "市场部", "市场总监"),
        OaUser(104, "liuyang", "刘洋", "法务部", "法务专员"),
        OaUser(105, "zhaomin", "赵敏", "财务部", "财务经理"),
        OaUser(106, "zhoujianguo", "周建国", "总经办", "总经理"),
        OaUser(107, "zhangwei", "张伟", "市场部", "市场经理"),
        OaUser(108, "sunli", "孙丽", "销售部", "销售代表"),
        OaUser(109, "yangfan", "杨帆", "销售部", "销售经理"),
        OaUser(110, "huangmin", "黄敏", "法务部", "法务经理"),
    )
}


def user_by_name(name: str) -> OaUser | None:
    """Look a user up by Chinese name, login id or id (used by ``forward:张伟`` script steps)."""
    text = name.strip()
    for user in USERS.values():
        if text in (user.name, user.loginid, str(user.id)):
            return user
    return None
