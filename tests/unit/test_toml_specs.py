"""The one TOML spec loader (core/toml_specs.py): a wrong spec — wrong type, unknown key, missing key, not TOML —
fails naming the file and the field's path; every spec the project ships loads through it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import Field

from connectors.kingdee.form_requirements import load_defaults
from connectors.kingdee.webapi_reader import load_fields
from connectors.weaver.source import load_discovery
from core.toml_specs import Spec, SpecError, load_toml_spec
from flows import approval_rules, crm_orders_to_kingdee, delivery_rules, expense_rules
from flows.bill_spec import load_spec
from flows.specs import MAPPINGS_DIR, load_mapping

ROOT = Path(__file__).resolve().parents[2]
MAPPING_HEAD = '[target]\nsystem = "zoho"\nmodule = "Products"\nexternal_key = "K"\n[fields.K]\nfrom = "FID"\n'


class Limits(Spec):
    size: int
    names: tuple[str, ...] = ()


class Doc(Spec):
    limits: Limits
    title: str = Field(min_length=1)


def write(tmp_path: Path, text: str, name: str = "spec.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(exc: pytest.ExceptionInfo[SpecError]) -> dict[str, str]:
    return dict(exc.value.problems)


def test_wrong_type_unknown_key_and_missing_key_are_named_with_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[limits]\nsize = "big"\nsizes = 3\nnames = ["a", true]\n')
    with pytest.raises(SpecError) as caught:
        load_toml_spec(path, Doc)
    assert str(caught.value).startswith(f"{path}: ")
    assert caught.value.path == path
    assert problems(caught) == {
        "limits.size": "should be an integer (got 'big')",
        "limits.names[1]": "should be a string (got True)",
        "limits.sizes": "is not a known key",
        "title": "is required",
    }


def test_a_file_that_is_not_toml_or_is_missing_is_named(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=re.escape(f"{tmp_path / 'bad.toml'}: not valid TOML")):
        load_toml_spec(write(tmp_path, "[limits\n", "bad.toml"), Doc)
    with pytest.raises(SpecError, match=re.escape(f"{tmp_path / 'gone.toml'}: cannot be read")):
        load_toml_spec(tmp_path / "gone.toml", Doc)


def test_a_section_is_validated_alone_and_named_in_the_path(tmp_path: Path) -> None:
    path = write(tmp_path, '[other]\nanything = 1\n[limits]\nsize = "x"\n')
    with pytest.raises(SpecError) as caught:
        load_toml_spec(path, Limits, section="limits")
    assert problems(caught) == {"limits.size": "should be an integer (got 'x')"}
    with pytest.raises(SpecError, match=r"spec.toml: nowhere: is required"):
        load_toml_spec(path, Limits, section="nowhere")


def test_a_wrong_mapping_names_the_file_and_each_field(tmp_path: Path) -> None:
    write(tmp_path, MAPPING_HEAD + '[fields.Name]\nfrom = "FNAME"\nmax_length = "long"\nform = "x"\n'
                                   '[fields.Code]\nrequired = true\n', "m.toml")
    with pytest.raises(SpecError) as caught:
        load_mapping("m", tmp_path)
    assert str(caught.value).startswith(f"{tmp_path / 'm.toml'}: ")
    assert problems(caught) == {
        "fields.Name.max_length": "should be an integer (got 'long')",
        "fields.Name.form": "is not a known key",
        "fields.Code": "needs `from` or `value`",
    }
    write(tmp_path, MAPPING_HEAD.replace('module = "Products"\n', ""), "m.toml")
    with pytest.raises(SpecError, match=r"m.toml: target.module: is required"):
        load_mapping("m", tmp_path)


def test_a_mapping_reading_an_unknown_document_is_refused(tmp_path: Path) -> None:
    write(tmp_path, '[source]\ndocument = "materiel"\n' + MAPPING_HEAD, "m.toml")
    with pytest.raises(SpecError, match=r"m.toml: source.document: 'materiel' is no known document"):
        load_mapping("m", tmp_path)


def test_a_wrong_bill_spec_names_the_section(tmp_path: Path) -> None:
    text = (MAPPINGS_DIR / "receipts.toml").read_text(encoding="utf-8").replace('number = "FORDERBILLNO"\n', "")
    write(tmp_path, text, "receipts.toml")
    with pytest.raises(SpecError, match=r"receipts.toml: order_link.number: is required"):
        load_spec("receipts", tmp_path)


def test_a_wrong_rules_file_names_the_field(tmp_path: Path) -> None:
    text = expense_rules.RULES_PATH.read_text(encoding="utf-8").replace("default_proposer_id = 100001",
                                                                         'default_proposer_id = "张三"')
    with pytest.raises(SpecError, match=r"expenses.toml: kingdee.default_proposer_id: should be an integer"):
        expense_rules.load_rules(write(tmp_path, text, "expenses.toml"))


def test_every_spec_the_project_ships_loads() -> None:
    for name in ("materials", "customers", "sales_orders"):
        assert load_mapping(name).fields
    for name in ("invoices", "receipts"):
        assert load_spec(name).kinds
    assert delivery_rules.LIVE_WHEN  # loaded when the module is
    assert approval_rules.load_rules().kinds
    assert crm_orders_to_kingdee.load_rules().confirmed_values
    assert expense_rules.load_rules(expense_rules.RULES_PATH).expense_items
    assert load_discovery()[0]
    assert load_defaults()
    assert load_fields()


def test_no_module_reads_toml_but_the_one_loader() -> None:
    readers = [str(p.relative_to(ROOT)) for package in ("cdchub", "connectors", "flows", "core", "infra")
               for p in (ROOT / package).rglob("*.py") if "tomllib" in p.read_text(encoding="utf-8")]
    assert readers == ["core/toml_specs.py"]
