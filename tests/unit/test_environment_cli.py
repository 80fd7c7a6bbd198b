"""`kaizenity status` tells a newcomer how to open the editor: URL, basic-auth user, n8n e-mail, where passwords are."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from infra import local_engine
from infra.environment import build_environment
from infra.local_endpoints import endpoints_for
from infra.local_overrides import local_prefix, local_settings
from infra.local_state import save_state
from infra.secret_generation import generate_secrets
from kaizenity.environment_cli import status
from workflows.deploy import OWNER_EMAIL


@pytest.fixture
def recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("KAIZENITY_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "200")
    secrets = generate_secrets(local_engine.required_secret_keys("dev"))
    settings = local_settings("dev", prefix=local_prefix("dev"), secrets=secrets)
    save_state(endpoints_for(build_environment(settings), secrets, str(tmp_path / "ca.crt")))
    return secrets


def test_status_says_how_to_open_the_editor(recorded: dict[str, str]) -> None:
    result = CliRunner().invoke(status, ["--stack", "dev"])
    assert result.exit_code == 0, result.output
    assert "Open the n8n editor" in result.output
    assert "https://localhost:8443/" in result.output
    assert "basic auth user" in result.output
    assert "admin" in result.output
    assert OWNER_EMAIL == "owner@kaizenity.invalid"
    assert OWNER_EMAIL in result.output
    assert "kaizenity status --stack dev --show-secrets" in result.output
    for value in recorded.values():
        assert value not in result.output  # passwords only with --show-secrets


def test_status_json_carries_the_sign_in(recorded: dict[str, str]) -> None:
    result = CliRunner().invoke(status, ["--stack", "dev", "--format", "json"])
    editor = json.loads(result.output)["editor"]
    assert editor["basic_auth_user"] == "admin"
    assert editor["n8n_sign_in_email"] == OWNER_EMAIL
    shown = CliRunner().invoke(status, ["--stack", "dev", "--format", "json", "--show-secrets"]).output
    assert recorded["gatewayEditorPassword"] in shown
    assert recorded["n8nOwnerPassword"] in shown
