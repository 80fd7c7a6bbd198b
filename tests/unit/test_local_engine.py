"""The local engine's settings overrides, generated secrets and state file (no Docker needed)."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import pytest

from infra import local_engine
from infra.environment import build_environment
from infra.settings_problems import SettingsError
from infra.versions import N8N_VERSION, offline_images
from tests.unit.pulumi_harness import stack_config


def test_ci_stack_names_exactly_the_offline_images() -> None:
    assert stack_config("ci")["images"] == offline_images()
    assert offline_images()["n8n"] == f"kaizenity-local/n8n:{N8N_VERSION}"


def test_required_secrets_follow_the_stack() -> None:
    base = [
        "gatewayEditorPassword",
        "gatewayEditorPasswordSalt",
        "n8nDbPassword",
        "n8nEncryptionKey",
        "postgresPassword",
    ]
    workflows = ["appDatabasePassword", "n8nOwnerPassword", "telegramWebhookPathToken", "telegramWebhookSecret"]
    assert local_engine.required_secret_keys("ci") == sorted(base + workflows)
    with pytest.raises(SettingsError, match="acme"):
        local_engine.required_secret_keys("prod")  # public TLS cannot run on a laptop


def test_generated_secrets_are_long_unique_and_url_safe() -> None:
    keys = ["postgresPassword", "n8nEncryptionKey"]
    first, second = local_engine.generate_secrets(keys), local_engine.generate_secrets(keys)
    assert first.keys() == second.keys() == set(keys)
    assert len(first["n8nEncryptionKey"]) == 48
    assert first["postgresPassword"] != second["postgresPassword"]
    assert all(c.isalnum() or c in "-_" for value in first.values() for c in value)


def test_local_overrides_prefix_images_and_free_ports() -> None:
    secrets = local_engine.generate_secrets(local_engine.required_secret_keys("dev"))
    settings = local_engine.local_settings("dev", prefix="kzt-x", offline=True, free_ports=True, secrets=secrets)
    model = build_environment(settings)
    assert {s.container_name for s in model.services} == {"kzt-x-postgres", "kzt-x-n8n", "kzt-x-gateway"}
    assert {s.image for s in model.services} <= set(offline_images().values())
    assert settings.gateway.https_port not in (443, 8443)
    # everything else is the dev stack's own
    assert settings.gateway.tls_mode.value == "internal"
    assert settings.postgres.publish.value == "loopback"


def test_port_preflight_names_the_setting_of_a_taken_port() -> None:
    secrets = local_engine.generate_secrets(local_engine.required_secret_keys("ci"))
    settings = local_engine.local_settings("ci", secrets=secrets, free_ports=True)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", settings.postgres.host_port))
        holder.listen()
        with pytest.raises(SettingsError, match=r"kaizenity:postgres.hostPort: 127.0.0.1:\d+ is already in use"):
            local_engine.check_ports_free(settings)


def test_state_file_is_private_and_public_view_hides_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAIZENITY_STATE_DIR", str(tmp_path / "state"))
    secrets = local_engine.generate_secrets(local_engine.required_secret_keys("ci"))
    settings = local_engine.local_settings("ci", prefix="kzt-s", secrets=secrets)
    endpoints = local_engine.endpoints_for(settings, build_environment(settings), secrets, None)
    path = local_engine.save_state(endpoints)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert local_engine.load_state("kzt-s") == endpoints
    shown = str(endpoints.public())
    for value in secrets.values():
        assert value not in shown
    assert "postgresql://postgres:***@127.0.0.1:15432/kaizenity" in shown
    assert endpoints.database_url is not None
    assert secrets["postgresPassword"] in endpoints.database_url
