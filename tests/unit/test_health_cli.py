"""`kaizenity health` through click's CliRunner: exit codes, --only/--skip, formats, settings sources."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from healthchecks.cli import health, use_color
from kaizenity.cli import main
from tests.fakes.server import Fault
from tests.fakes.slack import SlackFake
from tests.fakes.telegram import TelegramFake
from tests.unit.health_support import SECRETS, SLACK_TOKEN, TELEGRAM_TOKEN, WEBHOOK_URL

ALL_SETTINGS = (
    "KAIZENITY_DATABASE_URL",
    "KAIZENITY_GATEWAY_URL",
    "CODA_API_TOKEN",
    "CODA_DOC_ID",
    "CODA_API_BASE_URL",
    "TELEGRAM_BOT_TOKEN",
    "TELEGRAM_API_BASE_URL",
    "TELEGRAM_WEBHOOK_URL",
    "SLACK_BOT_TOKEN",
    "SLACK_API_BASE_URL",
    "WHATSAPP_TOKEN",
    "WHATSAPP_PHONE_NUMBER_ID",
    "WHATSAPP_API_BASE_URL",
    "KAIZENITY_STACK",
    "KAIZENITY_HEALTH_CONFIG",
    "NO_COLOR",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ALL_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KAIZENITY_HEALTH_TIMEOUT", "1")


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[SlackFake, TelegramFake]]:
    with SlackFake(SLACK_TOKEN) as slack, TelegramFake(TELEGRAM_TOKEN, WEBHOOK_URL) as telegram:
        monkeypatch.setenv("SLACK_BOT_TOKEN", SLACK_TOKEN)
        monkeypatch.setenv("SLACK_API_BASE_URL", slack.base_url)
        monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TELEGRAM_TOKEN)
        monkeypatch.setenv("TELEGRAM_API_BASE_URL", telegram.base_url)
        monkeypatch.setenv("TELEGRAM_WEBHOOK_URL", WEBHOOK_URL)
        yield slack, telegram


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, ["health", *args])


def test_all_ok_exits_0_and_lists_unconfigured_probes(fakes: tuple[SlackFake, TelegramFake]) -> None:
    result = invoke("--format", "nagios")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("OK: 2 ok (telegram, slack)")
    assert "[SKIPPED] database: not configured, set KAIZENITY_DATABASE_URL" in result.output
    assert "[SKIPPED] coda: not configured, set CODA_API_TOKEN / coda.token and CODA_DOC_ID" in result.output
    assert "[SKIPPED] whatsapp: not configured, set WHATSAPP_TOKEN" in result.output


@pytest.mark.parametrize(
    ("fault", "code"), [(Fault.RATE_LIMITED, 1), (Fault.UNAUTHORIZED, 2), (Fault.WRONG_CONTENT_TYPE, 3)]
)
def test_exit_code_follows_nagios(fakes: tuple[SlackFake, TelegramFake], fault: Fault, code: int) -> None:
    fakes[1].fault = fault
    result = invoke("--format", "json")
    assert result.exit_code == code, result.output
    assert json.loads(result.output)["exit_code"] == code


def test_critical_outranks_unknown_and_warning(fakes: tuple[SlackFake, TelegramFake]) -> None:
    fakes[0].fault, fakes[1].fault = Fault.MALFORMED_JSON, Fault.SERVER_ERROR
    assert invoke("--format", "nagios").exit_code == 2


def test_only_and_skip(fakes: tuple[SlackFake, TelegramFake]) -> None:
    fakes[1].fault = Fault.UNAUTHORIZED
    only = invoke("--only", "slack", "--format", "json")
    assert only.exit_code == 0
    assert [probe["probe"] for probe in json.loads(only.output)["probes"]] == ["slack"]
    skipped = invoke("--skip", "telegram,database", "--format", "json")
    document = json.loads(skipped.output)
    assert skipped.exit_code == 0
    assert [probe["probe"] for probe in document["probes"]] == ["slack"]
    assert "database" not in [item["probe"] for item in document["not_configured"]]


def test_unknown_probe_name_is_unknown_exit_and_names_the_choices() -> None:
    result = invoke("--only", "postgres")
    assert result.exit_code == 3
    assert "unknown probe(s) postgres: choose from database, n8n" in result.output


def test_nothing_configured_is_unknown() -> None:
    result = invoke("--format", "nagios")
    assert result.exit_code == 3
    assert result.output.startswith("UNKNOWN: no probe configured")


def test_every_format_renders_and_keeps_secrets_out(fakes: tuple[SlackFake, TelegramFake]) -> None:
    fakes[1].fault = Fault.UNAUTHORIZED
    for fmt in ("table", "json", "prometheus", "nagios"):
        result = invoke("--format", fmt)
        assert result.exit_code == 2
        assert not any(secret in result.output for secret in SECRETS)
        assert "\x1b[" not in result.output  # CliRunner is not a TTY: no colour


def test_yaml_config_and_environment_precedence(tmp_path: Path, fakes: tuple[SlackFake, TelegramFake]) -> None:
    config = tmp_path / "health.yaml"
    config.write_text(f"slack:\n  token: wrong-token-from-yaml\n  base_url: {fakes[0].base_url}\n")
    result = invoke("--config", str(config), "--only", "slack", "--format", "json")
    assert result.exit_code == 0, "the environment's SLACK_BOT_TOKEN wins over the file"


def test_bad_settings_are_listed_with_their_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAIZENITY_HEALTH_TIMEOUT", "soon")
    result = invoke()
    assert result.exit_code == 3
    assert "KAIZENITY_HEALTH_TIMEOUT / defaults.timeout: 'soon' is not a number" in result.output


def test_stack_reads_the_local_state_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = {"gateway_url": "https://127.0.0.1:1", "n8n_url": "http://127.0.0.1:1", "database_url": None}
    (tmp_path / "kz-dev.json").write_text(json.dumps(state))
    monkeypatch.setenv("KAIZENITY_STATE_DIR", str(tmp_path))
    result = invoke("--stack", "kz-dev", "--format", "json", "--timeout", "0.5")
    names = [probe["probe"] for probe in json.loads(result.output)["probes"]]
    assert names == ["n8n", "gateway"]
    assert result.exit_code == 2


def test_stack_without_state_or_pulumi_explains(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAIZENITY_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    result = invoke("--stack", "nope")
    assert result.exit_code == 3
    assert "--stack nope: no local environment" in result.output


def test_hung_dependency_costs_one_timeout(fakes: tuple[SlackFake, TelegramFake]) -> None:
    fakes[0].fault = fakes[1].fault = Fault.HANG
    started = time.monotonic()
    result = invoke("--timeout", "1", "--format", "nagios")
    assert result.exit_code == 2
    assert time.monotonic() - started < 1.5


def test_watch_reruns_until_interrupted(fakes: tuple[SlackFake, TelegramFake], monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps: list[float] = []

    def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr("healthchecks.cli.time.sleep", fake_sleep)
    result = CliRunner().invoke(health, ["--watch", "5", "--format", "nagios", "--only", "slack"])
    assert result.exit_code == 0
    assert result.output.count("OK: 1 ok (slack)") == 2
    assert sleeps == [5, 5]


def test_output_file_is_written(tmp_path: Path, fakes: tuple[SlackFake, TelegramFake]) -> None:
    target = tmp_path / "kaizenity.prom"
    result = invoke("--format", "prometheus", "--output", str(target))
    assert result.exit_code == 0
    assert "probe_success" in target.read_text()


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_tty_without_no_color() -> None:
    assert use_color(_Tty(), {}) is True
    assert use_color(_Tty(), {"NO_COLOR": "1"}) is False
    assert use_color(io.StringIO(), {}) is False


def test_help_starts_fast_without_heavy_imports() -> None:
    code = (
        "import sys, time; t=time.perf_counter(); from kaizenity.cli import main\n"
        "try:\n    main(['health', '--help'])\nexcept SystemExit: pass\n"
        "heavy = [m for m in ('httpx', 'psycopg', 'rich', 'yaml', 'pulumi', 'testcontainers') if m in sys.modules]\n"
        "print(heavy, time.perf_counter() - t, file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "--format [table|json|prometheus|nagios]" in done.stdout
    assert done.stderr.startswith("[]"), done.stderr
