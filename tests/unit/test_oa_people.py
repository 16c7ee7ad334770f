"""Which OA person a CRM user is (flows/oa_people.py): by email, else by login id, re-read at most every 5 min."""

from __future__ import annotations

from typing import Any

from flows.oa_people import REFRESH_S, OaPeople


def test_matched_by_email_then_by_login_id_and_the_directory_is_read_again_only_after_a_while() -> None:
    directory: list[dict[str, Any]] = [
        {"id": 101, "loginid": "lina", "email": "Li.Na@corp.cn", "status": "1"},
        {"id": 107, "loginid": "zhangwei", "email": "", "status": "1"},
        {"id": 199, "loginid": "gone", "email": "gone@corp.cn", "status": "5"},  # 离职 (left the company)
    ]
    reads, now = [0], [0.0]

    def read() -> list[dict[str, Any]]:
        reads[0] += 1
        return list(directory)

    people = OaPeople(read, ("email", "loginid"), clock=lambda: now[0])
    assert people.user_for("li.na@CORP.cn ") == 101
    assert people.user_for("zhangwei@crm.example.com") == 107, "no email in the OA: the login id"
    assert people.user_for("gone@corp.cn") is None, "someone who left is nobody's creator"
    assert people.user_for(None) is None and people.user_for("") is None
    assert reads[0] == 1

    directory.append({"id": 120, "loginid": "newhire", "email": "newhire@corp.cn", "status": "1"})
    assert people.user_for("newhire@corp.cn") is None and reads[0] == 1, "a miss does not read again at once"
    now[0] += REFRESH_S
    assert people.user_for("newhire@corp.cn") == 120 and reads[0] == 2

    assert OaPeople(read, ("email",)).user_for("zhangwei@crm.example.com") is None, "only what is declared"
