"""Customers: Kingdee 客户 (audited) → ZOHO CRM Accounts, as declared in ``flows/mappings/customers.toml``.

A deleted or disabled customer is marked in the CRM (``Kingdee_Active``, ``Kingdee_Deleted``), never removed; an
unknown customer-type code is dead-lettered naming the code.  See ``flows/kingdee_to_crm.py`` for the pipeline.
"""

from __future__ import annotations

from bytewax.dataflow import Dataflow

from connectors.settings import Settings, get_settings
from core.mapping import Mapping
from flows.kingdee_to_crm import build_kingdee_to_crm
from flows.specs import load_mapping

FLOW = "customers"


def build_flow(settings: Settings | None = None, mapping: Mapping | None = None,
               *, into: Dataflow | None = None) -> Dataflow:
    return build_kingdee_to_crm(FLOW, settings or get_settings(), mapping or load_mapping(FLOW), into=into)
