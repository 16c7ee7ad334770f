"""One loader for every TOML spec the project reads: a file → a pydantic model, validated at start.

Mappings, code tables, rules, form defaults, WebAPI field maps: each is a pydantic model (usually a :class:`Spec`:
unknown keys are errors, so a misspelt key never passes silently) and :func:`load_toml_spec` is the only way any of
them is read.  A wrong file fails at once with :class:`SpecError`, naming the file and every wrong field by its path
in the file::

    flows/mappings/materials.toml: fields.Product_Name.max_length: should be an integer (got 'long');
    fields.Usage_Unit.form: is not a known key

Checks a model cannot make on its own (one that needs the Kingdee document descriptions, say) raise the same
error with :meth:`SpecError.at`, so callers catch one type.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import ErrorDetails

__all__ = ["Spec", "SpecError", "field_path", "load_toml_spec", "read_toml", "validate_spec"]

M = TypeVar("M", bound=BaseModel)

#: Pydantic error types → how the problem reads in a spec's terms.
_PLAIN: dict[str, str] = {
    "missing": "is required",
    "extra_forbidden": "is not a known key",
    "model_type": "should be a table",
    "model_attributes_type": "should be a table",
    "dict_type": "should be a table",
    "list_type": "should be an array",
    "tuple_type": "should be an array",
    "set_type": "should be an array",
    "frozen_set_type": "should be an array",
    "string_type": "should be a string",
    "int_type": "should be an integer",
    "int_parsing": "should be an integer",
    "int_from_float": "should be an integer",
    "float_type": "should be a number",
    "float_parsing": "should be a number",
    "decimal_type": "should be a number",
    "decimal_parsing": "should be a number",
    "bool_type": "should be true or false",
    "bool_parsing": "should be true or false",
}


class Spec(BaseModel):
    """Base of the spec models: unknown keys are errors, values are frozen, numbers are accepted where text is
    expected (``[workflows] 101 = "campaign"``, status codes)."""

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


class SpecError(ValueError):
    """A spec file is wrong: ``path`` and ``problems`` (field path in the file, what is wrong)."""

    def __init__(self, path: Path | str, problems: Iterable[tuple[str, str]]) -> None:
        self.path = Path(path)
        self.problems: tuple[tuple[str, str], ...] = tuple(problems)
        text = "; ".join(f"{where}: {what}" if where else what for where, what in self.problems)
        super().__init__(f"{self.path}: {text}")

    @classmethod
    def at(cls, path: Path | str, where: str, what: str) -> SpecError:
        """One problem at one field (``fields.Unit.reference``)."""
        return cls(path, [(where, what)])


def field_path(loc: Sequence[int | str], prefix: str = "") -> str:
    """``("fields", "K", "from")`` → ``fields.K.from``; list positions as ``[0]``."""
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _problem(error: ErrorDetails) -> str:
    kind = error["type"]
    if kind in ("value_error", "assertion_error"):
        message = str(error.get("ctx", {}).get("error", "")) or error["msg"]
        return message
    plain = _PLAIN.get(kind)
    if kind in ("missing", "extra_forbidden"):
        return plain or error["msg"]
    shown = repr(error.get("input"))
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    message = plain or (error["msg"][:1].lower() + error["msg"][1:])
    return f"{message} (got {shown})"


def read_toml(path: Path) -> dict[str, Any]:
    """The file's TOML as a dict; an unreadable or malformed file is a :class:`SpecError` naming it."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SpecError.at(path, "", f"cannot be read ({exc.strerror or exc})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SpecError.at(path, "", f"not valid TOML ({exc})") from exc


def validate_spec(path: Path, raw: Any, model: type[M], *, section: str | None = None) -> M:
    """``raw`` (a file's TOML, or the table ``section`` of it) as ``model``; problems named by their path."""
    data = raw
    if section is not None:
        data = raw.get(section) if isinstance(raw, dict) else None
        if data is None:
            raise SpecError.at(path, section, "is required")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise SpecError(path, [(field_path(e["loc"], section or ""), _problem(e))
                               for e in exc.errors(include_url=False)]) from None


def load_toml_spec(path: Path, model: type[M], *, section: str | None = None) -> M:
    """Read ``path`` and validate it (or its table ``section``: a file several readers share, each reading its
    own part) as ``model``; any problem is a :class:`SpecError` naming the file and the field."""
    return validate_spec(path, read_toml(path), model, section=section)
