"""What this installation's Kingdee forms require on create, and the values cdchub sends for required fields it has
nothing to map to (``flows/mappings/kingdee_forms.toml``).

Accounts differ: one defaults a sales order's organisation and bill type, another makes the clerk (and so us) give
them.  Before the first create of a form in a process, the form's metadata (``QueryBusinessInfo``: fields with
``MustInput``) is read once and every create is checked against it: a required field that is neither in the model
nor declared here refuses the document at once, naming the fields and the file — a dead letter that says what to
configure, instead of Kingdee's MsgCode 11 on each document.  A Kingdee that cannot describe the form (older
versions) is not checked; its own validation still applies.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import RootModel

from core.errors import PermanentError, TransientError
from core.settings import PROJECT_ROOT
from core.toml_specs import load_toml_spec

log = logging.getLogger(__name__)
DEFAULTS_FILE = PROJECT_ROOT / "flows" / "mappings" / "kingdee_forms.toml"
#: Filled by Kingdee itself (number by the coding rule, status, audit trail).
SYSTEM_FIELDS = frozenset({"fbillno", "fnumber", "fid", "fdocumentstatus", "fforbidstatus", "fcreatorid",
                           "fcreatedate", "fmodifierid", "fmodifydate", "fapproverid", "fapprovedate"})
_REF_KEYS = frozenset({"fnumber", "number", "fid", "id", "fuserid", "fstaffid", "fname"})


class FormRequirementsUnmet(PermanentError):
    pass


class FormDefaultsSpec(RootModel[dict[str, dict[str, Any]]]):
    """``kingdee_forms.toml``: ``[<form id>]`` tables of field key = value."""


def load_defaults(path: Path = DEFAULTS_FILE) -> dict[str, dict[str, Any]]:
    """Form id → {field key: value} to send when creating; a malformed file fails at once, naming it and the
    form (:class:`~core.toml_specs.SpecError`)."""
    return {form: dict(fields) for form, fields in load_toml_spec(path, FormDefaultsSpec).root.items()}


def _keys(model: Mapping[str, Any], entry_key: str | None) -> tuple[set[str], set[str]]:
    """(header keys, entry keys) a model fills, lower-cased; sub-entities (``FSaleOrderFinance``) are flattened."""
    header: set[str] = set()
    entry: set[str] = set()
    for key, value in model.items():
        lowered = key.lower()
        if entry_key is not None and lowered == entry_key.lower() and isinstance(value, list):
            for row in value:
                entry |= {k.lower() for k, v in row.items() if v not in (None, "", {})}
        elif isinstance(value, dict) and value and not {k.lower() for k in value} <= _REF_KEYS:
            header |= {k.lower() for k, v in value.items() if v not in (None, "", {})}
        elif value not in (None, "", {}, 0):
            header.add(lowered)
    return header, entry


class FormRequirements:
    """The defaults of each form, and the check of a model against the form's required fields."""

    def __init__(self, client: Any, defaults: Mapping[str, Mapping[str, Any]] | None = None,
                 source: Path = DEFAULTS_FILE) -> None:
        self.client = client
        self.defaults = load_defaults(source) if defaults is None else {k: dict(v) for k, v in defaults.items()}
        self.source = source
        self._required: dict[str, tuple[str | None, set[str], set[str]] | None] = {}

    def _must_input(self, form: str) -> tuple[str | None, set[str], set[str]] | None:
        """(entry key, required header keys, required entry keys), or None when Kingdee cannot say."""
        if form not in self._required:
            try:
                entities = self.client.business_info(form).get("Entrys") or []
            except TransientError:
                raise
            except Exception as exc:  # an older Kingdee: no metadata service; its own validation still applies
                log.warning("Kingdee cannot describe %s (%s): creates are not checked before they are sent", form, exc)
                self._required[form] = None
                return None
            head: Mapping[str, Any] = next((e for e in entities if e.get("Key") == "FBillHead"), {"Fields": []})
            rows = next((e for e in entities if e.get("Key") != "FBillHead"), None)

            def required(entity: Mapping[str, Any] | None) -> set[str]:
                return {str(f["Key"]).lower() for f in (entity or {}).get("Fields") or []
                        if str(f.get("MustInput")) == "1"} - SYSTEM_FIELDS

            self._required[form] = (str(rows["Key"]) if rows else None, required(head), required(rows))
        return self._required[form]

    def complete(self, form: str, model: dict[str, Any]) -> dict[str, Any]:
        """The model with this installation's defaults for the fields it leaves out, checked against what the form
        requires; raises :class:`FormRequirementsUnmet` naming what is missing."""
        done = dict(model)
        lowered = {k.lower() for k in done}
        for key, value in self.defaults.get(form, {}).items():
            if key.lower() not in lowered:
                done[key] = value
        must = self._must_input(form)
        if must is None:
            return done
        entry_key, head, rows = must
        header_keys, entry_keys = _keys(done, entry_key)
        missing = sorted(head - header_keys) + (sorted(rows - entry_keys) if done.get(entry_key or "") else [])
        if missing:
            where = self.source.relative_to(PROJECT_ROOT) if self.source.is_relative_to(PROJECT_ROOT) else self.source
            raise FormRequirementsUnmet(
                f"Kingdee {form} requires {', '.join(missing)}, which cdchub neither maps nor has a value for: "
                f"declare them under [{form}] in {where}", code="FORM_REQUIREMENTS")
        return done
