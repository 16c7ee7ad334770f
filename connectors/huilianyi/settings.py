"""Settings of the Huilianyi connector: ``cdchub.settings.HuilianyiSettings`` (``CDCHUB_HUILIANYI__*``).

Secrets default to the local files ``huilianyi_app_id`` / ``huilianyi_app_secret`` in ``.cache/secrets`` — the
same files the simulator reads or generates, so hub and simulator agree without copying secrets around.
"""

from cdchub.settings import HuilianyiSettings

__all__ = ["HuilianyiSettings"]
