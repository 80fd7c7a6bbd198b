"""The alert rules: promtool accepts them, their unit tests pass, and every alert links a runbook entry that exists.

promtool comes from Debian's prometheus package (`make promtool`); without it the promtool tests skip with that
hint rather than pass silently.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
RULES = sorted((REPO / "monitoring" / "rules").glob("*.yml"))
RULE_TESTS = sorted((REPO / "monitoring" / "tests").glob("*.yml"))
RUNBOOK = REPO / "docs" / "runbook.md"
SEVERITIES = {"critical", "warning"}


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool not installed: run `make promtool` (Debian package prometheus)")
    return path


def _alerts() -> list[dict[str, Any]]:
    return [rule for path in RULES for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]]


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes."""
    headings = re.findall(r"^#+\s+(.+?)\s*$", markdown, flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def test_promtool_check_rules() -> None:
    done = subprocess.run(
        [_promtool(), "check", "rules", *map(str, RULES)], check=False, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_rule_unit_tests() -> None:
    assert RULE_TESTS, "no promtool tests in monitoring/tests"
    done = subprocess.run(
        [_promtool(), "test", "rules", *map(str, RULE_TESTS)], check=False, capture_output=True, text=True, cwd=REPO
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_severity_component_and_runbook_entry() -> None:
    anchors = _anchors(RUNBOOK.read_text(encoding="utf-8"))
    alerts = _alerts()
    assert len(alerts) >= 15
    for alert in alerts:
        name = alert["alert"]
        assert alert["labels"]["severity"] in SEVERITIES, name
        assert alert["labels"].get("component"), name
        url = alert["annotations"]["runbook_url"]
        assert url.startswith("docs/runbook.md#"), f"{name}: {url}"
        assert url.split("#", 1)[1] in anchors, f"{name}: no heading for {url} in docs/runbook.md"


def test_every_alert_is_unit_tested() -> None:
    tested = {
        case["alertname"]
        for path in RULE_TESTS
        for test in yaml.safe_load(path.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert {alert["alert"] for alert in _alerts()} <= tested
