"""Where the Huilianyi simulator finds the app id and secret it accepts."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from infra.simulators.huilianyi.config import resolve_credentials


def test_flag_beats_env_beats_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "huilianyi_app_id").write_text("id-file\n")
    (tmp_path / "huilianyi_app_secret").write_text("secret-file\n")
    monkeypatch.setenv("HUILIANYI_SIM_APP_SECRET", "secret-env")

    assert resolve_credentials(tmp_path).app_secret == "secret-env"
    assert resolve_credentials(tmp_path, app_secret="secret-flag").app_secret == "secret-flag"
    assert resolve_credentials(tmp_path).app_id == "id-file"


def test_missing_secrets_are_generated_once_into_private_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HUILIANYI_SIM_APP_ID", raising=False)
    monkeypatch.delenv("HUILIANYI_SIM_APP_SECRET", raising=False)
    folder = tmp_path / "secrets"

    first = resolve_credentials(folder)

    assert resolve_credentials(folder) == first
    assert stat.S_IMODE((folder / "huilianyi_app_secret").stat().st_mode) == 0o600
    assert (folder / "huilianyi_app_id").read_text().strip() == first.app_id
