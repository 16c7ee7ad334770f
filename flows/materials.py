"""Materials: Kingdee 物料 (audited) → ZOHO CRM Products, as declared in ``flows/mappings/materials.toml``.

A deleted or disabled material is marked in the CRM (inactive, ``Kingdee_Deleted``), never removed; materials not
audited are not sent.  See ``flows/kingdee_to_crm.py`` for the pipeline and its guarantees.
"""

from __future__ import annotations

from bytewax.dataflow import Dataflow

from connectors.settings import Settings, get_settings
from core.mapping import Mapping
from flows.kingdee_to_crm import build_kingdee_to_crm
from flows.specs import load_mapping

FLOW = "materials"


def build_flow(settings: Settings | None = None, mapping: Mapping | None = None,
               *, into: Dataflow | None = None) -> Dataflow:
    return build_kingdee_to_crm(FLOW, settings or get_settings(), mapping or load_mapping(FLOW), into=into)
