"""Where the flows' specs live (``flows/mappings/*.toml``), and the mapping loader bound to the Kingdee documents
the mappings read (``connectors/kingdee/documents.py``): the mapping language itself (``core/mapping.py``) knows
no system, so the flows give it the documents."""

from __future__ import annotations

from pathlib import Path

from connectors.kingdee.documents import DOCUMENTS
from core.mapping import Mapping
from core.mapping_spec import MappingSpec, S, load_spec_and_mapping

MAPPINGS_DIR = Path(__file__).resolve().parent / "mappings"


def spec_path(name: str, directory: Path = MAPPINGS_DIR) -> Path:
    return directory / f"{name}.toml"


def load_mapping_spec(name: str, model: type[S], directory: Path = MAPPINGS_DIR) -> tuple[S, Mapping]:
    """A mapping with sections of its own (``model``): the validated spec and the mapping."""
    return load_spec_and_mapping(spec_path(name, directory), model, DOCUMENTS)


def load_mapping(name: str, directory: Path = MAPPINGS_DIR) -> Mapping:
    """The mapping ``flows/mappings/<name>.toml`` (or in ``directory``), checked against the Kingdee documents."""
    return load_mapping_spec(name, MappingSpec, directory)[1]
