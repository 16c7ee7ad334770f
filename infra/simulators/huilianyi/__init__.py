"""Simulator of the Huilianyi (汇联易) expense-management Open API: OAuth client credentials, expense report
queries by modification window, detail, approval / finance-audit write-backs and the ERP journal number, with
a driver that plays the users. See ``infra/simulators/README.md``.
"""
