"""The Kingdee simulator's demo catalogue: the installed files load, and a wrong file fails naming file and field."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from infra.simulators.kingdee.catalogue import CATALOGUE_DIR, CatalogueError, demo_catalogue, load_catalogue


def test_the_installed_catalogue_loads_in_file_order() -> None:
    catalogue = demo_catalogue()
    assert [u.number for u in catalogue.basedata.unit] == ["Pcs", "Set", "Tai", "Box", "Zhi"]
    assert catalogue.products.product[0].name == "一次性使用麻醉呼吸回路"
    assert catalogue.customers.hospital[0].name == "北京协和医院"
    assert catalogue.equipment_groups() == {"1.03"}
    assert catalogue.customer_type("distributor") == "KHLB003"


@pytest.fixture()
def copy(tmp_path: Path) -> Path:
    for name in ("basedata.toml", "products.toml", "customers.toml"):
        shutil.copy(CATALOGUE_DIR / name, tmp_path / name)
    return tmp_path


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.mark.parametrize(
    ("file", "old", "new", "named"),
    [
        ("products.toml", "price = [28, 75]", 'price = ["cheap", 75]', "product[0].price"),
        ("products.toml", "price = [28, 75]", "price = [75, 28]", "price"),
        ("products.toml", 'unit = "Set"', 'unit = "Kg"', "product[0].unit"),
        ("products.toml", 'group = "1.01"', 'group = "9.99"', "product[0].group"),
        ("basedata.toml", "precision = 0", "precison = 0", "unit[0].precison"),
        ("basedata.toml", 'role = "distributor"', 'role = "wholesaler"', "customer_type[2].role"),
        ("customers.toml", 'tax_region = "110105"', 'tax_region = "11"', "city[0].tax_region"),
        ("customers.toml", 'city = "北京"', 'city = "拉萨"', "hospital.0.city"),
        ("customers.toml", "[distributors]", "[distributor]", "distributors"),
    ],
)
def test_a_wrong_file_fails_naming_the_file_and_the_field(copy: Path, file: str, old: str, new: str,
                                                          named: str) -> None:
    _replace(copy / file, old, new)
    with pytest.raises(CatalogueError) as failure:
        load_catalogue(copy)
    assert str(copy / file) in str(failure.value) and named in str(failure.value)


def test_a_file_that_is_not_toml_fails_naming_the_file(copy: Path) -> None:
    (copy / "customers.toml").write_text("[[city]\nname = 1\n", encoding="utf-8")
    with pytest.raises(CatalogueError, match="customers.toml"):
        load_catalogue(copy)
