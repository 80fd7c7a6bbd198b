"""Stack settings: every stack file validates, and every invalid case lists its problems, not a traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra.settings_problems import SettingsError
from infra.settings_validation import parse_settings
from infra.stack_files import available_stacks, load_stack_config
from tests.unit.pulumi_harness import TEST_SECRETS, stack_config

STACKS = available_stacks()  # every stack file, including ones `kaizenity bootstrap` adds


def problems(config: dict[str, Any], stack: str = "dev") -> list[str]:
    with pytest.raises(SettingsError) as caught:
        parse_settings(stack, config)
    return [str(problem) for problem in caught.value.problems]


def test_the_shipped_stacks_exist() -> None:
    """The four stacks the README documents; a team's own stack files may come in addition."""
    assert {"dev", "staging", "prod", "ci"} <= set(STACKS)


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_file_is_valid_with_its_secrets(stack: str) -> None:
    settings = parse_settings(stack, stack_config(stack))
    assert settings.stack == stack
    assert settings.prefix == f"kaizenity-{stack}"


@pytest.mark.parametrize("stack", STACKS)
def test_stack_files_hold_no_plaintext_secrets(stack: str) -> None:
    config = load_stack_config(stack)
    assert not set(config.values) & set(TEST_SECRETS), "secrets belong in `pulumi config set --secret`"


@pytest.mark.parametrize("stack", STACKS)
def test_missing_secrets_are_all_listed_with_the_command_that_sets_them(stack: str) -> None:
    found = problems(stack_config(stack, with_secrets=False), stack)
    required = [
        "postgresPassword",
        "n8nDbPassword",
        "n8nEncryptionKey",
        "gatewayEditorPassword",
        "gatewayEditorPasswordSalt",
    ]
    required += ["n8nOwnerPassword", "appDatabasePassword", "telegramWebhookSecret", "telegramWebhookPathToken"]
    required.append("n8nReaderDbPassword")  # health's read-only login to n8n's database, made by the seeder
    settings = parse_settings(stack, stack_config(stack))
    if settings.n8n.queue_mode:
        required.append("redisPassword")
    if settings.monitoring.enabled:
        required.append("monitoringDatabasePassword")
    for key in required:
        assert any(f"kaizenity:{key}: required secret is missing" in p for p in found), key
        assert any(f"pulumi config set --secret kaizenity:{key}" in p for p in found), key
    assert len(found) == len(required)


def test_encryption_key_problem_says_losing_it_loses_credentials() -> None:
    found = problems({k: v for k, v in TEST_SECRETS.items() if k != "n8nEncryptionKey"})
    assert len(found) == 1
    assert "unreadable" in found[0]


CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("typo at top level", {"gatway": {}}, "kaizenity:gatway", "did you mean 'gateway'?"),
    (
        "typo in a section",
        {"gateway": {"tlsMod": "internal"}},
        "kaizenity:gateway.tlsMod",
        "did you mean 'tlsMode'?",
    ),
    (
        "bad enum",
        {"gateway": {"tlsMode": "letsencrypt"}},
        "kaizenity:gateway.tlsMode",
        "'internal', 'acme' or 'off'",
    ),
    (
        "port range",
        {"postgres": {"hostPort": 70000}},
        "kaizenity:postgres.hostPort",
        "less than or equal to 65535",
    ),
    ("bad cidr", {"gateway": {"editorAllowedCidrs": ["10.0.0.0/33"]}}, "editorAllowedCidrs.0", "CIDR"),
    ("bad image", {"images": {"n8n": "N8N IMAGE"}}, "kaizenity:images.n8n", "not a valid image reference"),
    ("bad domain", {"gateway": {"domain": "bad_domain!"}}, "kaizenity:gateway.domain", "DNS name"),
    (
        "publish beyond loopback",
        {"postgres": {"publish": "0.0.0.0"}},
        "kaizenity:postgres.publish",
        "'loopback'",
    ),
    (
        "memory too small",
        {"n8n": {"memoryMb": 128}},
        "kaizenity:n8n.memoryMb",
        "greater than or equal to 768",
    ),
    ("queue without workers", {"n8n": {"queueMode": True}}, "kaizenity:n8n.workers", "at least one worker"),
    ("workers without queue", {"n8n": {"workers": 2}}, "kaizenity:n8n.queueMode", "only in queue mode"),
    (
        "acme without email",
        {"gateway": {"tlsMode": "acme", "domain": "a.example.com"}},
        "acmeEmail",
        "e-mail",
    ),
    (
        "acme on localhost",
        {"gateway": {"tlsMode": "acme", "acmeEmail": "a@b.co"}},
        "gateway.domain",
        "public DNS",
    ),
    (
        "acme on odd ports",
        {"gateway": {"tlsMode": "acme", "acmeEmail": "a@b.co", "domain": "a.example.com", "httpsPort": 8443}},
        "gateway.httpsPort",
        "ports 80 and 443",
    ),
    (
        "port clash",
        {"postgres": {"hostPort": 443}},
        "kaizenity:postgres.hostPort",
        "also used by gateway.httpsPort",
    ),
    ("bad env name", {"n8n": {"extraEnv": {"lower-case": "x"}}}, "extraEnv", "should match pattern"),
]


@pytest.mark.parametrize(("label", "config", "key", "text"), CASES, ids=[c[0] for c in CASES])
def test_invalid_setting_names_key_cause_and_example(label: str, config: dict[str, Any], key: str, text: str) -> None:
    found = problems({**TEST_SECRETS, **config})
    matching = [p for p in found if key in p and text in p]
    assert matching, f"{label}: expected a problem with {key!r} and {text!r}, got {found}"


def test_field_problems_carry_a_valid_example() -> None:
    found = problems({**TEST_SECRETS, "gateway": {"httpPort": 0}})
    assert found == ["kaizenity:gateway.httpPort: Input should be greater than or equal to 1 (got 0) (example: 80)"]


def test_every_problem_is_reported_in_one_run() -> None:
    config = {
        "gatway": {},
        "gateway": {"tlsMode": "acme", "httpPort": 0},
        "n8n": {"queueMode": True},
        "postgresPassword": "short",
    }
    found = problems(config)
    # unknown key, port, acme e-mail, acme domain, acme ports, workers, short secret, 4 missing secrets
    assert len(found) == 17, found  # 12 (with the gateway hash salt) + the 5 seeding secrets (health's reader too)


def test_secret_values_are_never_echoed() -> None:
    with pytest.raises(SettingsError) as caught:
        parse_settings("dev", {**TEST_SECRETS, "postgresPassword": "tiny-Secret!"})
    assert "tiny-Secret!" not in str(caught.value)
    assert "at least 16 characters (value not shown)" in str(caught.value)


def test_error_message_tells_where_to_fix() -> None:
    with pytest.raises(SettingsError) as caught:
        parse_settings("dev", {})
    message = str(caught.value)
    assert message.startswith("10 problem(s) in the settings of stack 'dev':")
    assert "stacks/Pulumi.<stack>.yaml" in message


def test_unknown_namespace_in_a_stack_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.x.yaml").write_text("config:\n  kaizentiy:gateway: {}\n  docker:host: unix:///x\n")
    with pytest.raises(SettingsError) as caught:
        load_stack_config("x", tmp_path)
    assert "kaizentiy:gateway: unknown namespace" in str(caught.value)


def test_missing_stack_file_lists_the_stacks_there_are(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.dev.yaml").write_text("config: {}\n")
    with pytest.raises(SettingsError) as caught:
        load_stack_config("qa", tmp_path)
    assert "no stack file for 'qa' (stacks here: dev)" in str(caught.value)


def test_invalid_yaml_is_a_settings_error(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.bad.yaml").write_text("config: [unclosed\n")
    with pytest.raises(SettingsError, match="is not valid YAML"):
        load_stack_config("bad", tmp_path)


def test_secure_entries_are_reported_by_key_not_value(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.s.yaml").write_text("config:\n  kaizenity:postgresPassword:\n    secure: v1:abc\n")
    config = load_stack_config("s", tmp_path)
    assert config.secure_keys == ("postgresPassword",)
    assert "postgresPassword" not in config.values


def test_n8n_owner_password_must_meet_n8ns_policy() -> None:
    found = problems({**TEST_SECRETS, "n8nOwnerPassword": "alllowercase"})
    assert len(found) == 1
    assert "kaizenity:n8nOwnerPassword" in found[0]
    assert "digit and an upper-case letter" in found[0]
    assert "alllowercase" not in found[0], "a secret's value is never echoed"


def test_telegram_secret_token_must_be_url_safe() -> None:
    found = problems({**TEST_SECRETS, "telegramWebhookSecret": "has spaces and $ signs!!"})
    assert len(found) == 1
    assert "kaizenity:telegramWebhookSecret" in found[0]
    assert "spaces" not in found[0]
