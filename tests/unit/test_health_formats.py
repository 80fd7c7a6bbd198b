"""Output formats: Prometheus parses with prometheus_client, Nagios perfdata grammar, table colour rules."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from prometheus_client.parser import text_string_to_metric_families

from healthchecks.formats import render
from healthchecks.formats.nagios import perf_item
from healthchecks.plan import NotConfigured
from healthchecks.redaction import Redactor
from healthchecks.report import Report
from healthchecks.result import Check, Measurement, ProbeResult, Status, Unit

RESULTS = (
    ProbeResult(
        "gateway",
        Status.WARNING,
        'certificate expires in 12.0 days; quote " and | pipe',
        "Check ACME renewal.",
        (
            Measurement("cert_expiry", 1036800, Unit.SECONDS, 1814400, 604800, low_is_bad=True),
            Measurement("latency", 0.012, Unit.SECONDS, minimum=0),
        ),
        (Check("certificate", Status.WARNING, "certificate expires in 12.0 days"),),
        0.05,
    ),
    ProbeResult(
        "database",
        Status.OK,
        "SELECT 1 ok",
        measurements=(Measurement("connections_used_percent", 12.5, Unit.PERCENT, 80, 95, 0, 100),),
        duration_seconds=0.02,
    ),
)
REPORT = Report(
    RESULTS,
    (NotConfigured("slack", ("SLACK_BOT_TOKEN / slack.token",), "Slack bot token"),),
    datetime(2026, 1, 1, tzinfo=UTC),
    0.06,
)


def test_prometheus_output_parses_with_prometheus_client() -> None:
    text = render(REPORT, "prometheus", Redactor())
    families = {family.name: family for family in text_string_to_metric_families(text)}
    success = {sample.labels["probe"]: sample.value for sample in families["probe_success"].samples}
    assert success == {"gateway": 1.0, "database": 1.0}, "a WARNING is not an outage"
    status = {sample.labels["probe"]: sample.value for sample in families["kaizenity_probe_status"].samples}
    assert status == {"gateway": 1.0, "database": 0.0}
    configured = {sample.labels["probe"]: sample.value for sample in families["kaizenity_probe_configured"].samples}
    assert configured["slack"] == 0.0
    ratio = families["kaizenity_probe_connections_used_percent_ratio"].samples[0].value
    assert ratio == 0.125
    assert families["kaizenity_probe_cert_expiry_seconds"].samples[0].value == 1036800
    assert families["probe_duration_seconds"].type == "gauge"


def test_nagios_first_line_has_status_and_perfdata() -> None:
    text = render(REPORT, "nagios", Redactor())
    first = text.splitlines()[0]
    status, perfdata = first.split(" | ")
    assert status.startswith("WARNING: ")
    assert "'gateway_cert_expiry'=1036800s;1814400:;604800:" in perfdata
    assert "'database_connections_used_percent'=12.5%;80;95;0;100" in perfdata
    assert "[SKIPPED] slack: not configured, set SLACK_BOT_TOKEN" in text
    assert all("|" not in line for line in text.splitlines()[1:])


def test_perf_item_omits_trailing_empty_fields() -> None:
    assert perf_item("x", Measurement("x", 3)) == "'x'=3"


def test_json_document_shape() -> None:
    document = json.loads(render(REPORT, "json", Redactor()))
    assert document["status"] == "WARNING"
    assert document["exit_code"] == 1
    assert [probe["probe"] for probe in document["probes"]] == ["gateway", "database"]
    assert document["not_configured"][0]["missing"] == ["SLACK_BOT_TOKEN / slack.token"]


def test_table_has_colour_only_when_asked() -> None:
    plain = render(REPORT, "table", Redactor(), color=False)
    coloured = render(REPORT, "table", Redactor(), color=True)
    assert "\x1b[" not in plain
    assert "\x1b[" in coloured
    for text in (plain, coloured):
        assert "gateway" in text
        assert "Check ACME renewal." in text
        assert "SLACK_BOT_TOKEN" in text


def test_empty_report_is_unknown() -> None:
    empty = Report((), (), datetime(2026, 1, 1, tzinfo=UTC), 0.0)
    assert empty.exit_code == 3
    assert render(empty, "nagios", Redactor()).startswith("UNKNOWN: no probe configured")
