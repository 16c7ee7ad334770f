"""The modules the simulator serves, declared as data: adding a module is one ``ModuleDef`` in ``MODULES``.

Field API names, types and the system duplicate-check fields follow the real CRM; the ``Kingdee_*`` and
``Specification`` fields are the custom fields the cdchub integration adds, with ``Kingdee_ID`` marked unique
so it is the external key upserts match on.
"""

from __future__ import annotations

from infra.simulators.zoho.modules import FieldDef, ModuleDef

PRODUCTS = ModuleDef(
    api_name="Products",
    singular_label="Product",
    system_duplicate_field="Product_Name",
    display_field="Product_Name",
    fields=(
        FieldDef("Product_Name", mandatory=True, length=255),
        FieldDef("Product_Code", length=255),
        FieldDef("Product_Active", "boolean"),
        FieldDef("Description", "textarea"),
        FieldDef("Unit_Price", "currency"),
        FieldDef(
            "Usage_Unit",
            "picklist",
            picklist_values=(
                "-None-",
                "Box",
                "Carton",
                "Dozen",
                "Each",
                "Hour(s)",
                "Pack",
                "Pieces",
                "Quantity",
            ),
        ),
        FieldDef("Product_Category", "picklist", picklist_values=("-None-", "Hardware", "Software", "CRM")),
        FieldDef("Qty_in_Stock", "double"),
        FieldDef("Kingdee_ID", unique=True, custom=True, label="Kingdee ID"),
        FieldDef("Kingdee_Number", custom=True, label="Kingdee Number"),
        FieldDef("Specification", custom=True),
        FieldDef("Kingdee_Deleted", "boolean", custom=True, label="Kingdee Deleted"),
        FieldDef("Kingdee_Version", custom=True, label="Kingdee Version"),
    ),
)

MODULES: dict[str, ModuleDef] = {module.api_name: module for module in (PRODUCTS,)}
