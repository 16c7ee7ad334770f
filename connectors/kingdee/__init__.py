"""Kingdee K/3 Cloud (金蝶云星空): database tables, demo data, CDC source and WebAPI client."""
