"""``QueryBusinessInfo``: a form's metadata as the WebAPI describes it, enough to know what a Save must carry.

``Result.NeedReturnData``: ``Id`` (form id), ``Name`` (``[{"Key": 2052, "Value": caption}]``), ``PkFieldName``,
``Entrys``: the header entity (``Key`` ``FBillHead``) and the entry entity, each with ``Fields``: ``Key``, ``Name``,
``FieldName`` (the column), ``TableName`` (the table holding it: the entity's, or a split such as ``_L`` texts and
``_F`` amounts), ``MustInput`` (1: required on create — the form's own rule or this account's); each entity names its
own ``TableName`` too.  The real metadata carries far more (element types, lookups, lock rules); these keys follow its
naming [M].
"""

from __future__ import annotations

from typing import Any

from infra.simulators.kingdee.account_forms import AccountForms
from infra.simulators.kingdee.forms import FieldDef, FormDef

AUTO = frozenset({"FDocumentStatus", "FCancelStatus", "FCreatorId", "FCreateDate", "FModifierId", "FModifyDate",
                  "FApproverId", "FApproveDate", "FForbidStatus", "FMasterId"})


def _field(form: FormDef, f: FieldDef, forms: AccountForms) -> dict[str, Any]:
    required = f.required or forms.requires(form.form_id, f.key)
    return {"Key": f.key, "Name": [{"Key": 2052, "Value": f.label}], "FieldName": f.column,
            "TableName": f.table, "MustInput": 1 if required and f.key not in AUTO else 0}


def business_info(form: FormDef, forms: AccountForms) -> dict[str, Any]:
    entities = [{"Key": "FBillHead", "Name": [{"Key": 2052, "Value": "单据头"}], "TableName": form.header,
                 "Fields": [_field(form, f, forms) for f in form.header_fields()]}]
    if form.entry is not None:
        entities.append({"Key": form.entry.key, "Name": [{"Key": 2052, "Value": "明细"}], "TableName": form.entry.table,
                         "Fields": [_field(form, f, forms) for f in form.entry_fields()]})
    status = {"ErrorCode": 0, "IsSuccess": True, "Errors": [], "SuccessEntitys": [], "SuccessMessages": [],
              "MsgCode": 0}
    return {"Result": {"ResponseStatus": status, "NeedReturnData": {
        "Id": form.form_id, "Name": [{"Key": 2052, "Value": form.caption}], "PkFieldName": form.key,
        "Entrys": entities}}}
