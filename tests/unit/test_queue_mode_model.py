"""Queue mode in the model: the ci-queue stack is prod's shape, stop grace outlasts n8n's graceful shutdown,
webhook processors sit behind the gateway, rolling plans touch one worker at a time, probes are planned."""

from __future__ import annotations

from typing import Any

import pytest

from healthchecks.config import build_plan
from healthchecks.targets import settings_from_stack
from infra.environment import build_environment
from infra.model import EnvironmentModel
from infra.scaling import plan_rolling
from infra.services.gateway import render_caddyfile
from infra.settings_validation import parse_settings
from tests.unit.pulumi_harness import stack_config


def model_for(stack: str, **overrides: Any) -> EnvironmentModel:
    return build_environment(parse_settings(stack, stack_config(stack, overrides)))


def test_ci_queue_stack_has_prods_shape_with_offline_images_and_loopback_ports() -> None:
    ci_queue, prod = model_for("ci-queue"), model_for("prod")
    kinds = [s.kind for s in ci_queue.services]
    # The backup sidecar (on in prod) is left out of ci-queue: test_backup_restore.py brings it up on its own.
    assert kinds == [s.kind for s in prod.services if s.kind != "backup"]
    assert all(s.image.startswith("kaizenity-local/") for s in ci_queue.services)
    for service in ci_queue.services:
        assert all(p.host_ip == "127.0.0.1" for p in service.ports), service.name
    assert [p.container_port for p in ci_queue.service("redis").ports] == [6379]
    assert prod.service("redis").ports == ()  # prod never publishes Redis


@pytest.mark.parametrize("stack", ["ci-queue", "prod", "staging"])
def test_stop_grace_outlasts_n8ns_graceful_shutdown(stack: str) -> None:
    model = model_for(stack)
    for service in model.services:
        if service.kind.startswith("n8n"):
            graceful = int(str(service.env_dict()["N8N_GRACEFUL_SHUTDOWN_TIMEOUT"]))
            assert service.stop_grace_s > graceful > 10, service.name  # 10 s: Docker's default stop timeout


def test_workers_start_one_after_another_and_main_exposes_queue_metrics() -> None:
    model = model_for("prod", n8n={**stack_config("prod")["n8n"], "workers": 3})
    assert model.service("n8n-worker-2").depends_on[-1] == "n8n-worker-1"
    assert model.service("n8n-worker-3").depends_on[-1] == "n8n-worker-2"
    assert model.service("n8n").env_dict()["N8N_METRICS_INCLUDE_QUEUE_METRICS"] == "true"
    assert model.service("n8n-worker-1").healthcheck is not None
    assert "/healthz/readiness" in " ".join(model.service("n8n-worker-1").healthcheck.test)  # type: ignore[union-attr]


def test_redis_runs_append_only_and_never_evicts() -> None:
    command = " ".join(model_for("prod").service("redis").command or ())
    assert "--appendonly yes" in command
    assert "--maxmemory-policy noeviction" in command


def test_webhook_processors_take_production_webhooks_behind_the_gateway() -> None:
    n8n = {**stack_config("prod")["n8n"], "webhookProcessors": 2}
    settings = parse_settings("prod", stack_config("prod", {"n8n": n8n}))
    model = build_environment(settings)
    processors = [s for s in model.services if s.kind == "n8n-webhook"]
    assert [s.command for s in processors] == [("webhook",), ("webhook",)]
    caddyfile = render_caddyfile(settings)
    assert "reverse_proxy @webhooks n8n-webhook-1:5678 n8n-webhook-2:5678" in caddyfile
    # After the ambiguity refusal and the Telegram gate (issue 14), before the public list; on the raw target.
    assert caddyfile.index("@ambiguous") < caddyfile.index("@telegram_route") < caddyfile.index("@webhooks")
    assert caddyfile.index("@webhooks expression `{http.request.orig_uri}.startsWith('/webhook/')`") < (
        caddyfile.index("@public expression")
    )
    assert "n8n-webhook" not in render_caddyfile(parse_settings("prod", stack_config("prod")))


def test_rolling_plan_replaces_changed_workers_in_order_adds_and_removes() -> None:
    model = model_for("prod", n8n={**stack_config("prod")["n8n"], "workers": 3})
    workers = [s for s in model.services if s.kind == "n8n-worker"]
    old = ("worker", "--concurrency=5")
    plan = plan_rolling({"n8n-worker-2": old, "n8n-worker-1": old}, workers)
    assert plan.replace == ("n8n-worker-1", "n8n-worker-2")
    assert plan.add == ("n8n-worker-3",)
    same = {w.name: tuple(w.command or ()) for w in workers}
    assert plan_rolling(same, workers).empty
    shrink = plan_rolling({**same, "n8n-worker-4": workers[0].command or (), "n8n-worker-10": ()}, workers)
    assert shrink.remove == ("n8n-worker-10", "n8n-worker-4")


def test_redis_and_queue_probes_are_planned_from_a_redis_url() -> None:
    plan = build_plan({"redis": {"url": "redis://:pw-secret-123@127.0.0.1:6379/0"}, "queue": {"expected_workers": 2}})
    assert {p.name for p in plan.planned} == {"redis", "queue"}
    assert "pw-secret-123" not in plan.redactor("cannot reach redis://:pw-secret-123@127.0.0.1:6379/0")
    skipped = {n.probe for n in build_plan({}).not_configured}
    assert {"redis", "queue"} <= skipped


def test_local_state_gives_redis_url_and_the_expected_worker_count(tmp_path: Any) -> None:
    state = {
        "redis_url": "redis://:pw@127.0.0.1:1/0",
        "n8n_database_url": "postgresql://n8n:pw@127.0.0.1:2/n8n",
        "containers": {"n8n": "x", "n8n-worker-1": "a", "n8n-worker-2": "b"},
    }
    import json

    (tmp_path / "kaizenity-q-local.json").write_text(json.dumps(state))
    settings = settings_from_stack("q", {"KAIZENITY_STATE_DIR": str(tmp_path)})
    assert settings["redis"]["url"] == state["redis_url"]
    assert settings["queue"] == {"n8n_database_url": state["n8n_database_url"], "expected_workers": "2"}
