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


def _scrape_jobs(model: EnvironmentModel) -> dict[str, list[str]]:
    config = yaml.safe_load(model.service("prometheus").uploads[0].content)
    return {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}


def test_prometheus_scrapes_n8n_its_workers_the_gateway_and_every_exporter() -> None:
    config = yaml.safe_load(_model("prod").service("prometheus").uploads[0].content)
    assert _scrape_jobs(_model("prod")) == {
        "prometheus": ["localhost:9090"],
        "alertmanager": ["alertmanager:9093"],
        "n8n": ["n8n:5678"],
        "gateway": ["gateway:2020"],
        "n8n-worker": ["n8n-worker-1:5678", "n8n-worker-2:5678"],
        "health": ["health-exporter:9840"],
        "postgres": ["postgres-exporter:9187"],
        "redis": ["redis-exporter:9121"],
        "node": ["node-exporter:9100"],
    }
    assert config["global"]["external_labels"] == {"stack": "prod"}
    with_webhooks = _scrape_jobs(_model_with(prod_n8n={"webhookProcessors": 2}))
    assert with_webhooks["n8n-webhook"] == ["n8n-webhook-1:5678", "n8n-webhook-2:5678"]
    single = _scrape_jobs(_model_with(prod_n8n={"queueMode": False, "workers": None, "workerConcurrency": None}))
    assert "n8n-worker" not in single
    assert "n8n-webhook" not in single


@pytest.mark.parametrize(("interval_s", "probe_timeout"), [(30, "8"), (10, "8"), (5, "3.5"), (2, "1")])
def test_health_probes_end_inside_the_health_scrape_timeout(interval_s: int, probe_timeout: str) -> None:
    """A scrape of the health exporter waits for its slowest probe: a probe timeout past the scrape timeout made
    slow scrapes fail whole (up 0, every probe_success stale)."""
    model = _model("prod", scrapeIntervalS=interval_s, evaluationIntervalS=interval_s)
    assert model.service("health-exporter").env_dict()["KAIZENITY_HEALTH_TIMEOUT"] == probe_timeout
    config = yaml.safe_load(model.service("prometheus").uploads[0].content)
    (health,) = [job for job in config["scrape_configs"] if job["job_name"] == "health"]
    scrape_timeout = float(health["scrape_timeout"].removesuffix("s"))
    assert scrape_timeout <= interval_s
    assert float(probe_timeout) + 0.25 < scrape_timeout


def _model_with(*, prod_n8n: dict[str, Any]) -> EnvironmentModel:
    config = {**stack_config("prod"), "monitoringTelegramBotToken": TOKEN}
    config["n8n"] = {k: v for k, v in {**config.get("n8n", {}), **prod_n8n}.items() if v is not None}
    return build_environment(parse_settings("prod", config))


def test_every_scraped_n8n_process_serves_metrics() -> None:
    model = _model_with(prod_n8n={"webhookProcessors": 1})
    for name in ("n8n", "n8n-worker-1", "n8n-worker-2", "n8n-webhook-1"):
        assert model.service(name).env_dict()["N8N_METRICS"] == "true", name
    worker = model.service("n8n-worker-1").env_dict()
    assert worker["QUEUE_HEALTH_CHECK_ACTIVE"] == "true", "the worker server, where /metrics is mounted"
    assert worker["QUEUE_HEALTH_CHECK_PORT"] == "5678"


def test_the_gateway_serves_caddy_metrics_on_its_internal_listener_only() -> None:
    from infra.services import gateway

    caddyfile = _model("prod").service("gateway").uploads[0].content
    internal, public = caddyfile.split(f":{gateway.HEALTH_PORT} {{", 1)[1].split("\n}\n", 1)
    assert f"metrics {gateway.METRICS_PATH}" in internal
    assert "metrics" not in public, "never on the published sites"
    assert all(port.container_port != gateway.HEALTH_PORT for port in _model("prod").service("gateway").ports)


def test_the_exporters_use_monitorings_least_privilege_login() -> None:
    exporter = _model("prod").service("postgres-exporter").env_dict()
    assert exporter["DATA_SOURCE_USER"] == "kaizenity_monitor"
    assert exporter["DATA_SOURCE_PASS"] == SecretRef("monitoringDatabasePassword")
    assert SecretRef("postgresPassword") not in exporter.values(), "not the superuser"
    health = _model("prod").service("health-exporter").env_dict()
    assert str(health["KAIZENITY_DATABASE_URL"]).startswith("postgresql://kaizenity_monitor@postgres:5432/")
    assert health["KAIZENITY_BACKUPS_DATABASE_URL"] == health["KAIZENITY_DATABASE_URL"]
    assert health["PGPASSWORD"] == SecretRef("monitoringDatabasePassword")
    assert SecretRef("postgresPassword") not in health.values(), "the health exporter neither"
    settings = parse_settings("prod", {**stack_config("prod"), "monitoringTelegramBotToken": TOKEN})
    assert monitoring.database_logins(settings) == {"kaizenity_monitor": "monitoringDatabasePassword"}
    dev = parse_settings("dev", stack_config("dev"))
    assert monitoring.database_logins(dev) == {}, "no login where monitoring is off"


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
