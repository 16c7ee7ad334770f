"""The metadata APIs, generated from the module declarations: modules, fields, org, users.

The official SDK calls these before anything else (``/settings/modules``, ``/settings/fields?module=`` for each
module it touches and, recursively, for every lookup and subform target, ``/users?type=CurrentUser`` and ``/org``
after each token refresh), and parses them against its own type table, so key names and JSON types follow the
real v8 answers. Only a subset of the real keys is served. A subform (``Ordered_Items``, ``Delivery_Lines``) is a
module of its own here, as in the real CRM: ``/settings/fields?module=Ordered_Items`` describes its row fields.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from infra.simulators.zoho.auth import ApiUser
from infra.simulators.zoho.catalog import module_id
from infra.simulators.zoho.modules import SYSTEM_FIELDS, FieldDef, ModuleDef

ORG_ID = "4876876000000000001"  # also the org's zgid
PROFILE = {"name": "Administrator", "id": "4876876000000026011"}
ROLE = {"name": "CEO", "id": "4876876000000026005"}
FIELD_ID_BASE = 4_876_876_000_000_500_000
TIME_ZONES = {"+08:00": "Asia/Shanghai", "+00:00": "UTC", "Z": "UTC", "UTC": "UTC", "+05:30": "Asia/Kolkata"}
# Our data types → the data_type / json_type the real metadata shows.
DATA_TYPES = {"multi_module_lookup": "lookup"}
JSON_TYPES = {
    "integer": "integer", "double": "double", "currency": "double", "boolean": "boolean",
    "lookup": "jsonobject", "multi_module_lookup": "jsonobject", "subform": "jsonarray",
}  # fmt: skip


def time_zone(utc_offset: str) -> str:
    if utc_offset in TIME_ZONES:
        return TIME_ZONES[utc_offset]
    sign, hours = utc_offset[0], int(utc_offset[1:3])
    return f"Etc/GMT{'-' if sign == '+' else '+'}{hours}"  # POSIX zones have the sign reversed


def module_meta(module: ModuleDef, position: int) -> dict[str, Any]:
    plural = module.plural_label or module.api_name.replace("_", " ")
    return {
        "api_name": module.api_name,
        "module_name": module.api_name,
        "id": module_id(module),
        "singular_label": module.singular_label or module.api_name,
        "plural_label": plural,
        "generated_type": module.generated_type,
        "api_supported": True,
        "creatable": True,
        "editable": True,
        "deletable": True,
        "viewable": True,
        "convertable": module.convertable,
        "quick_create": True,
        "show_as_tab": True,
        "visible": True,
        "visibility": 1,
        "status": "visible",
        "sequence_number": position + 1,
        "global_search_supported": True,
        "filter_supported": True,
        "feeds_required": False,
        "presence_sub_menu": False,
        "isBlueprintSupported": True,
        "profiles": [PROFILE],
        "parent_module": {},
        "arguments": [],
        "web_link": None,
        "modified_time": None,
        "modified_by": None,
        "description": None,
    }


def _field_id(module_name: str, position: int) -> str:
    return str(FIELD_ID_BASE + (sum(map(ord, module_name)) % 997) * 100 + position)


def field_meta(field: FieldDef, module_name: str, position: int) -> dict[str, Any]:
    """One element of ``GET /settings/fields`` (a subset of the real keys, with the real JSON types)."""
    user_lookup = field.data_type == "lookup" and field.lookup_module == "users"
    data_type = "ownerlookup" if user_lookup else DATA_TYPES.get(field.data_type, field.data_type)
    meta: dict[str, Any] = {
        "api_name": field.api_name,
        "id": _field_id(module_name, position),
        "field_label": field.field_label,
        "display_label": field.field_label,
        "data_type": data_type,
        "json_type": "jsonobject" if user_lookup else JSON_TYPES.get(field.data_type, "string"),
        "length": field.max_length,
        "system_mandatory": field.mandatory,
        "custom_field": field.custom,
        "read_only": field.read_only,
        "field_read_only": field.read_only,
        "visible": True,
        "sequence_number": position + 1,
        "unique": {"casesensitive": "false"} if field.unique else {},
        "pick_list_values": [],
        "lookup": {},
        "associated_module": None,
    }
    if field.data_type == "picklist":
        meta["pick_list_values"] = [
            {"display_value": v, "actual_value": v, "sequence_number": i + 1, "type": "used"}
            for i, v in enumerate(field.picklist_values)
        ]
    if field.data_type == "lookup" and not user_lookup:
        meta["lookup"] = {
            "module": {"api_name": field.lookup_module, "id": None},
            "display_label": field.field_label,
            "api_name": field.api_name,
        }
    if field.data_type == "subform":
        meta["associated_module"] = {"module": field.subform_module, "api_name": field.subform_module}
    return meta


def fields_meta(
    modules: Mapping[str, ModuleDef], name: str, *, include_system: bool = True
) -> list[dict[str, Any]] | None:
    """``/settings/fields?module=name``: a module's fields plus the system ones, or a subform's row fields."""
    module = modules.get(name)
    if module is not None:
        declared: Sequence[FieldDef] = module.fields
        system = [f for f in SYSTEM_FIELDS if f.api_name != "id"] if include_system else []
        return [field_meta(f, name, i) for i, f in enumerate([*declared, *system])]
    for candidate in modules.values():
        for spec in candidate.subforms:
            if spec.subform_module == name:
                rows = [*spec.rows, FieldDef("Parent_Id", "lookup", lookup_module=candidate.api_name,
                                              read_only=True, label="Parent Id")]  # fmt: skip
                return [field_meta(f, name, i) for i, f in enumerate(rows)]
    return None


def org_meta(utc_offset: str, company: str = "cdchub Demo") -> dict[str, Any]:
    return {
        "org": [
            {
                "id": ORG_ID,
                "zgid": ORG_ID,
                "company_name": company,
                "domain_name": "org" + ORG_ID[-8:],
                "primary_email": "admin@cdchub.local",
                "primary_zuid": "4876876000000100000",
                "country": "China",
                "country_code": "CN",
                "currency": "Chinese Yuan Renminbi - CNY",
                "currency_symbol": "¥",
                "currency_locale": "zh_CN",
                "iso_code": "CNY",
                "time_zone": time_zone(utc_offset),
                "type": "production",
                "mc_status": False,
                "gapps_enabled": False,
                "translation_enabled": False,
                "privacy_settings": False,
                "hipaa_compliance_enabled": False,
                "max_per_page": 200,
                "license_details": {
                    "paid": True,
                    "paid_type": "enterprise",
                    "users_license_purchased": 10,
                    "paid_expiry": None,
                    "trial_type": None,
                    "trial_expiry": None,
                },
            }
        ]
    }


def user_meta(user: ApiUser, utc_offset: str, *, is_admin: bool) -> dict[str, Any]:
    first, _, last = user.name.partition(" ")
    return {
        "id": user.id,
        "zuid": str(int(user.id) + 7_000_000),
        "full_name": user.name,
        "first_name": first if last else None,
        "last_name": last or first,
        "email": user.email,
        "status": "active",
        "confirm": True,
        "role": ROLE,
        "profile": PROFILE if is_admin else {"name": "Standard", "id": "4876876000000026014"},
        "language": "zh_CN",
        "locale": "zh_CN",
        "time_zone": time_zone(utc_offset),
        "time_format": "HH:mm",
        "date_format": "yyyy-MM-dd",
        "country_locale": "zh_CN",
        "Isonline": True,
    }


def users_body(
    users: Sequence[tuple[ApiUser, bool]], utc_offset: str, page: int, per_page: int
) -> dict[str, Any] | None:
    start = (page - 1) * per_page
    chosen = users[start : start + per_page]
    if not chosen:
        return None
    return {
        "users": [user_meta(u, utc_offset, is_admin=admin) for u, admin in chosen],
        "info": {
            "per_page": per_page,
            "count": len(chosen),
            "page": page,
            "more_records": len(users) > start + per_page,
        },
    }
