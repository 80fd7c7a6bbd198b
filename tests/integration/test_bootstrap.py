"""`kaizenity bootstrap` from a clean state: up and healthy, a second run does nothing, no Docker = no changes."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import yaml
from click.testing import CliRunner

from infra import local_engine
from kaizenity.cli import main

pytestmark = pytest.mark.integration
STACK = "newteam"
TEMPLATE_PORTS = (8080, 8443, 5432, 5678)


@pytest.fixture
def clean_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """No stack file and no local state: what a new team starts from."""
    for port in TEMPLATE_PORTS:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                pytest.skip(f"port {port} (the new-stack template's) is in use on this machine")
    monkeypatch.setenv("KAIZENITY_STACKS_DIR", str(tmp_path / "stacks"))
    monkeypatch.setenv("KAIZENITY_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("KAIZENITY_WORKFLOW_PARAMETERS", "heartbeatUnit=seconds,heartbeatEvery=3")
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # no Pulumi CLI: the local engine path
    (tmp_path / "stacks").mkdir()
    yield tmp_path
    local_engine.stop(f"kaizenity-{STACK}-local")


def containers_of(prefix: str) -> list[str]:
    found = docker.from_env().containers.list(all=True, filters={"label": f"io.kaizenity.prefix={prefix}"})
    return sorted(c.name for c in found)


def container_ids(prefix: str) -> dict[str, str]:
    found = docker.from_env().containers.list(all=True, filters={"label": f"io.kaizenity.prefix={prefix}"})
    return {c.name: c.id for c in found}


def test_bootstrap_from_nothing_then_again(clean_state: Path) -> None:
    first = CliRunner().invoke(main, ["bootstrap", "--stack", STACK, "--yes"])
    assert first.exit_code == 0, first.output
    assert "Health: OK." in first.output
    stack_file = clean_state / "stacks" / f"Pulumi.{STACK}.yaml"
    config = yaml.safe_load(stack_file.read_text())["config"]
    assert config["kaizenity:gateway"]["tlsMode"] == "internal"
    assert not any("Password" in key or "Secret" in key for key in config), "no secret in the stack file"
    state = clean_state / "state" / f"kaizenity-{STACK}-local.json"
    assert state.stat().st_mode & 0o777 == 0o600
    prefix = f"kaizenity-{STACK}-local"
    before = container_ids(prefix)
    assert len(before) == 3
    second = CliRunner().invoke(main, ["bootstrap", "--stack", STACK, "--yes"])
    assert second.exit_code == 0, second.output
    assert "Nothing to do" in second.output
    assert container_ids(prefix) == before, "the second run recreated nothing"


def test_without_docker_preflight_fails_and_nothing_is_created(
    clean_state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    result = CliRunner().invoke(main, ["bootstrap", "--stack", STACK, "--yes"])
    assert result.exit_code == 1
    assert "[FAIL] docker: no Docker engine answers" in result.output
    assert "nothing was created" in result.output
    assert list((clean_state / "stacks").iterdir()) == []
    assert not (clean_state / "state").exists()
    monkeypatch.delenv("DOCKER_HOST")
    assert containers_of(f"kaizenity-{STACK}-local") == []
