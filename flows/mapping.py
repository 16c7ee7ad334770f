"""Field mappings declared as data (TOML in ``flows/mappings/``), validated at start.

A mapping turns a captured document into the fields of one target record.  Errors are permanent and name the field
and the value: a required value missing, a text longer than the target allows, a code absent from a code table, a
value not matching the declared pattern.  The flow dead-letters the record with that message.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from connectors.common.errors import PermanentError

MAPPINGS_DIR = Path(__file__).resolve().parent / "mappings"
_PATH = re.compile(r"^(?P<list>\w+)\[(?P<col>\w+)=(?P<val>[^\]]+)\]\.(?P<field>\w+)$|^(?P<plain>\w+)$")


class MappingError(PermanentError):
    pass


class MappingConfigError(ValueError):
    """The mapping file itself is wrong: raised at start, naming the file and the field."""


@dataclass(frozen=True)
class FieldRule:
    target: str
    source: str | None
    constant: Any = None
    required: bool = False
    max_length: int | None = None
    pattern: re.Pattern[str] | None = None
    code_table: dict[str, Any] | None = None
    as_text: bool = False


def _read_path(doc: dict[str, Any], path: str) -> Any:
    m = _PATH.match(path)
    assert m is not None
    if m["plain"]:
        return doc.get(m["plain"])
    for row in doc.get(m["list"]) or []:
        if str(row.get(m["col"])) == m["val"]:
            return row.get(m["field"])
    return None


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


@dataclass(frozen=True)
class Mapping:
    name: str
    system: str
    module: str
    external_key: str
    only_when: dict[str, list[str]]
    fields: tuple[FieldRule, ...]
    on_delete: dict[str, Any]
    #: The Kingdee document topic the mapping reads (``[source] document``), if it is a Kingdee → CRM mapping.
    source_topic: str | None = None

    def applies_to(self, doc: dict[str, Any]) -> bool:
        return all(str(doc.get(col)) in allowed for col, allowed in self.only_when.items())

    def to_target(self, doc: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for rule in self.fields:
            if rule.source is None:
                out[rule.target] = rule.constant
                continue
            value = _read_path(doc, rule.source)
            if isinstance(value, str):
                value = value.strip()
            if value is None or value == "":
                if rule.required:
                    raise MappingError(f"{rule.target}: required value {rule.source} is missing", code="MISSING")
                out[rule.target] = None
                continue
            if rule.code_table is not None:
                if str(value) not in rule.code_table:
                    raise MappingError(
                        f"{rule.target}: unknown code {value!r} in {rule.source} (known: {sorted(rule.code_table)})",
                        code="UNKNOWN_CODE",
                    )
                value = rule.code_table[str(value)]
            elif rule.as_text and not isinstance(value, str):
                value = str(value)
            if isinstance(value, str):
                if rule.max_length is not None and len(value) > rule.max_length:
                    raise MappingError(
                        f"{rule.target}: {len(value)} characters in {rule.source}, at most {rule.max_length} allowed",
                        code="TOO_LONG",
                    )
                if rule.pattern is not None and not rule.pattern.match(value):
                    raise MappingError(
                        f"{rule.target}: {value!r} in {rule.source} does not match {rule.pattern.pattern}",
                        code="INVALID_CODE",
                    )
                if any(ord(ch) < 32 and ch not in "\t\n" for ch in value):
                    raise MappingError(f"{rule.target}: control characters in {rule.source}", code="BAD_TEXT")
            out[rule.target] = _json_value(value)
        return out

    def deleted_target(self, key: str) -> dict[str, Any]:
        return {self.external_key: key, **self.on_delete}


def fingerprint(record: dict[str, Any]) -> str:
    """Content fingerprint of a target record (stable across key order)."""
    blob = json.dumps(record, sort_keys=True, ensure_ascii=False, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


def load_mapping(name: str, directory: Path = MAPPINGS_DIR) -> Mapping:
    path = directory / f"{name}.toml"
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise MappingConfigError(f"{path}: {exc}") from exc
    target = raw.get("target") or {}
    for key in ("system", "module", "external_key"):
        if not target.get(key):
            raise MappingConfigError(f"{path}: [target].{key} is required")
    rules = []
    for field_name, spec in (raw.get("fields") or {}).items():
        if not isinstance(spec, dict) or ("from" not in spec and "value" not in spec):
            raise MappingConfigError(f"{path}: fields.{field_name} needs `from` or `value`")
        unknown = set(spec) - {"from", "value", "required", "max_length", "pattern", "map", "text"}
        if unknown:
            raise MappingConfigError(f"{path}: fields.{field_name} has unknown keys {sorted(unknown)}")
        if "from" in spec and not _PATH.match(spec["from"]):
            raise MappingConfigError(f"{path}: fields.{field_name}.from {spec['from']!r} is not a valid path")
        try:
            pattern = re.compile(spec["pattern"]) if "pattern" in spec else None
        except re.error as exc:
            raise MappingConfigError(f"{path}: fields.{field_name}.pattern: {exc}") from exc
        rules.append(
            FieldRule(
                target=field_name, source=spec.get("from"), constant=spec.get("value"),
                required=bool(spec.get("required", False)), max_length=spec.get("max_length"),
                pattern=pattern, code_table=spec.get("map"), as_text=bool(spec.get("text", False)),
            )
        )
    if target["external_key"] not in {r.target for r in rules}:
        raise MappingConfigError(f"{path}: the external key {target['external_key']} must be mapped")
    return Mapping(
        name=name, system=target["system"], module=target["module"], external_key=target["external_key"],
        only_when={k: [str(x) for x in v] for k, v in (raw.get("only_when") or {}).items()},
        fields=tuple(rules), on_delete=dict(raw.get("on_delete") or {}),
        source_topic=f"kingdee.{raw['source']['document']}" if (raw.get("source") or {}).get("document") else None,
    )
