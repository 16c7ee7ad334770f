"""A CRM module's records read page by page for a replay's comparison (``ZohoClient.list_records``): one credit per
200 records instead of one per record.  Used when enough records are compared and none of them has line items
(subforms, which the list API does not return); otherwise records are read one by one."""

from __future__ import annotations

from typing import Any

from connectors.common.sync import SyncCommand
from connectors.zoho.client import LIST_MAX_FIELDS, ZohoClient

#: Below this many records, reading them one by one costs fewer credits than listing the module.
LIST_FROM = 20


class ListedRecords:
    def __init__(self, records: list[dict[str, Any]], key_field: str | None) -> None:
        self.by_id = {str(r["id"]): r for r in records if r.get("id")}
        self.by_key = {str(r[key_field]): r for r in records if key_field and r.get(key_field) not in (None, "")}

    def find(self, record_id: str | None, key: Any = None) -> dict[str, Any] | None:
        if record_id and record_id in self.by_id:
            return self.by_id[record_id]
        return self.by_key.get(str(key)) if key is not None else None


def list_for(client: ZohoClient, module: str, commands: list[SyncCommand],
             key_field: str | None) -> ListedRecords | None:
    """The module's records with the fields the commands write, or None when listing does not pay or cannot
    show them."""
    fields = sorted({f for c in commands for f in c.record} | {"id"} | ({key_field} if key_field else set()))
    if len(commands) < LIST_FROM or len(fields) > LIST_MAX_FIELDS or any(
            isinstance(v, list) for c in commands for v in c.record.values()):
        return None
    return ListedRecords(list(client.list_records(module, fields)), key_field)
