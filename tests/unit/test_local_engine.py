"""The local engine's settings overrides, generated secrets and state file (no Docker needed)."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import pytest

from infra import local_engine
from infra.environment import build_environment
from infra.host_ports import check_ports_free
from infra.local_endpoints import endpoints_for
from infra.local_overrides import LOCAL_TLS_OVERRIDE, local_config, local_settings, local_tls_override
from infra.local_state import load_state, save_state
from infra.secret_generation import generate_secrets, placeholder_secrets
from infra.secrets import BY_KEY, SECRETS, Needed
from infra.settings import TlsMode
from infra.settings_problems import SettingsError
from infra.stack_files import available_stacks, load_stack_config
from infra.versions import N8N_VERSION, offline_images
from tests.unit.pulumi_harness import stack_config

STACKS = available_stacks()


def test_ci_stack_names_exactly_the_offline_images() -> None:
    assert stack_config("ci")["images"] == offline_images()
    assert offline_images()["n8n"] == f"kaizenity-local/n8n:{N8N_VERSION}"


def test_required_secrets_follow_the_model() -> None:
    base = [
        "gatewayEditorPassword",
        "gatewayEditorPasswordSalt",
        "n8nDbPassword",
        "n8nEncryptionKey",
        "postgresPassword",
    ]
    workflows = [
        "appDatabasePassword",
        "n8nOwnerPassword",
        "n8nReaderDbPassword",
        "telegramWebhookPathToken",
        "telegramWebhookSecret",
    ]
    assert local_engine.required_secret_keys("ci") == sorted(base + workflows)
    # queue mode (redisPassword) and monitoring (its database login)
    prod = [*base, *workflows, "redisPassword", "monitoringDatabasePassword"]
    assert local_engine.required_secret_keys("prod") == sorted(prod)


@pytest.mark.parametrize("stack", STACKS)
def test_every_required_secret_can_be_generated(stack: str) -> None:
    keys = local_engine.required_secret_keys(stack)
    generated = generate_secrets(keys)
    assert sorted(generated) == keys
    local_settings(stack, secrets=generated)  # valid: lengths and rules are the registry's


def test_generated_secrets_are_long_unique_and_url_safe() -> None:
    keys = ["postgresPassword", "n8nEncryptionKey", "n8nOwnerPassword"]
    first, second = generate_secrets(keys), generate_secrets(keys)
    assert first.keys() == second.keys() == set(keys)
    assert len(first["n8nEncryptionKey"]) == BY_KEY["n8nEncryptionKey"].generated_length == 48
    assert first["postgresPassword"] != second["postgresPassword"]
    assert all(c.isalnum() or c in "-_" for value in first.values() for c in value)
    with pytest.raises(ValueError, match="telegramBotToken is issued by another service"):
        generate_secrets(["telegramBotToken"])


def test_placeholders_cover_every_generated_secret() -> None:
    assert set(placeholder_secrets()) == {spec.key for spec in SECRETS if spec.generated_length}
    assert {spec.key for spec in SECRETS if spec.needed is not Needed.OPTIONAL} <= set(placeholder_secrets())


def test_local_overrides_prefix_images_and_free_ports() -> None:
    secrets = generate_secrets(local_engine.required_secret_keys("dev"))
    settings = local_settings("dev", prefix="kzt-x", offline=True, free_ports=True, secrets=secrets)
    model = build_environment(settings)
    assert {s.container_name for s in model.services} == {"kzt-x-postgres", "kzt-x-n8n", "kzt-x-gateway"}
    assert {s.image for s in model.services} <= set(offline_images().values())
    assert settings.gateway.https_port not in (443, 8443)
    # everything else is the dev stack's own
    assert settings.gateway.tls_mode.value == "internal"
    assert settings.postgres.publish.value == "loopback"


@pytest.mark.parametrize("stack", STACKS)
def test_local_tls_override_touches_only_public_tls(stack: str) -> None:
    """acme stacks run on Caddy's local CA on localhost, loopback only; every other key stays the stack's."""
    original = load_stack_config(stack).values
    overridden = local_config(stack)
    gateway = dict(original.get("gateway") or {})
    if str(gateway.get("tlsMode")) != "acme":
        assert overridden == original
        return
    expected_gateway = {k: v for k, v in gateway.items() if k != "publicUrl"} | LOCAL_TLS_OVERRIDE
    assert overridden == {**original, "gateway": expected_gateway}
    settings = local_settings(stack, secrets=placeholder_secrets())
    assert settings.gateway.tls_mode is TlsMode.INTERNAL
    assert settings.gateway.url.startswith("https://localhost")
    assert build_environment(settings).endpoints.local_ca_file is not None
    for _service, port in build_environment(settings).published_ports():
        assert port.host_ip == "127.0.0.1"


def test_local_tls_override_leaves_internal_and_off_alone() -> None:
    for mode in ("internal", "off"):
        config = {"gateway": {"tlsMode": mode, "domain": "ops.example.com"}}
        assert local_tls_override(config) == config


def test_port_preflight_names_the_setting_of_a_taken_port() -> None:
    secrets = generate_secrets(local_engine.required_secret_keys("ci"))
    settings = local_settings("ci", secrets=secrets, free_ports=True)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", settings.postgres.host_port))
        holder.listen()
        with pytest.raises(SettingsError, match=r"kaizenity:postgres.hostPort: 127.0.0.1:\d+ is already in use"):
            check_ports_free(build_environment(settings))


def test_state_file_is_private_and_public_view_hides_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAIZENITY_STATE_DIR", str(tmp_path / "state"))
    secrets = generate_secrets(local_engine.required_secret_keys("ci"))
    settings = local_settings("ci", prefix="kzt-s", secrets=secrets)
    endpoints = endpoints_for(build_environment(settings), secrets, None)
    path = save_state(endpoints)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_state("kzt-s") == endpoints
    shown = str(endpoints.public())
    for value in secrets.values():
        assert value not in shown
    assert "postgresql://postgres:***@127.0.0.1:15432/kaizenity" in shown
    assert "postgresql://kaizenity_n8n_reader:***@127.0.0.1:15432/n8n" in shown  # health's read-only login
    assert endpoints.database_url is not None
    assert secrets["postgresPassword"] in endpoints.database_url
    assert endpoints.public()["n8n_owner_email"] == "owner@kaizenity.invalid"


def test_moved_names_are_still_served_with_a_warning() -> None:
    with pytest.warns(DeprecationWarning, match=r"infra.local_engine.local_prefix moved to infra.local_overrides"):
        assert local_engine.local_prefix("dev") == "kaizenity-dev-local"


def test_tls_override_is_announced_only_where_it_applies() -> None:
    from infra.local_overrides import tls_override_note

    assert tls_override_note("dev") is None
    note = tls_override_note("prod")
    assert note is not None
    assert "local TLS override" in note
