"""Huilianyi (汇联易) expense management: Open API client (expense reports and their write-backs)."""
