"""ZOHO CRM: REST client (OAuth refresh, limits, error taxonomy) and the upsert sink."""
