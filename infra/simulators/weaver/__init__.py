"""Weaver e-cology 9 OA (泛微) simulator: RSA token auth, workflow requests, an approval driver, files.

See ``infra/simulators/README.md`` (section "Weaver e-cology OA simulator") for what a connector must know.
"""
