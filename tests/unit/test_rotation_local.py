"""`kaizenity rotate --local` rebuilds the environment's model from the settings it was started with (issue 10).

The containers a rotation recreates are the model's services whose environment carries the secret. Rebuilt from the
stack file alone, the model misses whatever an override added when the environment was started (monitoring turned on
by `local_engine.start(..., overrides=...)`, as tests/integration/test_monitoring.py does): its exporters would keep
the old Redis password and its PostgreSQL login would never be rotated. The local engine now records the config it
validated (secrets left out) in the state, and rotation reads that. No Docker: models and the state file only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from infra import local_engine
from infra.environment import build_environment
from infra.local_endpoints import LocalEndpoints, endpoints_for
from infra.local_overrides import local_config, recordable_config, recorded_settings
from infra.local_state import load_state, save_state, state_file
from infra.rotation import RotationError
from infra.rotation_local import _record, carriers, model_of, rotate_local
from infra.secret_generation import generate_secrets
from infra.secrets import BY_KEY
from infra.settings_validation import parse_settings
from kaizenity.rotation_cli import rotate

MONITORING_ON = {"monitoring": {"enabled": True}}
EXPORTERS = {"health-exporter", "redis-exporter"}  # monitoring's containers that log in to Redis


def started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, overrides: dict[str, Any] | None = None
) -> tuple[LocalEndpoints, dict[str, Any]]:
    """What `local_engine.start("ci-queue", ...)` records for an environment (its config computed as start does),
    saved in a private state directory; and the config the environment was validated from."""
    monkeypatch.setenv("KAIZENITY_STATE_DIR", str(tmp_path / "state"))
    secrets = generate_secrets(local_engine.required_secret_keys("ci-queue", overrides))
    config = local_config(
        "ci-queue", prefix="kzt-rot", offline=True, free_ports=True, secrets=secrets, overrides=overrides
    )
    model = build_environment(parse_settings("ci-queue", config))
    endpoints = endpoints_for(model, secrets, None)
    endpoints.settings_config = recordable_config(config)
    save_state(endpoints)
    return endpoints, config


def names(found: list[Any]) -> set[str]:
    return {spec.name for spec, _refs in found}


def test_the_recorded_config_holds_no_secret_and_survives_the_state_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoints, config = started(tmp_path, monkeypatch, MONITORING_ON)
    text = state_file("kzt-rot").read_text(encoding="utf-8")
    recorded = json.loads(text)["settings_config"]
    assert not set(recorded) & set(BY_KEY), "secret keys are kept in `secrets` only"
    for value in endpoints.secrets.values():
        assert json.dumps(value) not in json.dumps(recorded)
    assert recorded["monitoring"] == {"enabled": True}
    assert recorded["n8n"]["hostPort"] == config["n8n"]["hostPort"], "the ports it was started on, not new ones"
    assert load_state("kzt-rot") == endpoints
    assert "settings_config" not in endpoints.public(), "`kaizenity status` shows endpoints, not the whole config"
    # the settings rebuilt from the record are the ones the environment was started with
    again = recorded_settings("ci-queue", recorded, endpoints.secrets, prefix="kzt-rot")
    assert again == parse_settings("ci-queue", config)


def test_rotation_recreates_the_containers_an_override_added(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    endpoints, _ = started(tmp_path, monkeypatch, MONITORING_ON)
    redis_carriers = carriers(model_of(endpoints), "redisPassword")
    assert names(redis_carriers) == {"redis", "n8n", "n8n-worker-1", "n8n-worker-2", *EXPORTERS}
    assert set(endpoints.containers) >= EXPORTERS, "each has a container rotate_local would recreate"
    assert redis_carriers[0][0].name == "redis", "Redis first: start order"
    variables = {spec.name: [name for name, _ in refs] for spec, refs in redis_carriers}
    assert variables["redis-exporter"] == ["REDIS_PASSWORD"]
    assert variables["n8n-worker-2"] == ["QUEUE_BULL_REDIS_PASSWORD"]
    assert names(carriers(model_of(endpoints), "monitoringDatabasePassword")) == {
        "postgres-exporter",
        "health-exporter",
    }
    # The defect: the stack file alone (what rotation used to read, and still reads for an older state file)
    endpoints.settings_config = {}
    assert not names(carriers(model_of(endpoints), "redisPassword")) & EXPORTERS
    assert carriers(model_of(endpoints), "monitoringDatabasePassword") == []


def test_the_recorded_settings_win_over_a_later_edit_of_the_stack_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stack file changed after `up` (here: one worker instead of 2, not yet applied) must not change which
    running containers a rotation recreates."""
    endpoints, _ = started(tmp_path, monkeypatch)
    edited = dict(endpoints.settings_config)
    monkeypatch.setattr(
        "infra.local_overrides.load_stack_config",
        lambda _stack: type("Loaded", (), {"values": {**edited, "n8n": {**edited["n8n"], "workers": 1}}})(),
    )
    assert "n8n-worker-2" in names(carriers(model_of(endpoints), "redisPassword"))
    endpoints.settings_config = {}
    assert "n8n-worker-2" not in names(carriers(model_of(endpoints), "redisPassword"))


def test_a_rotated_redis_password_is_recorded_in_the_redis_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    endpoints, _ = started(tmp_path, monkeypatch)
    assert endpoints.redis_url
    port = endpoints.redis_url.rsplit(":", 1)[1]
    _record(endpoints, "redisPassword", "New-redis-password-0123")
    assert endpoints.redis_url == f"redis://:New-redis-password-0123@127.0.0.1:{port}"
    assert endpoints.secrets["redisPassword"] == "New-redis-password-0123"


def test_rotate_cli_takes_the_environments_prefix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--prefix` reaches the local rotation (an environment not named after its stack, e.g. the pytest fixture's)."""
    monkeypatch.setenv("KAIZENITY_STATE_DIR", str(tmp_path))
    result = CliRunner().invoke(rotate, ["redisPassword", "--stack", "ci-queue", "--prefix", "kzt-none"])
    assert result.exit_code == 1
    assert "no local environment kzt-none is recorded" in result.output
    with pytest.raises(RotationError, match="no local environment kzt-none"):
        rotate_local("ci-queue", "redisPassword", prefix="kzt-none")


def test_a_rotation_after_scaling_up_reaches_the_added_workers_and_keeps_the_overrides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`kaizenity scale` records the scaled settings (infra.scaling.scaled_config) where rotation reads them."""
    from infra.scaling import scaled_config

    endpoints, _config = started(tmp_path, monkeypatch, MONITORING_ON)
    endpoints.settings_config = scaled_config(
        "ci-queue", "kzt-rot", recorded=endpoints.settings_config, workers=3, concurrency=4
    )
    save_state(endpoints)
    reloaded = load_state("kzt-rot")
    assert reloaded is not None
    rotated = names(carriers(model_of(reloaded), "redisPassword"))
    assert {"n8n-worker-1", "n8n-worker-2", "n8n-worker-3"} <= rotated
    assert rotated >= EXPORTERS, "the start-time override (monitoring on) is kept through the scaling"
    assert not set(reloaded.settings_config) & set(BY_KEY), "still no secret in the record"
    workers = [s for s in model_of(reloaded).services if s.kind == "n8n-worker"]
    assert {s.command for s in workers} == {("worker", "--concurrency=4")}


def test_scaling_without_a_record_starts_from_the_stack_file() -> None:
    from infra.scaling import scaled_config

    config = scaled_config("ci-queue", "kzt-x", workers=1)
    assert config["n8n"]["workers"] == 1
    assert config["namePrefix"] == "kzt-x"
    assert not set(config) & set(BY_KEY)
