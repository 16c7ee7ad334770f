"""A ZOHO CRM simulator that behaves like the real REST API (v2 … v8) for the calls cdchub's connectors make.

Run it with ``python -m infra.simulators.zoho --port 18090 --state-dir .cache/simulators/zoho``; see
``infra/simulators/README.md`` for the flags, the ``/__sim/`` control API and what a connector must know.
Build it in-process with :func:`infra.simulators.zoho.app.create_app`.
"""
