"""CRM account edits → Kingdee 客户: the reverse direction of ``flows/customers.py``, same mapping file.

Only the shared fields (name, short name) flow back; accounts created in the CRM become Kingdee customers through
lead conversion (``flows/converted_leads.py``), not here.
"""

from __future__ import annotations

from bytewax.dataflow import Dataflow

from connectors.settings import Settings, get_settings
from core.mapping import Mapping
from flows.crm_to_kingdee import build_crm_to_kingdee
from flows.specs import load_mapping

FLOW = "accounts_to_kingdee"
MAPPING = "customers"


def build_flow(settings: Settings | None = None, mapping: Mapping | None = None,
               *, into: Dataflow | None = None) -> Dataflow:
    return build_crm_to_kingdee(FLOW, settings or get_settings(), mapping or load_mapping(MAPPING), into=into)
