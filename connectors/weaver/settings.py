"""Settings of the Weaver e-cology OA connector (``CDCHUB_WEAVER__*``)."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr

from core.settings import read_secret


class WeaverSettings(BaseModel):
    """Weaver e-cology OA (the simulator locally): approval workflows for campaigns and contracts."""

    base_url: str = "http://127.0.0.1:18092"
    #: The secrets file may list several ids, one per line (the simulator accepts all); the first is ours.
    app_id: SecretStr = Field(default_factory=lambda: SecretStr(read_secret("weaver_app_id").split("\n")[0]))
    user_id: int = 1  # the OA user business calls act as
    token_ttl_s: int = 1800
    timeout_s: float = 30.0
    poll_interval_s: float = 10.0
