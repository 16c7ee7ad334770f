"""The OAuth scopes cdchub needs in ZOHO CRM, and the scope a refused call lacked.

The refresh token cdchub is given carries the scopes chosen when its grant was made (ZOHO API console, self client
or the authorization request); a call outside them is answered 401 ``OAUTH_SCOPE_MISMATCH`` with no hint of what
was missing.  :func:`scope_for` names it from the URL, so the error says which scope to add (README, "ZOHO OAuth
scopes").  A scope is ``ZohoCRM.<family>[.<resource>].<OPERATION>``; ``ALL`` covers every operation.
"""

from __future__ import annotations

#: What cdchub calls, and why (README lists the same).
REQUIRED_SCOPES: dict[str, str] = {
    "ZohoCRM.modules.ALL": "records of Products, Accounts, Leads, Campaigns, Deals, Sales_Orders, Invoices and the "
                           "custom modules Deliveries and Payments: read, upsert, update, search, deleted lists, "
                           "their notes and attachments",
    "ZohoCRM.settings.fields.READ": "the change poller asks which fields each polled module has",
    "ZohoCRM.users.READ": "who the integration user is (its own writes are not polled back)",
    "ZohoCRM.notifications.ALL": "watch channels that wake the poller (unless CDCHUB_ZOHO__WATCH_NOTIFY_URL is empty)",
}

#: Module scope names of ZOHO's standard modules; any other module is a custom one (``modules.custom``).
_STANDARD = frozenset({
    "leads", "accounts", "contacts", "deals", "campaigns", "tasks", "cases", "events", "calls", "solutions",
    "products", "vendors", "pricebooks", "quotes", "salesorders", "purchaseorders", "invoices", "notes",
    "appointments", "services",
})  # fmt: skip
_OPERATION = {"GET": "READ", "POST": "CREATE", "PUT": "UPDATE", "PATCH": "UPDATE", "DELETE": "DELETE"}


def scope_for(method: str, path: str) -> str:
    """The narrowest scope a call needs (``ZohoCRM.modules.ALL`` and the family's ``ALL`` cover it too); ``path``
    is relative to ``/crm/{version}/``, with or without a query."""
    parts = path.split("?", 1)[0].strip("/").split("/")
    operation = _OPERATION.get(method.upper(), "ALL")
    head = parts[0]
    if head == "settings" and len(parts) > 1:
        return f"ZohoCRM.settings.{parts[1]}.{operation}"
    if head in ("users", "org"):
        return f"ZohoCRM.{head}.{operation}"
    if head == "coql":
        return "ZohoCRM.coql.READ"
    if parts[:2] == ["actions", "watch"]:
        return f"ZohoCRM.notifications.{operation}"
    if len(parts) >= 3 and parts[2] == "Notes":
        return f"ZohoCRM.modules.notes.{operation}"
    if parts[1:2] == ["upsert"] or parts[2:4] == ["actions", "convert"]:
        operation = "CREATE"
    name = head.replace("_", "").lower()
    return f"ZohoCRM.modules.{name if name in _STANDARD else 'custom'}.{operation}"
