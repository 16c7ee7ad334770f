"""How this Kingdee account has set its forms up: fields it makes required (必录) and bill coding rules (编码规则).

Real K/3 Cloud accounts differ here, and the first real orders of an integration tested against a lenient system
are refused (MsgCode 11, "字段…是必填项").  So the simulator is strict by default, like a typical account whose forms
do not default these values:

* **Required on create** (beyond what every account requires): a sales order's bill type, date and sales
  organisation; a customer's creating and using organisation.  ``QueryBusinessInfo`` reports them as
  ``MustInput``, so a connector can check at start what it must send.
* **Coding rules**: a bill's number is given by its coding rule, and a number sent with ``Save`` is replaced (the
  rule does not allow manual numbers); basedata (materials, customers) keep the code they are given.  A connector
  must therefore find the documents it created by a link it wrote, never by the number it asked for.

``--forms lenient`` turns both off (manual numbers everywhere, only the forms' own required fields).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class AccountForms:
    #: form id → field keys this account requires on create (the forms' own required fields apply anyway).
    required: Mapping[str, frozenset[str]] = field(default_factory=dict)
    #: forms whose coding rule keeps a number sent with Save; every other bill gets the rule's next number.
    manual_numbers: frozenset[str] | None = None  # None: every form

    def requires(self, form_id: str, key: str) -> bool:
        return key in self.required.get(form_id, frozenset())

    def keeps_number(self, form_id: str) -> bool:
        return self.manual_numbers is None or form_id in self.manual_numbers


STRICT = AccountForms(
    required={
        "SAL_SaleOrder": frozenset({"FBillTypeID", "FDate", "FSaleOrgId"}),
        "BD_Customer": frozenset({"FCreateOrgId", "FUseOrgId"}),
    },
    manual_numbers=frozenset({"BD_MATERIAL", "BD_Customer"}),
)
LENIENT = AccountForms()
PROFILES = {"strict": STRICT, "lenient": LENIENT}
