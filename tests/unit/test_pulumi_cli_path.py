"""`kaizenity up/down` with the Pulumi CLI (issue 10, defect 7), against a stand-in `pulumi` that records what it
was given, and the stack files' list of required secrets, derived from the environment model."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from infra.environment import build_environment
from infra.secret_generation import placeholder_secrets
from infra.secrets import SECRET_KEYS
from infra.settings_validation import parse_settings, required_secret_keys
from infra.stack_files import load_stack_config, stacks_dir
from kaizenity.cli import main

FAKE_PULUMI = """#!/usr/bin/env python3
import json, os, sys
with open(os.environ["FAKE_PULUMI_LOG"], "a") as log:
    stdin = sys.stdin.read() if "config" in sys.argv[1:2] else ""
    log.write(json.dumps({"args": sys.argv[1:], "env": dict(os.environ), "stdin": stdin}) + "\\n")
sys.exit(int(os.environ.get("FAKE_PULUMI_RC", "0")))
"""


@pytest.fixture
def fake_pulumi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `pulumi` first on PATH; the working directory holds a bootstrap-made passphrase file."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "pulumi").write_text(FAKE_PULUMI, encoding="utf-8")
    (bin_dir / "pulumi").chmod(0o755)
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setenv("FAKE_PULUMI_LOG", str(log))
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE", raising=False)
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE_FILE", raising=False)
    work = tmp_path / "checkout"
    (work / ".kaizenity" / "pulumi").mkdir(parents=True)
    (work / ".kaizenity" / "pulumi" / "passphrase").write_text("p" * 32, encoding="utf-8")
    monkeypatch.chdir(work)
    return log


def calls(log: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_up_and_down_give_pulumi_the_bootstrap_passphrase(fake_pulumi: Path) -> None:
    """bootstrap made the stack with a passphrase in .kaizenity/pulumi/passphrase; up/down must pass it on."""
    assert CliRunner().invoke(main, ["up", "--stack", "dev", "--yes"]).exit_code == 0
    assert CliRunner().invoke(main, ["down", "--stack", "dev", "--yes"]).exit_code == 0
    up, down = calls(fake_pulumi)
    assert up["args"] == ["up", "--stack", "dev", "--yes"]
    assert down["args"] == ["destroy", "--stack", "dev", "--yes"]
    for call in (up, down):
        env = call["env"]
        assert isinstance(env, dict)
        assert env["PULUMI_CONFIG_PASSPHRASE_FILE"] == str(Path(".kaizenity/pulumi/passphrase").resolve())


def test_an_operator_passphrase_is_never_overridden(fake_pulumi: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "mine")
    assert CliRunner().invoke(main, ["up", "--stack", "dev"]).exit_code == 0
    env = calls(fake_pulumi)[0]["env"]
    assert isinstance(env, dict)
    assert env["PULUMI_CONFIG_PASSPHRASE"] == "mine"
    assert "PULUMI_CONFIG_PASSPHRASE_FILE" not in env


def test_down_on_a_protected_stack_explains_the_volumes(fake_pulumi: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_PULUMI_RC", "255")  # what `pulumi destroy` does when it meets a protected resource
    result = CliRunner().invoke(main, ["down", "--stack", "staging", "--yes"])
    assert result.exit_code == 255
    assert "protects its data volumes" in result.output
    assert "--keep-data" in result.output
    assert "pulumi state unprotect" in result.output
    monkeypatch.setenv("FAKE_PULUMI_RC", "0")
    assert CliRunner().invoke(main, ["down", "--stack", "staging", "--keep-data", "--yes"]).exit_code == 0
    assert calls(fake_pulumi)[-1]["args"] == ["destroy", "--stack", "staging", "--yes", "--exclude-protected"]


def required_secrets(stack: str) -> set[str]:
    """What the model of `stack` refers to, plus the seed workflows' secrets: derived, never listed by hand."""
    config = {**load_stack_config(stack).values, **placeholder_secrets()}
    model = build_environment(parse_settings(stack, config))
    return set(required_secret_keys(model))


@pytest.mark.parametrize("stack", ["dev", "ci", "staging", "prod"])
def test_stack_file_comments_list_exactly_the_required_secrets(stack: str) -> None:
    text = (stacks_dir() / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8")
    block = re.search(r"# Required secrets \((\d+);.*?\n(.*?)# Optional: (.*?)\n", text, re.S)
    assert block, f"Pulumi.{stack}.yaml: no 'Required secrets' comment"
    listed = {word for word in re.findall(r"[a-zA-Z0-9]+", block.group(2)) if word in SECRET_KEYS}
    assert listed == required_secrets(stack)
    assert int(block.group(1)) == len(listed)
    optional = set(re.findall(r"[a-zA-Z0-9]+", block.group(3)))
    assert optional == set(SECRET_KEYS) - required_secrets("prod")


def test_readme_quick_start_sets_every_secret_the_code_requires() -> None:
    """README's `pulumi config set --secret` lines are checked against the model, not kept by hand."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Pulumi quick start", 1)[1].split("```", 2)[1]
    lines = [line for line in section.splitlines() if "pulumi config set --secret kaizenity:" in line]
    keys = {re.search(r"kaizenity:(\w+)", line).group(1): line for line in lines}  # type: ignore[union-attr]
    assert set(keys) == set(SECRET_KEYS)
    optional = {key for key, line in keys.items() if "# optional" in line}
    assert optional == set(SECRET_KEYS) - required_secrets("prod")
    staging_only = {key for key, line in keys.items() if "staging, prod" in line}
    assert staging_only == required_secrets("prod") - required_secrets("dev")


def test_rotate_with_pulumi_stores_the_new_secret_through_stdin_then_runs_up(fake_pulumi: Path) -> None:
    result = CliRunner().invoke(main, ["rotate", "n8nDbPassword", "--stack", "dev", "--yes"])
    assert result.exit_code == 0, result.output
    stored, up = calls(fake_pulumi)
    assert stored["args"] == ["config", "set", "--secret", "kaizenity:n8nDbPassword", "--stack", "dev"]
    assert isinstance(stored["stdin"], str)
    assert len(stored["stdin"]) == 32, "a fresh value, through stdin: never on the command line"
    assert up["args"] == ["up", "--stack", "dev", "--yes"]


def test_rotate_refuses_the_encryption_key_and_says_why(fake_pulumi: Path) -> None:
    result = CliRunner().invoke(main, ["rotate", "n8nEncryptionKey", "--stack", "dev"])
    assert result.exit_code == 1
    assert "cannot be rotated" in result.output
    assert "re-encrypt" in result.output
    assert not fake_pulumi.exists()
