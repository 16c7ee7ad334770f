"""Lead conversion (``POST /Leads/{id}/actions/convert``): a lead becomes an Account, a Contact, optionally a Deal.

Body ``{"data": [{"Accounts": {"id"}?, "Contacts": {"id"}?, "Deals": {"Deal_Name", "Stage", ...}?,
"overwrite", "notify_lead_owner", "notify_new_entity_owner", "assign_to"}]}`` (all optional, body too).

- Account: the one given by id, else a live account whose ``Account_Name`` equals the lead's ``Company``
  (case-insensitive), else a new one named after ``Company``. No ``Company`` and no id: no account.
- Contact: the one given by id, else a new one from the lead's name, e-mail and phones, linked to the account.
- Deal: only when ``Deals`` is given (its mandatory fields apply); linked to the account and contact.
- The lead leaves the live list and search; ``GET /Leads/{id}`` still answers, with ``$converted: true`` and
  ``$converted_detail``. Converting it again is 400 ``ID_ALREADY_CONVERTED`` [L].
- Answer v3+: ``data[{code: SUCCESS, details: {Accounts: {name, id}, Contacts: {...}, Deals: {...}|null},
  message, status}]``; v2/v2.1: ``data[{Accounts: id, Contacts: id, Deals: id}]`` (the older flat shape).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from infra.simulators.zoho.auth import ApiUser
from infra.simulators.zoho.errors import ZohoApiError
from infra.simulators.zoho.modules import ModuleDef, key_value
from infra.simulators.zoho.store import RecordStore
from infra.simulators.zoho.timefmt import ZohoClock, now_ms
from infra.simulators.zoho.writer import RecordWriter

CONTACT_FIELDS = ("First_Name", "Last_Name", "Email", "Phone", "Mobile", "Description", "Lead_Source")


class LeadConverter:
    def __init__(
        self, store: RecordStore, writer: RecordWriter, modules: Mapping[str, ModuleDef], clock: ZohoClock
    ) -> None:
        self.store = store
        self.writer = writer
        self.modules = modules
        self.clock = clock

    def _existing(self, module: str, ref: Any, api_name: str) -> str:
        ref_id = ref.get("id") if isinstance(ref, dict) else ref
        if ref_id is None or self.store.get(module, str(ref_id)) is None:
            raise ZohoApiError(
                400,
                "INVALID_DATA",
                "the id given seems to be invalid",
                {"api_name": api_name, "id": str(ref_id)},
            )
        return str(ref_id)

    def _create(self, module: str, values: dict[str, Any], user: ApiUser, api_name: str) -> str:
        outcome = self.writer.insert(self.modules[module], [values], user)
        result = outcome.results[0]
        if result["status"] != "success":
            details = dict(result.get("details") or {})
            details["json_path"] = f"$.data[0].{api_name}" + (
                f".{details['api_name']}" if details.get("api_name") else ""
            )
            raise ZohoApiError(400, result["code"], result["message"], details)
        return str(result["details"]["id"])

    def convert(self, lead_id: str, options: dict[str, Any], user: ApiUser, version: str) -> dict[str, Any]:
        lead = self.store.get("Leads", lead_id, include_deleted=True)
        if lead is None or (lead.deleted_ms is not None and lead.delete_type != "converted"):
            raise ZohoApiError(400, "INVALID_DATA", "the id given seems to be invalid", {"api_name": "id"})
        if lead.delete_type == "converted":
            raise ZohoApiError(400, "ID_ALREADY_CONVERTED", "id already converted", {"id": lead_id})
        data = lead.data
        with self.store.db.transaction():
            account_id: str | None = None
            if options.get("Accounts") is not None:
                account_id = self._existing("Accounts", options["Accounts"], "Accounts")
            elif data.get("Company"):
                same_name = self.store.ids_by_key("Accounts", "Account_Name", key_value(data["Company"]) or "")
                account_id = same_name[0] if same_name else self._create(
                    "Accounts",
                    {"Account_Name": data["Company"], "Phone": data.get("Phone"), "Website": data.get("Website"),
                     "Industry": data.get("Industry"), "Description": data.get("Description")},
                    user, "Accounts",
                )  # fmt: skip
            if options.get("Contacts") is not None:
                contact_id = self._existing("Contacts", options["Contacts"], "Contacts")
            else:
                contact = {name: data.get(name) for name in CONTACT_FIELDS if data.get(name) is not None}
                if account_id:
                    contact["Account_Name"] = {"id": account_id}
                contact_id = self._create("Contacts", contact, user, "Contacts")
            deal_id: str | None = None
            if isinstance(options.get("Deals"), dict):
                deal = {**options["Deals"]}
                if account_id:
                    deal.setdefault("Account_Name", {"id": account_id})
                deal.setdefault("Contact_Name", {"id": contact_id})
                if data.get("Campaign_Source"):
                    deal.setdefault("Campaign_Source", data["Campaign_Source"])
                deal_id = self._create("Deals", deal, user, "Deals")
            converted = {"Accounts": account_id, "Contacts": contact_id, "Deals": deal_id}
            lead.data["$converted"] = True
            lead.data["$converted_detail"] = {
                "convert_date": self.clock.format(now_ms()),
                "converted_by": user.ref(),
                **{k.lower().rstrip("s"): v for k, v in converted.items()},
            }
            self.store.mark_converted(lead, user=user.ref(), at_ms=now_ms())
        if version in ("v2", "v2.1"):
            return {"data": [converted]}
        return {
            "data": [
                {
                    "code": "SUCCESS",
                    "details": {name: self._ref(name, ref) for name, ref in converted.items()},
                    "message": "SUCCESS",
                    "status": "success",
                }
            ]
        }

    def _ref(self, module: str, record_id: str | None) -> dict[str, Any] | None:
        if record_id is None:
            return None
        record = self.store.get(module, record_id)
        display = self.modules[module].display_field
        return {"name": record.data.get(display) if record and display else None, "id": record_id}
