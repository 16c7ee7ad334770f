"""Finding a CRM record by a key field (``Kingdee_ID``…) although ZOHO's search index trails writes.

``/search`` does not see a record created or changed in the last seconds (under load, minutes), and may still find
one by a key it had before a change, showing its old values.  So a miss is not proof of absence and a hit is not
the record as it is.  A miss is checked against the list API, which never lags: the records modified in the last
:data:`RECENT_S` seconds (``If-Modified-Since``, newest first, at most :data:`RECENT_PAGES` pages of ``id`` and the
key).  Whatever is found is read again by id, and kept only if it still carries the key.

The flows themselves never need this: they name records by the id the create returned (kept in the sync ledger,
``core/id_map.py``) and write by upsert on the key field, which ZOHO matches without the search index.  It is the
fallback of a lookup with no ledger entry (a replay from an empty ledger).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from connectors.zoho.client import LIST_PER_PAGE, ZohoClient

#: How far back the list API is asked when search finds nothing: longer than ZOHO's index ever trails.
RECENT_S = 600
RECENT_PAGES = 5


def _same(value: Any, wanted: str) -> bool:
    return value is not None and str(value).casefold() == wanted.casefold()  # ZOHO compares text so


def find_by_key(client: ZohoClient, module: str, field: str, value: Any) -> dict[str, Any] | None:
    """The live record of ``module`` whose ``field`` is ``value`` as the CRM holds it now, or None."""
    wanted = str(value)
    searched = [str(r["id"]) for r in client.search(module, field, wanted) if r.get("id")]
    found = _first_carrying(client, module, field, wanted, searched)
    if found is None:
        recent = _recently_modified(client, module, field, wanted)
        found = _first_carrying(client, module, field, wanted, (i for i in recent if i not in searched))
    return found


def _first_carrying(client: ZohoClient, module: str, field: str, wanted: str,
                    ids: Iterable[str]) -> dict[str, Any] | None:
    for record_id in ids:
        record = client.get(module, record_id)
        if record is not None and _same(record.get(field), wanted):
            return record
    return None


def _recently_modified(client: ZohoClient, module: str, field: str, wanted: str) -> list[str]:
    """Ids of records modified in the last :data:`RECENT_S` seconds whose ``field`` is ``wanted``."""
    since = datetime.fromtimestamp(time.time() - RECENT_S, UTC).isoformat(timespec="seconds")
    params: dict[str, Any] = {"fields": f"id,{field}", "sort_by": "Modified_Time", "sort_order": "desc",
                              "per_page": LIST_PER_PAGE, "page": 1}
    found: list[str] = []
    for _ in range(RECENT_PAGES):
        status, body = client.request("GET", module, params=params, headers={"If-Modified-Since": since})
        if status in (204, 304) or not body:
            break
        found += [str(r["id"]) for r in body.get("data") or [] if r.get("id") and _same(r.get(field), wanted)]
        if found or not (body.get("info") or {}).get("more_records"):
            break
        params["page"] += 1
    return found
