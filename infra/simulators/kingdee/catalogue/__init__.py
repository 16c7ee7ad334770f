"""The demo company's catalogue, declared as data: basedata, products and what customers are made of.

Three TOML files next to this module (installed as package data): ``basedata.toml`` (units, material groups,
warehouses, customer types), ``products.toml`` (products with their specifications and price ranges) and
``customers.toml`` (cities, real hospitals, the words invented distributors and addresses are made of). The seed
(``infra.simulators.kingdee.demo_seed``) reads them through :func:`load_catalogue`.

Every file is validated with pydantic on load, and the references between them too (a product's group and unit, a
hospital's city): a wrong file fails with :class:`CatalogueError` naming the file and the field. Order in the files
matters: the seed hands out ids and numbers in file order, so the same files and seed give the same rows.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.toml_specs import SpecError, load_toml_spec

CATALOGUE_DIR = Path(__file__).resolve().parent

CustomerRole = Literal["public_hospital", "private_hospital", "distributor"]


#: A catalogue file that cannot be read or does not validate; the message names the file and the field (the one
#: loader of every TOML file the project reads, ``core.toml_specs``).
CatalogueError = SpecError


class _Entry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Unit(_Entry):
    """计量单位."""

    number: str = Field(min_length=1)
    name: str = Field(min_length=1)
    precision: int = Field(ge=0)


class MaterialGroup(_Entry):
    """物料分组; ``equipment``: serial-numbered devices, not lot-managed."""

    number: str = Field(min_length=1)
    name: str = Field(min_length=1)
    parent: str | None = None
    equipment: bool = False


class Warehouse(_Entry):
    """仓库."""

    number: str = Field(min_length=1)
    name: str = Field(min_length=1)


class CustomerType(_Entry):
    """客户类别; ``role`` says which customers of the seed get it."""

    number: str = Field(min_length=1)
    name: str = Field(min_length=1)
    role: CustomerRole


class Basedata(_Entry):
    unit: tuple[Unit, ...] = Field(min_length=1)
    material_group: tuple[MaterialGroup, ...] = Field(min_length=1)
    warehouse: tuple[Warehouse, ...] = Field(min_length=1)
    customer_type: tuple[CustomerType, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _parents_come_first(self) -> Basedata:
        seen: set[str] = set()
        for i, group in enumerate(self.material_group):
            if group.parent is not None and group.parent not in seen:
                raise ValueError(f"material_group.{i}.parent: {group.parent!r} is not a material group listed before")
            seen.add(group.number)
        roles = {t.role for t in self.customer_type}
        missing = sorted(set(get_args(CustomerRole)) - roles)
        if missing:
            raise ValueError(f"customer_type: no customer type has the role {', '.join(missing)}")
        return self


class Product(_Entry):
    """A product sold in several specifications; one material per specification."""

    group: str = Field(min_length=1)
    name: str = Field(min_length=1)
    unit: str = Field(min_length=1)
    price: tuple[float, float]
    """Tax-included unit price range in CNY."""
    specs: tuple[str, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _price_range(self) -> Product:
        if not 0 < self.price[0] <= self.price[1]:
            raise ValueError(f"price: {list(self.price)} is not a range [low, high] with 0 < low <= high")
        return self


class Products(_Entry):
    product: tuple[Product, ...] = Field(min_length=1)


class City(_Entry):
    name: str = Field(min_length=1)
    phone_area: str = Field(pattern=r"^0\d{2,3}$")
    tax_region: str = Field(pattern=r"^\d{6}$")


class Hospital(_Entry):
    name: str = Field(min_length=1)
    short_name: str = Field(min_length=1)
    city: str = Field(min_length=1)


class Distributors(_Entry):
    words: tuple[str, ...] = Field(min_length=1)
    kinds: tuple[str, ...] = Field(min_length=1)


class Addresses(_Entry):
    roads: tuple[str, ...] = Field(min_length=1)


class GeneratedHospitals(_Entry):
    ordinals: str = Field(min_length=9, max_length=9)


class Customers(_Entry):
    city: tuple[City, ...] = Field(min_length=1)
    hospital: tuple[Hospital, ...]
    distributors: Distributors
    addresses: Addresses
    generated_hospitals: GeneratedHospitals

    @model_validator(mode="after")
    def _hospitals_in_known_cities(self) -> Customers:
        cities = {c.name for c in self.city}
        for i, hospital in enumerate(self.hospital):
            if hospital.city not in cities:
                raise ValueError(f"hospital.{i}.city: {hospital.city!r} is not a city of this file")
        return self


class Catalogue(_Entry):
    """The three files, checked against each other."""

    basedata: Basedata
    products: Products
    customers: Customers

    def equipment_groups(self) -> frozenset[str]:
        return frozenset(g.number for g in self.basedata.material_group if g.equipment)

    def customer_type(self, role: CustomerRole) -> str:
        """The number of the first customer type with this role."""
        return next(t.number for t in self.basedata.customer_type if t.role == role)


def load_catalogue(directory: Path = CATALOGUE_DIR) -> Catalogue:
    """Read and validate ``basedata.toml``, ``products.toml`` and ``customers.toml`` of ``directory``."""
    basedata = load_toml_spec(directory / "basedata.toml", Basedata)
    products_path = directory / "products.toml"
    products = load_toml_spec(products_path, Products)
    groups = {g.number for g in basedata.material_group}
    units = {u.number for u in basedata.unit}
    for i, product in enumerate(products.product):
        if product.group not in groups:
            raise SpecError.at(products_path, f"product[{i}].group",
                                  f"{product.group!r} is not a material_group of basedata.toml")
        if product.unit not in units:
            raise SpecError.at(products_path, f"product[{i}].unit", f"{product.unit!r} is not a unit of basedata.toml")
    customers = load_toml_spec(directory / "customers.toml", Customers)
    return Catalogue(basedata=basedata, products=products, customers=customers)


@cache
def demo_catalogue() -> Catalogue:
    """The installed catalogue, read once per process."""
    return load_catalogue()
