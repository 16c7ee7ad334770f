"""CRM product edits → Kingdee 物料: the reverse direction of ``flows/materials.py``, same mapping file.

Only the fields the mapping gives to the CRM (``owner = "crm"``) or shares (``owner = "shared"``) are saved.
"""

from __future__ import annotations

from bytewax.dataflow import Dataflow

from connectors.settings import Settings, get_settings
from core.mapping import Mapping
from flows.crm_to_kingdee import build_crm_to_kingdee
from flows.specs import load_mapping

FLOW = "products_to_kingdee"
MAPPING = "materials"


def build_flow(settings: Settings | None = None, mapping: Mapping | None = None,
               *, into: Dataflow | None = None) -> Dataflow:
    return build_crm_to_kingdee(FLOW, settings or get_settings(), mapping or load_mapping(MAPPING), into=into)
