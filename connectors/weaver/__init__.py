"""Weaver e-cology 9 OA (泛微): approval workflows for campaigns and contracts (client in ``client.py``)."""
