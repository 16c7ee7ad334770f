"""The mapping language's TOML format, as pydantic models, and the loader that turns a spec into a
:class:`~core.mapping.Mapping`.

A spec file (``flows/mappings/materials.toml``)::

    [source]            document = "material"                       the document it reads (optional)
    [target]            system, module, external_key, match_also    the target record
    [kingdee]           form_id, id_field                           where fields owned by the target are saved back
    [only_when]         COLUMN = ["C"]                              which documents are mapped
    [fields.<Target>]   from | value, required, max_length, pattern, map, text, owner, kingdee_field, lookup,
                        label, date, reference, multiline, on_create
    [lines]             target, from, [lines.fields.<Target>]       a list of the record from a list of the document
    [status]            target, order, [status.codes]               one value from several status columns
    [on_delete]         Target = value                              what a deleted document leaves in the target

Everything is checked at start, through the one spec loader (:mod:`core.toml_specs`): a wrong file raises
:class:`~core.toml_specs.SpecError` naming the file and the field.  The language knows no system: the documents a
mapping reads (their names, topics and the references they show) are given by the caller as
:class:`SourceDocument` values, and a field showing one of their references must declare it.

A flow with sections of its own (invoices: ``[order_link]``, ``[amounts]``) subclasses :class:`MappingSpec` with
them and builds its mapping with :func:`mapping_from_spec`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol, TypeVar

from pydantic import AfterValidator, Field, field_validator, model_validator

from core.mapping import PATH_SYNTAX, FieldRule, LineRules, Mapping, ReferenceRule, StatusRule
from core.toml_specs import Spec, SpecError, load_toml_spec

__all__ = [
    "FieldSpec", "MappingSpec", "ShownReference", "SourceDocument", "load_mapping", "load_spec_and_mapping",
    "mapping_from_spec",
]


class ShownReference(Protocol):
    """A reference a source document shows: ``<name>_number`` / ``<name>_name`` of the ``document`` its id
    column ``via`` names (on each row of ``list_field``, or on the header when None)."""

    @property
    def name(self) -> str: ...

    @property
    def document(self) -> str: ...

    @property
    def via(self) -> str: ...

    @property
    def list_field(self) -> str | None: ...


class SourceDocument(Protocol):
    """A document a mapping may read (``[source] document``): its name, topic and the references it shows."""

    @property
    def name(self) -> str: ...

    @property
    def topic(self) -> str: ...

    @property
    def references(self) -> Sequence[ShownReference]: ...


def _document_path(value: str) -> str:
    if not PATH_SYNTAX.match(value):
        raise ValueError(f"{value!r} is not a valid path (COLUMN, name_number, or list[COLUMN=value].COLUMN)")
    return value


DocumentPath = Annotated[str, AfterValidator(_document_path)]
Text = Annotated[str, Field(min_length=1)]


class ReferenceSpec(Spec):
    """``reference = { via = "FMATERIALGROUP", required = true }``."""

    via: Text
    required: bool


class FieldSpec(Spec):
    """``[fields.<Target>]`` (and ``[lines.fields.<Target>]``): one field of the target record."""

    source: DocumentPath | None = Field(default=None, alias="from")
    value: Any = None
    required: bool = False
    max_length: int | None = Field(default=None, ge=1)
    pattern: str | None = None
    code_table: dict[str, Any] | None = Field(default=None, alias="map")
    as_text: bool = Field(default=False, alias="text")
    owner: Literal["kingdee", "crm", "shared"] = "kingdee"
    kingdee_field: Text | None = None
    lookup: Text | None = None
    label: DocumentPath | None = None
    as_date: bool = Field(default=False, alias="date")
    reference: ReferenceSpec | None = None
    multiline: bool = False
    on_create: bool = False

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a regular expression ({exc})") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> FieldSpec:
        if "source" not in self.model_fields_set and "value" not in self.model_fields_set:
            raise ValueError("needs `from` or `value`")
        if self.lookup is not None and self.source is None:
            raise ValueError("is a lookup and needs `from`")
        if self.owner != "kingdee" and not self.kingdee_field:
            raise ValueError(f"is owned by {self.owner} but names no kingdee_field")
        return self


class SourceSpec(Spec):
    document: Text


class TargetSpec(Spec):
    system: Text
    module: Text
    external_key: Text
    #: Further unique fields an upsert may match on when the external key is not there yet.
    match_also: tuple[str, ...] = ()


class KingdeeFormSpec(Spec):
    form_id: Text
    id_field: Text


class LinesSpec(Spec):
    target: Text
    source: Text = Field(alias="from")
    fields: dict[str, FieldSpec] = Field(min_length=1)


class StatusSpec(Spec):
    target: Text
    order: tuple[str, ...] = Field(min_length=1)
    codes: dict[str, dict[str, str]] = {}

    @model_validator(mode="after")
    def _every_column_has_a_table(self) -> StatusSpec:
        missing = [c for c in self.order if c not in self.codes]
        if missing:
            raise ValueError(f"[status.codes] has no table for {missing}")
        return self


class MappingSpec(Spec):
    """A mapping file."""

    source: SourceSpec | None = None
    target: TargetSpec
    kingdee: KingdeeFormSpec | None = None
    only_when: dict[str, tuple[str, ...]] = {}
    fields: dict[str, FieldSpec] = {}
    lines: LinesSpec | None = None
    status: StatusSpec | None = None
    on_delete: dict[str, Any] = {}


S = TypeVar("S", bound=MappingSpec)


def _reference(path: Path, where: str, spec: FieldSpec, document: SourceDocument | None,
               list_field: str | None) -> ReferenceRule | None:
    """The declared reference of a field; a field showing a reference of the source document must declare it."""
    shown = next((r for r in (document.references if document else ())
                  if r.list_field == list_field and spec.source in (f"{r.name}_number", f"{r.name}_name")), None)
    declared = spec.reference
    if shown is None:
        if declared is not None:
            raise SpecError.at(path, f"{where}.reference", f"declared, but {spec.source!r} shows no reference")
        return None
    if declared is None:
        raise SpecError.at(path, where, f"shows the {shown.document} of {shown.via}: declare it as "
                                        f'reference = {{ via = "{shown.via}", required = true|false }}')
    if declared.via != shown.via:
        raise SpecError.at(path, f"{where}.reference.via", f"is {declared.via!r}; {spec.source!r} follows "
                                                           f"{shown.via!r}")
    return ReferenceRule(shown.via, shown.document, declared.required)


def _rules(path: Path, section: str, specs: dict[str, FieldSpec], document: SourceDocument | None,
           list_field: str | None = None) -> tuple[FieldRule, ...]:
    return tuple(
        FieldRule(
            target=name, source=spec.source, constant=spec.value, required=spec.required,
            max_length=spec.max_length, pattern=re.compile(spec.pattern) if spec.pattern is not None else None,
            code_table=spec.code_table, as_text=spec.as_text, owner=spec.owner, kingdee_field=spec.kingdee_field,
            lookup=spec.lookup, label=spec.label, as_date=spec.as_date,
            reference=_reference(path, f"{section}.{name}", spec, document, list_field),
            multiline=spec.multiline, on_create=spec.on_create,
        )
        for name, spec in specs.items()
    )


def mapping_from_spec(name: str, spec: MappingSpec, path: Path,
                      documents: Sequence[SourceDocument] = ()) -> Mapping:
    """The mapping a validated spec declares, checked against the documents it may read (``documents``: a
    ``[source] document`` must be one of them when they are given, and a field showing one of its references must
    declare it)."""
    document: SourceDocument | None = None
    if spec.source is not None:
        document = next((d for d in documents if d.name == spec.source.document), None)
        if document is None and documents:
            raise SpecError.at(path, "source.document", f"{spec.source.document!r} is no known document "
                                                        f"(known: {sorted(d.name for d in documents)})")
    fields = _rules(path, "fields", spec.fields, document)
    if spec.target.external_key not in spec.fields:
        raise SpecError.at(path, "target.external_key",
                           f"the external key {spec.target.external_key} must be mapped in [fields]")
    if spec.kingdee is None and any(r.owner != "kingdee" for r in fields):
        raise SpecError.at(path, "kingdee", "fields flow back to Kingdee (owner crm or shared), so [kingdee] "
                                            "form_id and id_field are needed")
    lines = None
    if spec.lines is not None:
        lines = LineRules(target=spec.lines.target, source=spec.lines.source,
                          fields=_rules(path, "lines.fields", spec.lines.fields, document, spec.lines.source))
    status = None
    if spec.status is not None:
        status = StatusRule(target=spec.status.target, order=spec.status.order,
                            codes={c: dict(spec.status.codes[c]) for c in spec.status.order})
    return Mapping(
        name=name, system=spec.target.system, module=spec.target.module, external_key=spec.target.external_key,
        only_when={col: list(allowed) for col, allowed in spec.only_when.items()},
        fields=fields, on_delete=dict(spec.on_delete),
        source_document=spec.source.document if spec.source else None,
        source_topic=document.topic if document is not None else None,
        kingdee_form=spec.kingdee.form_id if spec.kingdee else None,
        kingdee_id_field=spec.kingdee.id_field if spec.kingdee else None,
        match_also=spec.target.match_also, lines=lines, status=status,
    )


def load_spec_and_mapping(path: Path, model: type[S],
                          documents: Sequence[SourceDocument] = ()) -> tuple[S, Mapping]:
    """A mapping file with sections of its own (``model``, a :class:`MappingSpec`): the validated spec and the
    mapping it declares."""
    spec = load_toml_spec(path, model)
    return spec, mapping_from_spec(path.stem, spec, path, documents)


def load_mapping(path: Path, documents: Sequence[SourceDocument] = ()) -> Mapping:
    """The mapping declared in ``path`` (named after the file), checked against ``documents``."""
    return load_spec_and_mapping(path, MappingSpec, documents)[1]
