"""Record reads with the real API's paging rules: list, get, deleted list, search.

- ``per_page`` ≤ 200; ``page`` reaches the first 2,000 records, ``page_token`` (from ``info.next_page_token``,
  valid 24 h, carrying the sort and ``If-Modified-Since`` of the first call) up to 100,000.
- ``If-Modified-Since`` keeps records whose millisecond ``Modified_Time`` is strictly after the header's time.
- No rows: HTTP 204 with an empty body (``None`` here); but with ``If-Modified-Since`` and nothing modified after
  it, HTTP 304 Not Modified with an empty body (:class:`NotModified`), on the list and on ``/deleted``, as ZOHO's
  status-code list says.
- Offset paging over live data: a write between two page calls shifts the pages, as it does for real.
- Search goes through the search index (``search_index.py``), which may trail the latest writes.
"""

from __future__ import annotations

import base64
import binascii
import heapq
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, cast

from infra.simulators.zoho.criteria import CriteriaError, compile_criteria, index_lookup, parse_criteria
from infra.simulators.zoho.errors import ZohoApiError, invalid_param, invalid_query, required_param
from infra.simulators.zoho.modules import ModuleDef, versioned_view
from infra.simulators.zoho.search_index import SearchIndex
from infra.simulators.zoho.store import SORT_COLUMNS, RecordStore, StoredRecord
from infra.simulators.zoho.timefmt import ZohoClock, now_ms

MAX_PER_PAGE = 200
MAX_FIELDS = 50
MAX_PAGE_RECORDS = 2_000
MAX_TOKEN_RECORDS = 100_000
PAGE_TOKEN_TTL_MS = 24 * 3600 * 1000
VERSIONS_WITHOUT_REQUIRED_FIELDS = ("v2", "v2.1")

Params = Mapping[str, str]
Body = dict[str, Any] | None


class NotModified(Exception):
    """Nothing was modified after the request's ``If-Modified-Since``: the answer is HTTP 304, empty."""


def _int_param(params: Params, name: str, default: int, low: int, high: int | None = None) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise invalid_param(name, f"{name} must be an integer") from exc
    if value < low or (high is not None and value > high):
        raise invalid_param(name, f"{name} must be between {low} and {high}" if high else f"{name} too small")
    return value


class RecordReader:
    def __init__(self, store: RecordStore, clock: ZohoClock, modules: Mapping[str, ModuleDef] | None = None,
                 search_index: SearchIndex | None = None) -> None:
        self.store = store
        self.clock = clock
        self.modules = modules or {}
        self.search_index = search_index or SearchIndex()

    # -- shapes ----------------------------------------------------------------------------------------------
    def full_view(self, record: StoredRecord) -> dict[str, Any]:
        return {
            "Owner": record.owner,
            **record.data,
            "id": record.id,
            "Created_By": record.created_by,
            "Modified_By": record.modified_by,
            "Created_Time": self.clock.format(record.created_ms),
            "Modified_Time": self.clock.format(record.modified_ms),
        }

    def render(self, record: StoredRecord, fields: Sequence[str] | None, version: str = "v8") -> dict[str, Any]:
        """The record as API ``version`` shows it (line items: ``Product_Details`` in v2, subform in v3+)."""
        view = self.full_view(record)
        module = self.modules.get(record.module)
        if module is not None:
            view = versioned_view(module, view, version)
            if module.convertable:
                view.setdefault("$converted", False)
        if fields is None:
            return view
        wanted = list(fields)
        if module is not None:  # either name of line items selects them, in the version's shape
            for spec in module.subforms:
                if spec.v2_api_name and (spec.api_name in wanted or spec.v2_api_name in wanted):
                    wanted += [spec.api_name, spec.v2_api_name]
        # A lead's conversion state (``$converted``, ``$converted_detail``) comes with any ``fields`` [M]
        meta = {k: v for k, v in view.items() if k.startswith("$converted")}
        return {"id": record.id, **{f: view[f] for f in wanted if f in view}, **meta}

    @staticmethod
    def flat_row(record: StoredRecord) -> dict[str, Any]:
        """Values for criteria: system times stay epoch ms."""
        return {
            **record.data, "id": record.id, "Owner": record.owner, "Created_By": record.created_by,
            "Modified_By": record.modified_by, "Created_Time": record.created_ms,
            "Modified_Time": record.modified_ms,
        }  # fmt: skip

    # -- parameters ------------------------------------------------------------------------------------------
    @staticmethod
    def parse_fields(params: Params, *, required: bool) -> list[str] | None:
        raw = params.get("fields")
        if raw is None or raw.strip() == "":
            if required:
                raise required_param("fields")
            return None
        fields = [f.strip() for f in raw.split(",") if f.strip()]
        if len(fields) > MAX_FIELDS:
            raise ZohoApiError(
                400,
                "LIMIT_EXCEEDED",
                f"at most {MAX_FIELDS} fields",
                {"param": "fields", "limit": MAX_FIELDS},
            )
        return fields

    def parse_since(self, header: str | None, name: str = "If-Modified-Since") -> int | None:
        if not header:
            return None
        try:
            return self.clock.parse(header)
        except ValueError as exc:
            raise ZohoApiError(400, "INVALID_DATA", f"{name} is not a valid time", {"header": name}) from exc

    @staticmethod
    def _encode_token(state: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode().rstrip("=")

    @staticmethod
    def _decode_token(token: str, module: str) -> dict[str, Any]:
        try:
            state = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            valid = isinstance(state, dict) and state.get("n") == module and isinstance(state.get("o"), int)
        except (ValueError, binascii.Error):
            valid = False
        if not valid:
            raise invalid_param("page_token", "invalid page token")
        if state["e"] < now_ms():
            raise invalid_param("page_token", "the page token has expired")
        return cast("dict[str, Any]", state)

    # -- operations ------------------------------------------------------------------------------------------
    def list(self, module: ModuleDef, version: str, params: Params, if_modified_since: str | None) -> Body:
        fields = self.parse_fields(params, required=version not in VERSIONS_WITHOUT_REQUIRED_FIELDS)
        per_page = _int_param(params, "per_page", MAX_PER_PAGE, 1, MAX_PER_PAGE)
        token = params.get("page_token")
        if token:
            if params.get("page"):
                raise invalid_param("page", "page and page_token cannot be used together")
            state = self._decode_token(token, module.api_name)
            offset, sort_by, sort_order, since = state["o"], state["s"], state["d"], state["m"]
            converted = state.get("c", "false")
        else:
            sort_by = params.get("sort_by") or "id"
            sort_order = (params.get("sort_order") or "desc").lower()
            if sort_by not in SORT_COLUMNS:
                raise invalid_param("sort_by", "sort_by must be id, Created_Time or Modified_Time")
            if sort_order not in ("asc", "desc"):
                raise invalid_param("sort_order", "sort_order must be asc or desc")
            since = self.parse_since(if_modified_since)
            converted = (params.get("converted") or "false").lower()
            if converted not in ("true", "false", "both"):
                raise invalid_param("converted", "converted must be true, false or both")
            offset = (_int_param(params, "page", 1, 1) - 1) * per_page
            if offset + per_page > MAX_PAGE_RECORDS:
                raise ZohoApiError(
                    400,
                    "DISCRETE_PAGINATION_LIMIT_EXCEEDED",
                    f"cannot fetch more than {MAX_PAGE_RECORDS} records with page; use page_token",
                    {"limit": MAX_PAGE_RECORDS},
                )
        if offset >= MAX_TOKEN_RECORDS:
            raise ZohoApiError(400, "LIMIT_REACHED", "maximum records reachable through pagination", {})
        rows = self.store.list_live(
            module.api_name,
            modified_after_ms=since,
            sort_by=sort_by,
            descending=sort_order == "desc",
            offset=offset,
            limit=per_page + 1,
            converted=converted if module.api_name == "Leads" else "false",
        )
        if not rows:
            if since is not None and not token and offset == 0:
                raise NotModified()
            return None
        more = len(rows) > per_page
        rows = rows[:per_page]
        next_token = None
        if more and offset + per_page < MAX_TOKEN_RECORDS:
            expiry = now_ms() + PAGE_TOKEN_TTL_MS
            next_token = self._encode_token(
                {
                    "n": module.api_name,
                    "o": offset + per_page,
                    "s": sort_by,
                    "d": sort_order,
                    "m": since,
                    "c": converted,
                    "e": expiry,
                }
            )
        info = {
            "per_page": per_page,
            "count": len(rows),
            "page": offset // per_page + 1,
            "sort_by": sort_by,
            "sort_order": sort_order,
            "more_records": more,
            "next_page_token": next_token,
            "previous_page_token": None,
            "page_token_expiry": self.clock.format(now_ms() + PAGE_TOKEN_TTL_MS) if next_token else None,
        }
        return {"data": [self.render(r, fields, version) for r in rows], "info": info}

    def get(self, module: ModuleDef, record_id: str, params: Params, version: str = "v8") -> Body:
        if not record_id.isdigit():
            raise ZohoApiError(400, "INVALID_DATA", "the id given seems to be invalid", {"api_name": "id"})
        record = self.store.get(module.api_name, record_id, include_deleted=True)
        if record is None or (record.deleted_ms is not None and record.delete_type != "converted"):
            return None  # a converted lead stays readable (``$converted: true``); a deleted record does not
        return {"data": [self.render(record, self.parse_fields(params, required=False), version)]}

    def deleted(self, module: ModuleDef, params: Params, if_modified_since: str | None) -> Body:
        kind = params.get("type") or "all"
        if kind not in ("all", "recycle", "permanent"):
            raise invalid_param("type", "type must be all, recycle or permanent")
        per_page = _int_param(params, "per_page", MAX_PER_PAGE, 1, MAX_PER_PAGE)
        page = _int_param(params, "page", 1, 1)
        since = self.parse_since(if_modified_since)
        rows = self.store.list_deleted(
            module.api_name,
            types=("recycle", "permanent") if kind == "all" else (kind,),
            deleted_after_ms=since,
            offset=(page - 1) * per_page,
            limit=per_page + 1,
        )
        if not rows:
            if since is not None and page == 1:
                raise NotModified()
            return None
        display = module.display_field
        data = [
            {
                "deleted_by": r.deleted_by,
                "id": r.id,
                "display_name": r.data.get(display) if display else None,
                "type": r.delete_type,
                "created_by": r.created_by,
                "deleted_time": self.clock.format(r.deleted_ms),
            }
            for r in rows[:per_page]
        ]
        info = {"per_page": per_page, "count": len(data), "page": page, "more_records": len(rows) > per_page}
        return {"data": data, "info": info}

    def search(self, module: ModuleDef, params: Params, version: str = "v8") -> Body:
        fields = self.parse_fields(params, required=False)
        per_page = _int_param(params, "per_page", MAX_PER_PAGE, 1, MAX_PER_PAGE)
        page = _int_param(params, "page", 1, 1)
        offset = (page - 1) * per_page
        if offset + per_page > MAX_PAGE_RECORDS:
            raise ZohoApiError(
                400,
                "LIMIT_EXCEEDED",
                f"search returns at most {MAX_PAGE_RECORDS} records",
                {"limit": MAX_PAGE_RECORDS},
            )
        matches = list(self._search_matches(module, params))
        rows = matches[offset : offset + per_page]
        if not rows:
            return None
        info = {
            "per_page": per_page,
            "count": len(rows),
            "page": page,
            "more_records": len(matches) > offset + per_page,
        }
        return {"data": [self.render(r, fields, version) for r in rows], "info": info}

    def _indexed(self, module: ModuleDef, ids: Iterable[str] | None = None) -> Iterator[StoredRecord]:
        """Records as the search index shows them, by id: those named (every live one when None) and those whose
        latest writes it does not see yet (a record just deleted, or whose key just changed, is still found)."""
        name = module.api_name
        index = self.search_index
        pending = set(index.pending_ids(name))
        current: Iterable[StoredRecord | None] = (
            self.store.iter_live(name) if ids is None else (self.store.get(name, i) for i in ids)
        )
        settled = (r for r in current if r is not None and r.id not in pending)
        shown = (index.view(name, i, self.store.get(name, i)) for i in pending)
        unsettled = sorted((r for r in shown if r is not None), key=lambda r: r.id)
        return heapq.merge(settled, unsettled, key=lambda r: r.id)

    def _search_matches(self, module: ModuleDef, params: Params) -> Iterable[StoredRecord]:
        criteria = params.get("criteria")
        if criteria:
            try:
                node = parse_criteria(criteria)
                predicate = compile_criteria(node, module, self.clock)
            except CriteriaError as exc:
                raise invalid_query(str(exc)) from exc
            lookup = index_lookup(node, module)
            ids = self.store.ids_by_key(module.api_name, *lookup) if lookup is not None else None
            return (r for r in self._indexed(module, ids) if predicate(self.flat_row(r)))
        for param, field in (("email", "Email"), ("phone", "Phone")):
            if params.get(param):
                if module.field(field) is None:
                    raise invalid_query(f"{module.api_name} has no {field} field")
                wanted = params[param].casefold()
                return (r for r in self._indexed(module) if str(r.data.get(field) or "").casefold() == wanted)
        word = params.get("word")
        if word:
            needle = word.casefold()
            text_fields = [f.api_name for f in module.fields if f.data_type in ("text", "textarea", "picklist")]
            return (
                r
                for r in self._indexed(module)
                if any(needle in str(r.data.get(f) or "").casefold() for f in text_fields)
            )
        raise required_param("criteria")
