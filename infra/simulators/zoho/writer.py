"""Record writes with the real API's semantics: per-record results, partial success, duplicate checks.

- insert: mandatory fields, types, user-defined unique fields (``DUPLICATE_DATA``); the system duplicate field
  (Products: ``Product_Name``) is *not* enforced on insert.
- update: by ``id``; an unknown or deleted id is ``INVALID_DATA`` on ``api_name: id``.
- upsert: match on ``duplicate_check_fields`` in the given order when given; without them, on the system duplicate
  field first, then the module's user-defined unique fields (ZOHO's documented order). The first field with
  exactly one live match wins and that record is updated (also the fields used for matching). No match: insert.
- every applied write stamps ``Modified_Time`` (ms) and ``Modified_By`` (the caller's user), even if nothing
  changed.

A whole call runs in one SQLite transaction; records are still independent (one record's error does not undo
another). HTTP status: all inserted 201, all succeeded otherwise 200, mixed 207, none succeeded 400.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from infra.simulators.zoho.auth import ApiUser
from infra.simulators.zoho.errors import ZohoApiError, error_body
from infra.simulators.zoho.modules import ModuleDef, RecordProblem, clean_record, key_value
from infra.simulators.zoho.store import RecordStore, StoredRecord
from infra.simulators.zoho.timefmt import ZohoClock, now_ms


@dataclass
class WriteOutcome:
    results: list[dict[str, Any]] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)  # insert / update / delete / error, per result

    def add(self, action: str, result: dict[str, Any]) -> None:
        self.actions.append(action)
        self.results.append(result)

    def http_status(self) -> int:
        succeeded = [a for a in self.actions if a != "error"]
        if not succeeded:
            return 400
        if len(succeeded) < len(self.actions):
            return 207
        return 201 if all(a == "insert" for a in succeeded) else 200

    def body(self) -> dict[str, Any]:
        return {"data": self.results}


def _duplicate(module: str, api_name: str, index: int, other_id: str, message: str) -> RecordProblem:
    details = {
        "api_name": api_name,
        "json_path": f"$.data[{index}].{api_name}",
        "id": other_id,
        "duplicate_record": {"id": other_id, "module": {"api_name": module}},
    }
    return RecordProblem("DUPLICATE_DATA", message, details)


class RecordWriter:
    def __init__(self, store: RecordStore, modules: Mapping[str, ModuleDef], clock: ZohoClock) -> None:
        self.store = store
        self.modules = modules
        self.clock = clock

    # -- public operations -----------------------------------------------------------------------------------
    def insert(self, module: ModuleDef, items: Sequence[Any], user: ApiUser) -> WriteOutcome:
        outcome = WriteOutcome()
        with self.store.db.transaction():
            for index, raw in enumerate(items):
                values, problem = clean_record(module, raw, index, for_insert=True)
                problem = problem or self._check_refs(module, values, index, self_id=None)
                if problem:
                    outcome.add("error", problem.to_json())
                    continue
                record = self._insert(module, values, user)
                outcome.add("insert", self._success(record, "record added"))
        return outcome

    def update(self, module: ModuleDef, items: Sequence[Any], user: ApiUser) -> WriteOutcome:
        outcome = WriteOutcome()
        with self.store.db.transaction():
            for index, raw in enumerate(items):
                record_id = raw.get("id") if isinstance(raw, dict) else None
                if record_id is None or record_id == "":
                    details = {"api_name": "id", "json_path": f"$.data[{index}].id"}
                    outcome.add(
                        "error", error_body("MANDATORY_NOT_FOUND", "required field not found", details)
                    )
                    continue
                existing = self.store.get(module.api_name, str(record_id))
                if existing is None:
                    details = {"api_name": "id", "json_path": f"$.data[{index}].id"}
                    outcome.add(
                        "error", error_body("INVALID_DATA", "the id given seems to be invalid", details)
                    )
                    continue
                values, problem = clean_record(module, raw, index, for_insert=False)
                problem = problem or self._check_refs(module, values, index, self_id=existing.id)
                if problem:
                    outcome.add("error", problem.to_json())
                    continue
                record = self._update(existing, values, user)
                outcome.add("update", self._success(record, "record updated"))
        return outcome

    def upsert(
        self, module: ModuleDef, items: Sequence[Any], user: ApiUser, duplicate_check_fields: Sequence[str]
    ) -> WriteOutcome:
        order = self.match_order(module, duplicate_check_fields)
        outcome = WriteOutcome()
        with self.store.db.transaction():
            for index, raw in enumerate(items):
                values, problem = clean_record(module, raw, index, for_insert=False)
                match: StoredRecord | None = None
                matched_on: str | None = None
                if problem is None:
                    match, matched_on, problem = self._find_match(module, values, order, index)
                if problem is None and match is None:
                    values, problem = clean_record(module, raw, index, for_insert=True)
                if problem is None:
                    problem = self._check_refs(module, values, index, self_id=match.id if match else None)
                if problem:
                    outcome.add("error", problem.to_json())
                elif match is not None:
                    record = self._update(match, values, user)
                    outcome.add("update", self._success(record, "record updated", "update", matched_on))
                else:
                    record = self._insert(module, values, user)
                    outcome.add("insert", self._success(record, "record added", "insert", None))
        return outcome

    def delete(self, module: ModuleDef, ids: Sequence[str], user: ApiUser) -> WriteOutcome:
        outcome = WriteOutcome()
        with self.store.db.transaction():
            for record_id in ids:
                existing = self.store.get(module.api_name, record_id)
                if existing is None:
                    outcome.add(
                        "error",
                        error_body(
                            "INVALID_DATA", "the related id given seems to be invalid", {"id": record_id}
                        ),
                    )
                    continue
                self.store.mark_deleted(existing, user=user.ref(), at_ms=now_ms())
                outcome.add(
                    "delete",
                    {
                        "code": "SUCCESS",
                        "details": {"id": record_id},
                        "message": "record deleted",
                        "status": "success",
                    },
                )
        return outcome

    # -- helpers ---------------------------------------------------------------------------------------------
    @staticmethod
    def match_order(module: ModuleDef, duplicate_check_fields: Sequence[str]) -> list[str]:
        """Validate ``duplicate_check_fields`` and append the module's own key fields after them."""
        order: list[str] = []
        for position, name in enumerate(duplicate_check_fields):
            if not isinstance(name, str) or name not in module.key_fields:
                raise ZohoApiError(
                    400,
                    "INVALID_DATA",
                    "only unique fields and system duplicate check fields can be duplicate check fields",
                    {"api_name": str(name), "json_path": f"$.duplicate_check_fields[{position}]"},
                )
            if name not in order:
                order.append(name)
        if order:
            return order
        for extra in (module.system_duplicate_field, *module.unique_fields):
            if extra and extra not in order:
                order.append(extra)
        return order

    def _find_match(
        self, module: ModuleDef, values: Mapping[str, Any], order: Sequence[str], index: int
    ) -> tuple[StoredRecord | None, str | None, RecordProblem | None]:
        for name in order:
            key = key_value(values.get(name))
            if key is None:
                continue
            ids = self.store.ids_by_key(module.api_name, name, key)
            if len(ids) > 1:
                return (
                    None,
                    None,
                    _duplicate(module.api_name, name, index, ids[0], "multiple records matched"),
                )
            if ids:
                return self.store.get(module.api_name, ids[0]), name, None
        return None, None, None

    def _check_refs(
        self, module: ModuleDef, values: dict[str, Any], index: int, *, self_id: str | None
    ) -> RecordProblem | None:
        """Unique fields must not collide with another live record; lookups must point at a live record."""
        for name in module.unique_fields:
            key = key_value(values.get(name))
            if key is None:
                continue
            others = [i for i in self.store.ids_by_key(module.api_name, name, key) if i != self_id]
            if others:
                return _duplicate(module.api_name, name, index, others[0], "duplicate data")
        for name, value in values.items():
            target_def = module.field(name)
            target_module = self.modules.get(target_def.lookup_module or "") if target_def else None
            if value is None or target_module is None:
                continue
            target = self.store.get(target_module.api_name, value["id"])
            if target is None:
                details = {
                    "api_name": name,
                    "json_path": f"$.data[{index}].{name}",
                    "expected_data_type": "lookup",
                }
                return RecordProblem("INVALID_DATA", "the id given seems to be invalid", details)
            display = target_module.display_field
            values[name] = {"id": target.id, "name": target.data.get(display) if display else None}
        return None

    def _keys(self, module: ModuleDef, data: Mapping[str, Any]) -> dict[str, str | None]:
        return {name: key_value(data.get(name)) for name in module.key_fields}

    def _insert(self, module: ModuleDef, values: dict[str, Any], user: ApiUser) -> StoredRecord:
        at = now_ms()
        data = {f.api_name: None for f in module.fields} | values
        record = StoredRecord(
            module=module.api_name, id=self.store.next_id(), data=data, owner=user.owner(),
            created_by=user.ref(), modified_by=user.ref(), created_ms=at, modified_ms=at,
        )  # fmt: skip
        self.store.save(record, keys=self._keys(module, data), action="insert", changed=values)
        return record

    def _update(self, record: StoredRecord, values: dict[str, Any], user: ApiUser) -> StoredRecord:
        module = self.modules[record.module]
        record.data.update(values)
        record.modified_ms = now_ms()
        record.modified_by = user.ref()
        self.store.save(record, keys=self._keys(module, record.data), action="update", changed=values)
        return record

    def _success(
        self,
        record: StoredRecord,
        message: str,
        action: str | None = None,
        duplicate_field: str | None = None,
    ) -> dict[str, Any]:
        result: dict[str, Any] = {"code": "SUCCESS"}
        if action is not None:
            result["duplicate_field"] = duplicate_field
            result["action"] = action
        result["details"] = {
            "Modified_Time": self.clock.format(record.modified_ms),
            "Modified_By": record.modified_by,
            "Created_Time": self.clock.format(record.created_ms),
            "id": record.id,
            "Created_By": record.created_by,
        }
        result["message"] = message
        result["status"] = "success"
        return result
