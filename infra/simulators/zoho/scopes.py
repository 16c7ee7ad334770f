"""OAuth scopes as ZOHO CRM checks them: which scope each URL needs, and whether a token's scopes grant it.

A scope is ``ZohoCRM.<family>[.<resource>].<OPERATION>`` (case-insensitive), e.g. ``ZohoCRM.modules.ALL``,
``ZohoCRM.modules.leads.READ``, ``ZohoCRM.settings.fields.READ``, ``ZohoCRM.users.READ``, ``ZohoCRM.org.READ``,
``ZohoCRM.notifications.ALL``, ``ZohoCRM.coql.READ``. Without a resource it covers the whole family
(``ZohoCRM.modules.READ`` reads every module). ``ALL`` grants every operation; ``WRITE`` grants CREATE, UPDATE
and DELETE. A token carries the scopes of the grant its refresh token came from.

What each URL needs (``/crm/{version}/...``; the operation follows the method: GET READ, POST CREATE, PUT/PATCH
UPDATE, DELETE DELETE):

- ``{Module}``, ``{Module}/{id}``, ``{Module}/search``, ``{Module}/deleted`` → ``modules.<module>``; upsert is a
  CREATE; attachments of a record → its module; ``{Module}/{id}/Notes`` → ``modules.notes``; lead conversion →
  ``modules.leads.CREATE``. The module's scope name is its API name in lower case without ``_``
  (``Sales_Orders`` → ``salesorders``); custom modules share ``modules.custom``.
- ``settings/fields`` → ``settings.fields.READ``, ``settings/modules`` → ``settings.modules.READ``;
  ``users`` → ``users.READ``; ``org`` → ``org.READ``; ``actions/watch`` → ``notifications.<operation>``.

A call without the scope it needs gets HTTP 401 ``{"code": "OAUTH_SCOPE_MISMATCH", "details": {}, "message":
"invalid oauth scope to access this URL", "status": "error"}`` (ZOHO's documented answer).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from infra.simulators.zoho.errors import ZohoApiError
from infra.simulators.zoho.modules import ModuleDef

#: What a client registered without scopes may do: every scope the simulated API knows.
FULL_ACCESS = (
    "ZohoCRM.modules.ALL", "ZohoCRM.settings.ALL", "ZohoCRM.users.ALL", "ZohoCRM.org.ALL",
    "ZohoCRM.notifications.ALL", "ZohoCRM.coql.READ",
)  # fmt: skip
OPERATIONS = frozenset({"ALL", "READ", "CREATE", "UPDATE", "DELETE", "WRITE"})
_BY_METHOD = {"GET": "READ", "HEAD": "READ", "POST": "CREATE", "PUT": "UPDATE", "PATCH": "UPDATE", "DELETE": "DELETE"}
_PATH = re.compile(r"^/crm/[^/]+/(?P<rest>.+?)/?$")


@dataclass(frozen=True)
class Need:
    """The scope a call needs: family (``modules``), resource (``products``; None: the family itself), operation."""

    family: str
    resource: str | None
    operation: str

    def __str__(self) -> str:
        parts = ["ZohoCRM", self.family, *([self.resource] if self.resource else []), self.operation]
        return ".".join(parts)


def parse_scopes(raw: str | Iterable[str] | None) -> tuple[str, ...]:
    """Scopes given as one string (separated by commas or spaces, as the console and the token answer show them)
    or as a list; invalid ones raise ValueError naming them."""
    if raw is None:
        return ()
    items = re.split(r"[\s,]+", raw) if isinstance(raw, str) else [str(s) for s in raw]
    scopes = tuple(dict.fromkeys(s.strip() for s in items if s and s.strip()))
    bad = [s for s in scopes if not _valid(s)]
    if bad:
        raise ValueError(f"not ZOHO CRM scopes: {', '.join(bad)} (like ZohoCRM.modules.ALL)")
    return scopes


def _valid(scope: str) -> bool:
    parts = scope.split(".")
    return len(parts) >= 3 and parts[0].lower() == "zohocrm" and parts[-1].upper() in OPERATIONS


def grants(scopes: Iterable[str], need: Need) -> bool:
    for scope in scopes:
        parts = scope.split(".")
        if len(parts) < 3 or parts[0].lower() != "zohocrm" or parts[1].lower() != need.family:
            continue
        resource = ".".join(parts[2:-1]).lower() or None
        if resource is not None and resource != need.resource:
            continue
        operation = parts[-1].upper()
        if operation in ("ALL", need.operation) or (operation == "WRITE" and need.operation != "READ"):
            return True
    return False


def module_scope_name(module: ModuleDef) -> str:
    return "custom" if module.generated_type == "custom" else module.api_name.replace("_", "").lower()


def required_scope(method: str, path: str, modules: Mapping[str, ModuleDef]) -> Need | None:
    """The scope ``method path`` needs; None when the path is none of the API's (the route answers it)."""
    match = _PATH.match(path)
    operation = _BY_METHOD.get(method.upper())
    if match is None or operation is None:
        return None
    parts = match.group("rest").split("/")
    head = parts[0]
    if head == "settings" and len(parts) > 1:
        return Need("settings", parts[1].lower(), operation)
    if head in ("users", "org", "coql"):
        return Need(head, None, "READ" if head == "coql" else operation)
    if head == "actions" and parts[1:2] == ["watch"]:
        return Need("notifications", None, operation)
    module = modules.get(head)
    if module is None:
        return None
    if len(parts) >= 3 and parts[2] == "Notes":
        return Need("modules", "notes", operation)
    if len(parts) >= 4 and parts[2:4] == ["actions", "convert"]:
        return Need("modules", module_scope_name(module), "CREATE")
    if len(parts) == 2 and parts[1] == "upsert":
        return Need("modules", module_scope_name(module), "CREATE")
    return Need("modules", module_scope_name(module), operation)


def scope_mismatch() -> ZohoApiError:
    return ZohoApiError(401, "OAUTH_SCOPE_MISMATCH", "invalid oauth scope to access this URL")
