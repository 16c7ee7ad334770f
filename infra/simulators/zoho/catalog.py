"""The modules the simulator serves, declared as data: adding a module is one ``ModuleDef`` in ``MODULES``.

Field API names, types, mandatory fields and the system duplicate-check fields follow the real CRM (standard
modules of an Enterprise org, a subset of their fields). The ``Kingdee_*`` fields are custom fields the cdchub
integration adds; each module's Kingdee id field is marked unique, so it is the external key upserts match on.

Two custom modules hold what Kingdee reports back about an order (a custom module always has the mandatory
``Name`` field, which is also its system duplicate-check field):

- ``Deliveries`` — one per Kingdee outbound (SAL_OUTSTOCK): ``Kingdee_Outbound_ID`` (unique), ``Outbound_No``,
  ``Sales_Order`` (lookup), ``Account`` (lookup), ``Delivery_Date``, ``Delivery_Lines`` (subform: ``Order_Line_ID``
  = the id of the ``Ordered_Items`` row delivered, ``Product``, ``Delivered_Qty``, ``Kingdee_Entry_ID``),
  ``Deleted_In_Kingdee``.
- ``Payments`` — one per Kingdee receipt (AR_RECEIVEBILL): ``Kingdee_Receipt_ID`` (unique), ``Receipt_No``,
  ``Account`` and ``Sales_Order`` (lookups), ``Amount`` (currency), ``Receipt_Date``, ``Deleted_In_Kingdee``,
  ``Kingdee_Status``, ``Kingdee_Approver``, ``Kingdee_Approved_At``.
"""

from __future__ import annotations

from infra.simulators.zoho.modules import FieldDef, ModuleDef

MODULE_ID_BASE = 4_876_876_000_000_002_000

LEAD_SOURCES = ("-None-", "Advertisement", "Cold Call", "Employee Referral", "Web Download", "Trade Show")
INDUSTRIES = ("-None-", "Manufacturing", "Retail", "Government/Military", "Technology", "Other")
DEAL_STAGES = (
    "Qualification", "Needs Analysis", "Value Proposition", "Id. Decision Makers", "Proposal/Price Quote",
    "Negotiation/Review", "Closed Won", "Closed Lost", "Closed Lost to Competition",
)  # fmt: skip


def _address(prefix: str) -> tuple[FieldDef, ...]:
    return tuple(
        FieldDef(f"{prefix}_{part}", length=length)
        for part, length in (("Street", 250), ("City", 30), ("State", 30), ("Code", 30), ("Country", 30))
    )


def _line_items(name: str) -> FieldDef:
    """Inventory line items: a subform in v3+ (``Ordered_Items``/``Invoiced_Items``), ``Product_Details`` in v2."""
    return FieldDef(
        name,
        "subform",
        mandatory=True,
        subform_module=name,
        v2_api_name="Product_Details",
        rows=(
            FieldDef("Product_Name", "lookup", mandatory=True, lookup_module="Products"),
            FieldDef("Quantity", "double", mandatory=True),
            FieldDef("List_Price", "currency"),
            FieldDef("Discount", "currency"),
            FieldDef("Tax", "currency"),
            FieldDef("Product_Description", "textarea", length=2000),
            FieldDef("Total", "currency", read_only=True),
            FieldDef("Total_After_Discount", "currency", read_only=True),
            FieldDef("Net_Total", "currency", read_only=True),
            FieldDef("Kingdee_Entry_ID", custom=True, label="Kingdee Entry ID"),
            FieldDef("Tax_Price", "currency", custom=True, label="Price incl. Tax"),
            FieldDef("Tax_Rate", "double", custom=True, label="Tax Rate %"),
            FieldDef("Amount_With_Tax", "currency", custom=True, label="Amount incl. Tax"),
            FieldDef("Delivered_Qty", "double", custom=True, label="Delivered Qty"),
        ),
    )


APPROVAL_STATUSES = ("-None-", "Submit", "Draft", "In Approval", "Rejected", "Re-submit", "Approved")


def _approval_fields() -> tuple[FieldDef, ...]:
    """What the Weaver OA approval of a campaign or a contract shows on the CRM record (custom fields)."""
    return (
        FieldDef("Approval_Status", "picklist", custom=True, label="Approval Status",
                 picklist_values=APPROVAL_STATUSES),
        FieldDef("Approval_Node", custom=True, label="Approval Node", length=120),
        FieldDef("Weaver_Request_ID", custom=True, label="Weaver Request ID", length=40),
    )


def _kingdee_audit_fields() -> tuple[FieldDef, ...]:
    """Who audited the Kingdee bill and when (审核人, 审核日期), on the CRM record the bill is synced to."""
    return (
        FieldDef("Kingdee_Approver", custom=True, label="Kingdee Approver", length=100),
        FieldDef("Kingdee_Approved_At", "datetime", custom=True, label="Kingdee Approved At"),
    )


_INVENTORY_TOTALS = (
    FieldDef("Sub_Total", "currency", read_only=True),
    FieldDef("Discount", "currency"),
    FieldDef("Tax", "currency"),
    FieldDef("Adjustment", "currency"),
    FieldDef("Grand_Total", "currency", read_only=True),
)

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

CAMPAIGNS = ModuleDef(
    api_name="Campaigns",
    singular_label="Campaign",
    system_duplicate_field="Campaign_Name",
    display_field="Campaign_Name",
    fields=(
        FieldDef("Campaign_Name", mandatory=True, length=200),
        FieldDef("Type", "picklist", picklist_values=("-None-", "Conference", "Webinar", "Trade Show",
                                                      "Public Relations", "Advertisement", "Email")),
        FieldDef("Status", "picklist", picklist_values=("-None-", "Planning", "Active", "Inactive", "Complete")),
        FieldDef("Start_Date", "date"),
        FieldDef("End_Date", "date"),
        FieldDef("Budgeted_Cost", "currency"),
        FieldDef("Actual_Cost", "currency"),
        FieldDef("Expected_Revenue", "currency"),
        FieldDef("Parent_Campaign", "lookup", lookup_module="Campaigns"),
        FieldDef("Description", "textarea"),
        *_approval_fields(),
    ),
)  # fmt: skip

LEADS = ModuleDef(
    api_name="Leads",
    singular_label="Lead",
    system_duplicate_field="Email",
    display_field="Last_Name",
    convertable=True,
    fields=(
        FieldDef("First_Name", length=40),
        FieldDef("Last_Name", mandatory=True, length=80),
        FieldDef("Company", length=200),
        FieldDef("Designation", length=100),
        FieldDef("Email", "email"),
        FieldDef("Phone", "phone"),
        FieldDef("Mobile", "phone"),
        FieldDef("Website", "website"),
        FieldDef("Lead_Source", "picklist", picklist_values=LEAD_SOURCES),
        FieldDef("Lead_Status", "picklist", picklist_values=("-None-", "Not Contacted", "Contacted",
                                                             "Pre-Qualified", "Junk Lead", "Lost Lead")),
        FieldDef("Industry", "picklist", picklist_values=INDUSTRIES),
        FieldDef("Campaign_Source", "lookup", lookup_module="Campaigns"),
        FieldDef("Street", length=250),
        FieldDef("City", length=30),
        FieldDef("State", length=30),
        FieldDef("Country", length=30),
        FieldDef("Description", "textarea"),
    ),
)  # fmt: skip

ACCOUNTS = ModuleDef(
    api_name="Accounts",
    singular_label="Account",
    system_duplicate_field="Account_Name",
    display_field="Account_Name",
    fields=(
        FieldDef("Account_Name", mandatory=True, length=200),
        FieldDef("Account_Number", length=40, unique=True),
        FieldDef("Parent_Account", "lookup", lookup_module="Accounts"),
        FieldDef("Phone", "phone"),
        FieldDef("Website", "website"),
        FieldDef("Industry", "picklist", picklist_values=INDUSTRIES),
        FieldDef("Account_Type", "picklist", picklist_values=("-None-", "Customer", "Partner", "Prospect",
                                                              "Reseller", "Vendor", "Other")),
        *_address("Billing"),
        *_address("Shipping"),
        FieldDef("Description", "textarea"),
        FieldDef("Kingdee_Customer_ID", unique=True, custom=True, label="Kingdee Customer ID"),
        FieldDef("Kingdee_Number", custom=True, label="Kingdee Number"),
        FieldDef("Short_Name", custom=True, label="Short Name", length=80),
        FieldDef("Customer_Type", "picklist", custom=True, label="Customer Type",
                 picklist_values=("-None-", "公立医院", "民营医院", "经销商")),
        FieldDef("Kingdee_Active", "boolean", custom=True, label="Active in Kingdee"),
        FieldDef("Kingdee_Deleted", "boolean", custom=True, label="Deleted in Kingdee"),
    ),
)  # fmt: skip

CONTACTS = ModuleDef(
    api_name="Contacts",
    singular_label="Contact",
    system_duplicate_field="Email",
    display_field="Last_Name",
    fields=(
        FieldDef("First_Name", length=40),
        FieldDef("Last_Name", mandatory=True, length=80),
        FieldDef("Email", "email"),
        FieldDef("Phone", "phone"),
        FieldDef("Mobile", "phone"),
        FieldDef("Title", length=100),
        FieldDef("Department", length=30),
        FieldDef("Account_Name", "lookup", lookup_module="Accounts"),
        FieldDef("Lead_Source", "picklist", picklist_values=LEAD_SOURCES),
        *_address("Mailing"),
        FieldDef("Description", "textarea"),
    ),
)

DEALS = ModuleDef(
    api_name="Deals",
    singular_label="Deal",
    system_duplicate_field="Deal_Name",
    display_field="Deal_Name",
    fields=(
        FieldDef("Deal_Name", mandatory=True, length=120),
        FieldDef("Stage", "picklist", mandatory=True, picklist_values=DEAL_STAGES),
        FieldDef("Amount", "currency"),
        FieldDef("Closing_Date", "date"),
        FieldDef("Probability", "integer"),
        FieldDef("Account_Name", "lookup", lookup_module="Accounts"),
        FieldDef("Contact_Name", "lookup", lookup_module="Contacts"),
        FieldDef("Campaign_Source", "lookup", lookup_module="Campaigns"),
        FieldDef("Lead_Source", "picklist", picklist_values=LEAD_SOURCES),
        FieldDef("Type", "picklist", picklist_values=("-None-", "Existing Business", "New Business")),
        FieldDef("Description", "textarea"),
        *_approval_fields(),
    ),
)

SALES_ORDERS = ModuleDef(
    api_name="Sales_Orders",
    singular_label="Sales Order",
    plural_label="Sales Orders",
    system_duplicate_field="Subject",
    display_field="Subject",
    fields=(
        FieldDef("Subject", mandatory=True, length=120),
        FieldDef("Account_Name", "lookup", lookup_module="Accounts"),
        FieldDef("Contact_Name", "lookup", lookup_module="Contacts"),
        FieldDef("Deal_Name", "lookup", lookup_module="Deals"),
        FieldDef("Status", "picklist", picklist_values=("Created", "Approved", "Delivered", "Cancelled")),
        FieldDef("Customer_No", length=50),
        FieldDef("Due_Date", "date"),
        FieldDef("Carrier", "picklist", picklist_values=("-None-", "FedEX", "UPS", "USPS", "DHL", "BlueDart")),
        _line_items("Ordered_Items"),
        *_INVENTORY_TOTALS,
        *_address("Billing"),
        *_address("Shipping"),
        FieldDef("Terms_and_Conditions", "textarea"),
        FieldDef("Description", "textarea"),
        FieldDef("Kingdee_Order_ID", unique=True, custom=True, label="Kingdee Order ID"),
        FieldDef("Kingdee_Bill_No", custom=True, label="Kingdee Bill No"),
        FieldDef("Delivery_Status", "picklist", custom=True,
                 picklist_values=("-None-", "Not Delivered", "Partially Delivered", "Delivered")),
        FieldDef("Delivered_Amount", "currency", custom=True),
        FieldDef("Last_Delivery_Date", "date", custom=True),
        FieldDef("Received_Status", "picklist", custom=True,
                 picklist_values=("-None-", "Not Received", "Partially Received", "Received")),
        FieldDef("Received_Amount", "currency", custom=True),
        FieldDef("Last_Receipt_Date", "date", custom=True),
        FieldDef("Invoiced_Amount", "currency", custom=True, label="Invoiced Amount"),
        FieldDef("Deleted_In_Kingdee", "boolean", custom=True, label="Deleted in Kingdee"),
        FieldDef("Order_Date", "date", custom=True, label="Order Date"),
        FieldDef("Kingdee_Status", "picklist", custom=True, label="Kingdee Status",
                 picklist_values=("-None-", "Created", "Submitted", "Audited", "Un-audited", "Closed", "Voided",
                                  "Deleted")),
        *_kingdee_audit_fields(),
    ),
)  # fmt: skip

INVOICES = ModuleDef(
    api_name="Invoices",
    singular_label="Invoice",
    system_duplicate_field="Subject",
    display_field="Subject",
    fields=(
        FieldDef("Subject", mandatory=True, length=120),
        FieldDef("Account_Name", "lookup", lookup_module="Accounts"),
        FieldDef("Contact_Name", "lookup", lookup_module="Contacts"),
        FieldDef("Sales_Order", "lookup", lookup_module="Sales_Orders"),
        FieldDef("Deal_Name", "lookup", lookup_module="Deals"),
        FieldDef("Invoice_Date", "date"),
        FieldDef("Due_Date", "date"),
        FieldDef("Status", "picklist", picklist_values=("Created", "Approved", "Delivered", "Paid", "Cancelled")),
        _line_items("Invoiced_Items"),
        *_INVENTORY_TOTALS,
        *_address("Billing"),
        FieldDef("Description", "textarea"),
        FieldDef("Kingdee_Invoice_ID", unique=True, custom=True, label="Kingdee Invoice ID"),
        FieldDef("Kingdee_Bill_No", custom=True, label="Kingdee Bill No"),
        FieldDef("Invoice_Type", "picklist", custom=True, label="Invoice Type",
                 picklist_values=("-None-", "VAT Special", "Ordinary")),
        FieldDef("Invoice_No", custom=True, label="Invoice No"),
        FieldDef("Amount_Without_Tax", "currency", custom=True, label="Amount excl. Tax"),
        FieldDef("Amount_With_Tax", "currency", custom=True, label="Amount incl. Tax"),
        FieldDef("Kingdee_Status", "picklist", custom=True, label="Kingdee Status",
                 picklist_values=("-None-", "Created", "Submitted", "Audited", "Un-audited", "Voided", "Deleted")),
        FieldDef("Deleted_In_Kingdee", "boolean", custom=True, label="Deleted in Kingdee"),
    ),
)  # fmt: skip

NOTES = ModuleDef(
    api_name="Notes",
    singular_label="Note",
    display_field="Note_Title",
    fields=(
        FieldDef("Note_Title", length=120),
        FieldDef("Note_Content", "textarea", mandatory=True),
        FieldDef("Parent_Id", "multi_module_lookup", mandatory=True, label="Parent ID"),
    ),
)

DELIVERIES = ModuleDef(
    api_name="Deliveries",
    singular_label="Delivery",
    generated_type="custom",
    system_duplicate_field="Name",
    display_field="Name",
    fields=(
        FieldDef("Name", mandatory=True, length=120, label="Delivery Name"),
        FieldDef("Kingdee_Outbound_ID", unique=True, custom=True, label="Kingdee Outbound ID"),
        FieldDef("Outbound_No", custom=True, label="Outbound No"),
        FieldDef("Sales_Order", "lookup", custom=True, lookup_module="Sales_Orders"),
        FieldDef("Account", "lookup", custom=True, lookup_module="Accounts"),
        FieldDef("Delivery_Date", "date", custom=True),
        FieldDef(
            "Delivery_Lines",
            "subform",
            custom=True,
            subform_module="Delivery_Lines",
            rows=(
                FieldDef("Order_Line_ID", custom=True, label="Order Line ID"),
                FieldDef("Product", "lookup", custom=True, lookup_module="Products"),
                FieldDef("Delivered_Qty", "double", mandatory=True, custom=True, label="Delivered Qty"),
                FieldDef("Kingdee_Entry_ID", custom=True, label="Kingdee Entry ID"),
            ),
        ),
        FieldDef("Deleted_In_Kingdee", "boolean", custom=True, label="Deleted in Kingdee"),
    ),
)

PAYMENTS = ModuleDef(
    api_name="Payments",
    singular_label="Payment",
    generated_type="custom",
    system_duplicate_field="Name",
    display_field="Name",
    fields=(
        FieldDef("Name", mandatory=True, length=120, label="Payment Name"),
        FieldDef("Kingdee_Receipt_ID", unique=True, custom=True, label="Kingdee Receipt ID"),
        FieldDef("Receipt_No", custom=True, label="Receipt No"),
        FieldDef("Account", "lookup", custom=True, lookup_module="Accounts"),
        FieldDef("Sales_Order", "lookup", custom=True, lookup_module="Sales_Orders"),
        FieldDef("Amount", "currency", custom=True),
        FieldDef("Receipt_Date", "date", custom=True),
        FieldDef("Deleted_In_Kingdee", "boolean", custom=True, label="Deleted in Kingdee"),
        FieldDef("Kingdee_Status", "picklist", custom=True, label="Kingdee Status",
                 picklist_values=("-None-", "Created", "Submitted", "Audited", "Un-audited", "Voided", "Deleted")),
        *_kingdee_audit_fields(),
    ),
)

MODULES: dict[str, ModuleDef] = {
    module.api_name: module
    for module in (
        LEADS, CONTACTS, ACCOUNTS, DEALS, CAMPAIGNS, PRODUCTS, SALES_ORDERS, INVOICES, NOTES, DELIVERIES, PAYMENTS
    )
}  # fmt: skip


def module_id(module: ModuleDef) -> str:
    """A stable id per module for the metadata API (the real ones are 19-digit numbers too)."""
    return module.module_id or str(MODULE_ID_BASE + list(MODULES).index(module.api_name) * 3 + 1)
