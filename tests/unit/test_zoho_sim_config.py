"""Where the ZOHO simulator finds the credentials it accepts."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from infra.simulators.zoho.config import resolve_credentials


def test_flag_beats_env_beats_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "zoho_client_id").write_text("from-file\n")
    (tmp_path / "zoho_client_secret").write_text("secret-file\n")
    (tmp_path / "zoho_refresh_token").write_text("refresh-file\n")
    monkeypatch.setenv("ZOHO_SIM_CLIENT_SECRET", "secret-env")
    monkeypatch.setenv("ZOHO_SIM_REFRESH_TOKEN", "refresh-env")

    creds = resolve_credentials(tmp_path, refresh_token="refresh-flag")

    assert (creds.client_id, creds.client_secret, creds.refresh_token) == (
        "from-file",
        "secret-env",
        "refresh-flag",
    )


def test_missing_secrets_are_generated_once_with_private_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("ZOHO_SIM_CLIENT_ID", "ZOHO_SIM_CLIENT_SECRET", "ZOHO_SIM_REFRESH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    folder = tmp_path / "secrets"

    first = resolve_credentials(folder)
    second = resolve_credentials(folder)

    assert first == second
    assert first.client_id.startswith("1000.") and first.refresh_token.startswith("1000.")
    assert stat.S_IMODE((folder / "zoho_client_secret").stat().st_mode) == 0o600
    assert (folder / "zoho_refresh_token").read_text().strip() == first.refresh_token
