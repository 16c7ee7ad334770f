"""Bytewax dataflows, one module per business flow; mappings declared as data in ``flows/mappings/``."""
