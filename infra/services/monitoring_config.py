"""Prometheus' and Alertmanager's configuration files, rendered from the settings.

Written as data and dumped as YAML (not text templates) so a chat id or URL can never break the syntax. The
Telegram message itself is a Go template (monitoring/telegram-message.tmpl) that Alertmanager renders.

Routing (one outage pages once):
- alerts are grouped per (alertname, stack): twenty failing probes of one kind are one message;
- critical alerts page on Telegram (and reach the webhook); warnings go to the webhook, or Telegram without one;
- inhibitions: N8nDown silences what n8n being down causes (inbound backlog, queue, heartbeat, executions);
  GatewayDown silences the inbound backlog;
  PostgresDown silences the same plus n8n itself; a critical alert silences the warning of the same component.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from infra.settings import Settings

RULES_GLOB = "/etc/kaizenity-rules-*.yml"
DOWNSTREAM_OF_N8N = "inbound|queue|heartbeat|executions"


HEALTH_PROBE_TIMEOUT_S = 8  # the health exporter's per-probe timeout where the scrape allows it (SaaS APIs: slow)
HEALTH_SCRAPE_MARGIN_S = 1.5  # the runner's grace (0.25 s), rendering and HTTP, on a loaded host


def health_scrape_timeout_s(settings: Settings) -> int:
    """Prometheus' timeout for scraping the health exporter: up to 15 s, never above the scrape interval
    (Prometheus refuses a timeout longer than the interval)."""
    return min(settings.monitoring.scrape_interval_s, 15)


def health_probe_timeout_s(settings: Settings) -> float:
    """The health exporter's per-probe timeout (KAIZENITY_HEALTH_TIMEOUT): a scrape runs every probe in parallel
    and answers after the slowest (healthchecks/runner.py: timeout + 0.25 s), so the probes must end inside the
    scrape timeout. With a probe timeout above it (8 s probes, 5 s scrapes in the integration test), one slow probe
    on a loaded host fails the whole scrape: `up{job="health"}` 0 and every `probe_success` series stale, healthy
    probes included."""
    return max(1.0, min(HEALTH_PROBE_TIMEOUT_S, health_scrape_timeout_s(settings) - HEALTH_SCRAPE_MARGIN_S))


def prometheus_config(settings: Settings, jobs: Mapping[str, Sequence[str]]) -> str:
    """prometheus.yml: one scrape job per entry of `jobs` (job name -> its host:port targets, path /metrics); alerts
    go to the `alertmanager` job's address."""
    m = settings.monitoring
    scrape = [
        {
            "job_name": job,
            "metrics_path": "/metrics",
            "static_configs": [{"targets": list(targets)}],
            # the health probes call SaaS APIs with their own timeouts: give the scrape room (health_probe_timeout_s)
            **({"scrape_timeout": f"{health_scrape_timeout_s(settings)}s"} if job == "health" else {}),
        }
        for job, targets in jobs.items()
    ]
    config: dict[str, Any] = {
        "global": {
            "scrape_interval": f"{m.scrape_interval_s}s",
            "scrape_timeout": f"{min(m.scrape_interval_s, 10)}s",
            "evaluation_interval": f"{m.evaluation_interval_s}s",
            "external_labels": {"stack": settings.stack},
        },
        "rule_files": [RULES_GLOB],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": list(jobs["alertmanager"])}]}]},
        "scrape_configs": scrape,
    }
    return yaml.safe_dump(config, sort_keys=False)


def alertmanager_config(settings: Settings, telegram_template: str, bot_token_file: str) -> str:
    """alertmanager.yml: Telegram and webhook receivers, grouping and inhibitions."""
    m = settings.monitoring
    telegram = (
        [
            {
                "api_url": m.telegram_api_url,
                "bot_token_file": bot_token_file,
                "chat_id": int(m.telegram_chat_id) if m.telegram_chat_id.lstrip("-").isdigit() else m.telegram_chat_id,
                "parse_mode": "HTML",
                "send_resolved": True,
                "message": telegram_template.replace("RUNBOOK_BASE", m.runbook_base_url.rstrip("/")),
            }
        ]
        if m.telegram_chat_id
        else []
    )
    webhook = [{"url": m.webhook_url, "send_resolved": True}] if m.webhook_url else []
    page: dict[str, Any] = {"name": "page"}
    if telegram:
        page["telegram_configs"] = telegram
    if webhook:
        page["webhook_configs"] = webhook
    ticket: dict[str, Any] = {"name": "ticket"}
    if webhook or telegram:  # copies: yaml would write shared lists as anchors, harder to read
        ticket["webhook_configs" if webhook else "telegram_configs"] = [dict(item) for item in webhook or telegram]
    config: dict[str, Any] = {
        "route": {
            "receiver": "page",
            "group_by": ["alertname", "stack"],
            "group_wait": f"{m.group_wait_s}s",
            "group_interval": f"{m.group_interval_s}s",
            "repeat_interval": m.repeat_interval,
            "routes": [
                {"matchers": ['severity="critical"'], "receiver": "page"},
                {"matchers": ['severity="warning"'], "receiver": "ticket"},
            ],
        },
        "inhibit_rules": [
            {
                "source_matchers": ['alertname="N8nDown"'],
                "target_matchers": [f'component=~"{DOWNSTREAM_OF_N8N}"'],
                "equal": ["stack"],
            },
            {  # Telegram cannot reach the webhook while the gateway is down: the same outage
                "source_matchers": ['alertname="GatewayDown"'],
                "target_matchers": ['component="inbound"'],
                "equal": ["stack"],
            },
            {
                "source_matchers": ['alertname="PostgresDown"'],
                "target_matchers": [f'component=~"n8n|{DOWNSTREAM_OF_N8N}|backups"'],
                "equal": ["stack"],
            },
            {
                "source_matchers": ['severity="critical"'],
                "target_matchers": ['severity="warning"'],
                "equal": ["stack", "component"],
            },
        ],
        "receivers": [page, ticket],
    }
    return yaml.safe_dump(config, sort_keys=False, allow_unicode=True, width=200)
