"""Local simulators of the business systems cdchub talks to.

ZOHO CRM now; Kingdee WebAPI, Weaver OA and Huilianyi later.

Each simulator is a small Starlette app run as its own process (``python -m infra.simulators.<system>``) so
connectors run the same client code they run in production. Shared machinery — SQLite persistence, request
log, fault injection, the ``/__sim/`` admin routes and the test-process helper — lives in
:mod:`infra.simulators.common`.
"""
