"""Record writes with the real API's semantics: per-record results, partial success, duplicate checks.

- insert: mandatory fields, types, user-defined unique fields (``DUPLICATE_DATA``); the system duplicate field
  (Products: ``Product_Name``) is *not* enforced on insert.
- update: by ``id``; an unknown or deleted id is ``INVALID_DATA`` on ``api_name: id``. With ``If-Unmodified-Since``
  a record modified after that time (compared to the second: times are shown to the second) is not written:
  ``ALREADY_MODIFIED`` for that record; when no record of the call was written because of it, HTTP 412.
- upsert: match on ``duplicate_check_fields`` in the given order when given; without them, on the system duplicate
  field first, then the module's user-defined unique fields (ZOHO's documented order). The first field with
  exactly one live match wins and that record is updated (also the fields used for matching). No match: insert.
- every applied write stamps ``Modified_Time`` (ms) and ``Modified_By`` (the caller's user), even if nothing
  changed.
- subforms (line items): the rows sent replace the record's rows. A row with an ``id`` edits that row (unknown
  id: ``INVALID_DATA``), ``"_delete": null`` with an ``id`` removes it, a row without ``id`` is added; rows
  not sent are removed. Line items get ``Total``/``Net_Total`` and the record ``Sub_Total``/``Grand_Total``;
  ``List_Price`` defaults to the product's ``Unit_Price``.
- lookups (also inside subform rows, and Notes' ``Parent_Id``) must point at a live record, else
  ``INVALID_DATA`` naming the field.
- after each call, ``listener(module, operation, ids)`` is told what changed (watch notifications).

A whole call runs in one SQLite transaction; records are still independent (one record's error does not undo
another). HTTP status: all inserted 201, all succeeded otherwise 200, mixed 207, none succeeded 400 (412 when every
record was refused as ``ALREADY_MODIFIED``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from infra.simulators.zoho.auth import ApiUser
from infra.simulators.zoho.errors import ZohoApiError, already_modified, error_body
from infra.simulators.zoho.modules import (
    ROW_DELETE_KEY,
    FieldDef,
    ModuleDef,
    RecordProblem,
    clean_record,
    key_value,
)
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
            return 412 if all(r.get("code") == "ALREADY_MODIFIED" for r in self.results) else 400
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


ChangeListener = Callable[[str, str, list[str]], None]  # (module, "insert"|"update"|"delete", ids)


def _money(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal(0)


def _as_number(value: Decimal) -> int | float:
    value = value.quantize(Decimal("0.01"))
    return int(value) if value == value.to_integral_value() else float(value)


class RecordWriter:
    def __init__(self, store: RecordStore, modules: Mapping[str, ModuleDef], clock: ZohoClock) -> None:
        self.store = store
        self.modules = modules
        self.clock = clock
        self.listener: ChangeListener | None = None

    def _emit(self, module: ModuleDef, outcome: WriteOutcome) -> None:
        if self.listener is None:
            return
        by_operation: dict[str, list[str]] = {}
        for action, result in zip(outcome.actions, outcome.results, strict=True):
            if action != "error":
                by_operation.setdefault(action, []).append(str(result["details"]["id"]))
        for operation, ids in by_operation.items():
            self.listener(module.api_name, operation, ids)

    # -- public operations -----------------------------------------------------------------------------------
    def insert(self, module: ModuleDef, items: Sequence[Any], user: ApiUser) -> WriteOutcome:
        outcome = WriteOutcome()
        with self.store.db.transaction():
            for index, raw in enumerate(items):
                values, problem = clean_record(module, raw, index, for_insert=True)
                problem = problem or self._prepare(module, values, index, existing=None)
                if problem:
                    outcome.add("error", problem.to_json())
                    continue
                record = self._insert(module, values, user)
                outcome.add("insert", self._success(record, "record added"))
        self._emit(module, outcome)
        return outcome

    def update(
        self, module: ModuleDef, items: Sequence[Any], user: ApiUser, unmodified_since_ms: int | None = None
    ) -> WriteOutcome:
        outcome = WriteOutcome()
        with self.store.db.transaction():
            for index, raw in enumerate(items):
                record_id = raw.get("id") if isinstance(raw, dict) else None
                if record_id is None or record_id == "":
                    details = {"api_name": "id", "json_path": f"$.data[{index}].id"}
                    outcome.add("error", error_body("MANDATORY_NOT_FOUND", "required field not found", details))
                    continue
                existing = self.store.get(module.api_name, str(record_id))
                if existing is None:
                    details = {"api_name": "id", "json_path": f"$.data[{index}].id"}
                    outcome.add("error", error_body("INVALID_DATA", "the id given seems to be invalid", details))
                    continue
                if unmodified_since_ms is not None and existing.modified_ms // 1000 > unmodified_since_ms // 1000:
                    outcome.add("error", already_modified(existing.id))
                    continue
                values, problem = clean_record(module, raw, index, for_insert=False)
                problem = problem or self._prepare(module, values, index, existing=existing)
                if problem:
                    outcome.add("error", problem.to_json())
                    continue
                record = self._update(existing, values, user)
                outcome.add("update", self._success(record, "record updated"))
        self._emit(module, outcome)
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
                    problem = self._prepare(module, values, index, existing=match)
                if problem:
                    outcome.add("error", problem.to_json())
                elif match is not None:
                    record = self._update(match, values, user)
                    outcome.add("update", self._success(record, "record updated", "update", matched_on))
                else:
                    record = self._insert(module, values, user)
                    outcome.add("insert", self._success(record, "record added", "insert", None))
        self._emit(module, outcome)
        return outcome

    def delete(self, module: ModuleDef, ids: Sequence[str], user: ApiUser) -> WriteOutcome:
        outcome = WriteOutcome()
        with self.store.db.transaction():
            for record_id in ids:
                existing = self.store.get(module.api_name, record_id)
                if existing is None:
                    outcome.add(
                        "error",
                        error_body("INVALID_DATA", "the related id given seems to be invalid", {"id": record_id}),
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
        self._emit(module, outcome)
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

    def _prepare(
        self, module: ModuleDef, values: dict[str, Any], index: int, *, existing: StoredRecord | None
    ) -> RecordProblem | None:
        """Merge subform rows, resolve lookups, check unique fields, compute line-item totals (in place)."""
        for spec in module.subforms:
            if spec.api_name not in values:
                continue
            old_rows = existing.data.get(spec.api_name) if existing else None
            rows, problem = self._merge_rows(spec, values[spec.api_name], old_rows or [], index)
            if problem:
                return problem
            values[spec.api_name] = rows
        problem = self._check_refs(module, values, index, self_id=existing.id if existing else None)
        if problem:
            return problem
        self._totals(module, values, existing.data if existing else {})
        return None

    def _merge_rows(
        self, spec: FieldDef, sent: list[dict[str, Any]], old_rows: list[dict[str, Any]], index: int
    ) -> tuple[list[dict[str, Any]], RecordProblem | None]:
        by_id = {str(row.get("id")): row for row in old_rows}
        rows: list[dict[str, Any]] = []
        for position, row in enumerate(sent):
            if "id" in row:
                old = by_id.get(row["id"])
                if old is None:
                    path = f"$.data[{index}].{spec.api_name}[{position}].id"
                    details = {"api_name": "id", "json_path": path}
                    return [], RecordProblem("INVALID_DATA", "the id given seems to be invalid", details)
                if not row.get(ROW_DELETE_KEY):
                    rows.append({**old, **row})
            else:
                rows.append({"id": self.store.next_id(), **{f.api_name: None for f in spec.rows}, **row})
        return rows, None

    def _resolve(
        self, target_module: ModuleDef, ref: dict[str, Any], api_name: str, path: str
    ) -> tuple[dict[str, Any] | None, StoredRecord | None, RecordProblem | None]:
        target = self.store.get(target_module.api_name, str(ref["id"]))
        if target is None:
            details = {"api_name": api_name, "json_path": path, "expected_data_type": "lookup"}
            return None, None, RecordProblem("INVALID_DATA", "the id given seems to be invalid", details)
        display = target_module.display_field
        return {"id": target.id, "name": target.data.get(display) if display else None}, target, None

    def _check_rows(self, module: ModuleDef, values: dict[str, Any], index: int) -> RecordProblem | None:
        for spec in module.subforms:
            for position, row in enumerate(values.get(spec.api_name) or []):
                for row_field in spec.rows:
                    target_module = self.modules.get(row_field.lookup_module or "")
                    ref = row.get(row_field.api_name)
                    if target_module is None or not isinstance(ref, dict):
                        continue
                    path = f"$.data[{index}].{spec.api_name}[{position}].{row_field.api_name}"
                    resolved, target, problem = self._resolve(target_module, ref, row_field.api_name, path)
                    if problem:
                        return problem
                    row[row_field.api_name] = resolved
                    is_product = spec.v2_api_name is not None and row_field.api_name == "Product_Name"
                    if is_product and target is not None and row.get("List_Price") is None:
                        row["List_Price"] = target.data.get("Unit_Price")
        return None

    def _check_parent(self, module: ModuleDef, values: dict[str, Any], index: int) -> RecordProblem | None:
        for spec in module.fields:
            ref = values.get(spec.api_name)
            if spec.data_type != "multi_module_lookup" or not isinstance(ref, dict):
                continue
            path = f"$.data[{index}].{spec.api_name}"
            target_module = self.modules.get(ref.get("module") or "")
            if target_module is None:
                details = {"api_name": "se_module", "json_path": f"$.data[{index}].se_module"}
                return RecordProblem("INVALID_DATA", "the module name given seems to be invalid", details)
            resolved, _, problem = self._resolve(target_module, ref, spec.api_name, path)
            if problem or resolved is None:
                return problem
            values[spec.api_name] = {**resolved, "module": {"api_name": target_module.api_name}}
            values["$se_module"] = target_module.api_name
        return None

    @staticmethod
    def _totals(module: ModuleDef, values: dict[str, Any], current: Mapping[str, Any]) -> None:
        for spec in module.subforms:
            if spec.v2_api_name is None or spec.api_name not in values:
                continue
            sub_total = Decimal(0)
            for row in values[spec.api_name]:
                total = _money(row.get("Quantity")) * _money(row.get("List_Price"))
                after_discount = total - _money(row.get("Discount"))
                net = after_discount + _money(row.get("Tax"))
                row["Total"] = _as_number(total)
                row["Total_After_Discount"] = _as_number(after_discount)
                row["Net_Total"] = _as_number(net)
                sub_total += net
            merged = {**current, **values}
            grand = (
                sub_total - _money(merged.get("Discount")) + _money(merged.get("Tax"))
                + _money(merged.get("Adjustment"))
            )  # fmt: skip
            values["Sub_Total"] = _as_number(sub_total)
            values["Grand_Total"] = _as_number(grand)

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
        return self._check_rows(module, values, index) or self._check_parent(module, values, index)

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
