"""Settings of the Huilianyi connector (``CDCHUB_HUILIANYI__*``).

Secrets default to the local files ``huilianyi_app_id`` / ``huilianyi_app_secret`` in ``.cache/secrets`` — the
same files the simulator reads or generates, so hub and simulator agree without copying secrets around.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr

from core.settings import read_secret


class HuilianyiSettings(BaseModel):
    """Huilianyi 汇联易 (the simulator locally): expense reports."""

    #: ``https://api.huilianyi.com/gateway`` in production; the simulator locally.
    base_url: str = "http://127.0.0.1:18093"
    app_id: str = Field(default_factory=lambda: read_secret("huilianyi_app_id"))
    app_secret: SecretStr = Field(default_factory=lambda: SecretStr(read_secret("huilianyi_app_secret")))
    scope: str = "write"
    timeout_s: float = 10.0
    page_size: int = Field(default=100, ge=1, le=100)
    poll_interval_s: float = 10.0
