"""The monitoring part of the model: on in staging/prod, off in dev/ci, within its memory budget, secrets only by
reference, and configurations Prometheus' and Alertmanager's own tools accept (promtool on the host; amtool in
tests/integration/test_monitoring.py, Debian bookworm's alertmanager 0.25 predates bot_token_file)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.environment import build_environment
from infra.model import EnvironmentModel, SecretRef
from infra.services import monitoring
from infra.settings_validation import parse_settings
from tests.unit.pulumi_harness import stack_config

TOKEN = "123456:monitoring-bot-token-value"


def _model(stack: str, **section: Any) -> EnvironmentModel:
    config = {**stack_config(stack), "monitoringTelegramBotToken": TOKEN}
    if section:
        config["monitoring"] = {**config.get("monitoring", {}), **section}
    return build_environment(parse_settings(stack, config))


def _monitoring(model: EnvironmentModel) -> dict[str, Any]:
    return {s.name: s for s in model.services if s.kind in monitoring.PORTS}


@pytest.mark.parametrize(("stack", "enabled"), [("dev", False), ("ci", False), ("staging", True), ("prod", True)])
def test_on_in_staging_and_prod_off_in_dev_and_ci(stack: str, enabled: bool) -> None:
    services = _monitoring(_model(stack))
    expected = {"prometheus", "alertmanager", "postgres-exporter", "node-exporter", "health-exporter", "redis-exporter"}
    assert set(services) == (expected if enabled else set())


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_memory_budget_is_kept_and_a_small_share_of_the_platform(stack: str) -> None:
    model = _model(stack)
    settings = parse_settings(stack, stack_config(stack))
    ours = sum(s.memory_mb for s in _monitoring(model).values())
    platform = sum(s.memory_mb for s in model.services if s.kind not in monitoring.PORTS)
    assert ours == settings.monitoring.memory_mb
    assert ours / platform <= 0.15, f"monitoring takes {ours / platform:.0%} of {platform} MB"
    assert _monitoring(model)["prometheus"].memory_mb >= 96


def test_retention_flags_and_volumes() -> None:
    model = _model("prod")
    prometheus = model.service("prometheus")
    assert prometheus.command is not None
    assert "--storage.tsdb.retention.time=30d" in prometheus.command
    assert "--storage.tsdb.retention.size=8192MB" in prometheus.command
    assert {"prometheus-data", "alertmanager-data"} <= {v.name for v in model.volumes}
    node = model.service("node-exporter")
    assert {m.target for m in node.mounts} >= {"/volumes/pgdata", "/volumes/n8n-data"}
    assert all(m.read_only for m in node.mounts)


def test_telegram_token_only_by_reference() -> None:
    model = _model("prod", telegramChatId="-100123", webhookUrl="http://hook.example/x")
    alertmanager = model.service("alertmanager")
    assert alertmanager.env_dict()["TELEGRAM_BOT_TOKEN"] == SecretRef("monitoringTelegramBotToken")
    everything = repr(model)
    assert TOKEN not in everything
    config = yaml.safe_load(alertmanager.uploads[0].content)
    telegram = config["receivers"][0]["telegram_configs"][0]
    assert telegram["bot_token_file"] == monitoring.BOT_TOKEN_FILE
    assert telegram["chat_id"] == -100123
    assert config["receivers"][0]["webhook_configs"][0]["url"] == "http://hook.example/x"


def test_routing_groups_and_inhibits() -> None:
    config = yaml.safe_load(_model("prod", telegramChatId="-1").service("alertmanager").uploads[0].content)
    assert config["route"]["group_by"] == ["alertname", "stack"]
    sources = [rule["source_matchers"] for rule in config["inhibit_rules"]]
    assert ['alertname="N8nDown"'] in sources
    assert ['alertname="PostgresDown"'] in sources


def test_prometheus_scrapes_n8n_and_every_exporter() -> None:
    config = yaml.safe_load(_model("prod").service("prometheus").uploads[0].content)
    jobs = {job["job_name"]: job["static_configs"][0]["targets"][0] for job in config["scrape_configs"]}
    assert jobs == {
        "prometheus": "localhost:9090",
        "alertmanager": "alertmanager:9093",
        "n8n": "n8n:5678",
        "health": "health-exporter:9840",
        "postgres": "postgres-exporter:9187",
        "redis": "redis-exporter:9121",
        "node": "node-exporter:9100",
    }
    assert config["global"]["external_labels"] == {"stack": "prod"}


def test_promtool_accepts_the_rendered_prometheus_config(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed: run `make promtool` (Debian package prometheus)")
    path = tmp_path / "prometheus.yml"
    path.write_text(_model("prod").service("prometheus").uploads[0].content)
    done = subprocess.run(
        [promtool, "check", "config", "--syntax-only", str(path)], check=False, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_telegram_chat_without_the_bot_token_is_a_settings_problem() -> None:
    from infra.settings_problems import SettingsError

    config = {**stack_config("prod"), "monitoring": {"enabled": True, "telegramChatId": "-100123"}}
    config.pop("monitoringTelegramBotToken", None)
    with pytest.raises(SettingsError, match="monitoringTelegramBotToken"):
        parse_settings("prod", config)


def test_health_exporter_probes_the_queue_and_backups_without_secrets_in_the_model() -> None:
    exporter = _model("prod").service("health-exporter")
    env = exporter.env_dict()
    assert env["REDIS_PASSWORD"] == SecretRef("redisPassword")
    assert env["KAIZENITY_QUEUE_EXPECTED_WORKERS"] == "2"
    assert "KAIZENITY_BACKUPS_DATABASE_URL" in env
    assert exporter.entrypoint is not None
    assert "KAIZENITY_REDIS_URL=" in exporter.entrypoint[-1]
    assert "$REDIS_PASSWORD" in exporter.entrypoint[-1]
