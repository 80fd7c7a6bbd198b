"""The health exporter over real HTTP: /metrics runs every probe, /probe?target= one, output parses as Prometheus
text (prometheus_client's parser), secrets redacted, unknown targets a 400 that names the known probes."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from healthchecks.context import ProbeContext
from healthchecks.exporter import make_server, parse_listen
from healthchecks.plan import Plan, Planned
from healthchecks.redaction import Redactor
from healthchecks.result import ProbeResult, Status

SECRET = "s3cret-token-value"


def _ok(_target: object, _ctx: ProbeContext) -> ProbeResult:
    return ProbeResult("database", Status.OK, "fine")


def _broken(_target: object, _ctx: ProbeContext) -> ProbeResult:
    return ProbeResult("telegram", Status.CRITICAL, f"401 for token {SECRET}", "rotate the token")


@pytest.fixture
def base_url() -> Iterator[str]:
    redactor = Redactor()
    redactor.add(SECRET)
    plan = Plan((Planned("database", _ok, None), Planned("telegram", _broken, None)), (), redactor)
    server = make_server(plan, ("127.0.0.1", 0))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _success(text: str) -> dict[str, float]:
    return {
        sample.labels["probe"]: sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "probe_success"
        for sample in family.samples
    }


def test_metrics_runs_every_probe(base_url: str) -> None:
    reply = httpx.get(f"{base_url}/metrics")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert _success(reply.text) == {"database": 1.0, "telegram": 0.0}
    assert SECRET not in reply.text


def test_probe_target_runs_one(base_url: str) -> None:
    reply = httpx.get(f"{base_url}/probe", params={"target": "telegram"})
    assert reply.status_code == 200
    assert _success(reply.text) == {"telegram": 0.0}


def test_unknown_target_and_path(base_url: str) -> None:
    reply = httpx.get(f"{base_url}/probe", params={"target": "nope"})
    assert reply.status_code == 400
    assert "database, telegram" in reply.text
    assert httpx.get(f"{base_url}/other").status_code == 404


def test_parse_listen() -> None:
    assert parse_listen(":9840") == ("0.0.0.0", 9840)
    assert parse_listen("127.0.0.1:1") == ("127.0.0.1", 1)
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_listen("9840x")
