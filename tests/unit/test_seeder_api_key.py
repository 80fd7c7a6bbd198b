"""The seeder's n8n API key exists only while a seeding runs (issue 14), against tests/fakes/n8n_login.py (n8n's
login, its limiter and the owner's API-key routes as n8n 2.8.4 answers them)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.local_endpoints import LocalEndpoints
from tests.fakes.n8n_login import N8nLoginFake
from workflows.deploy import OWNER_EMAIL, SEEDER_KEY_LABEL, SEEDER_KEY_TTL_S, N8nAccess, owner_api_key

PASSWORD = "Owner-password-1"


@pytest.fixture
def n8n() -> Iterator[N8nLoginFake]:
    with N8nLoginFake(OWNER_EMAIL, PASSWORD, limit=5, window_s=2) as fake:
        yield fake


def test_the_key_lives_only_inside_the_run_and_expires_within_the_hour(n8n: N8nLoginFake) -> None:
    with owner_api_key(N8nAccess(n8n.base_url, PASSWORD)) as raw:
        (key,) = n8n.api_keys.values()
        assert key["apiKey"] == raw
        assert str(key["label"]).startswith(f"{SEEDER_KEY_LABEL} ")
        expires_at = key["expiresAt"]
        assert isinstance(expires_at, int)
        assert time.time() < expires_at <= time.time() + SEEDER_KEY_TTL_S
    assert n8n.api_keys == {}
    assert n8n.logins == 1, "one login per run: n8n allows 5 a minute per e-mail"


def test_a_failing_seed_still_deletes_its_key(n8n: N8nLoginFake) -> None:
    with pytest.raises(RuntimeError, match="seeding failed"), owner_api_key(N8nAccess(n8n.base_url, PASSWORD)):
        raise RuntimeError("seeding failed half way")
    assert n8n.api_keys == {}


def test_a_key_that_cannot_be_deleted_does_not_hide_why_the_run_failed(n8n: N8nLoginFake) -> None:
    n8n.refuse_deletes = True
    access = N8nAccess(n8n.base_url, PASSWORD)
    with pytest.raises(RuntimeError, match="seeding failed") as caught, owner_api_key(access):
        raise RuntimeError("seeding failed half way")
    assert any("could not be deleted" in note and "next seeding deletes it" in note for note in caught.value.__notes__)


def test_keys_older_runs_left_are_deleted_and_other_keys_kept(n8n: N8nLoginFake) -> None:
    n8n.api_keys["old"] = {"id": "old", "label": "kaizenity-seeder 2025-01-01T00:00:00Z", "expiresAt": None}
    n8n.api_keys["crash"] = {"id": "crash", "label": "kaizenity-seeder 2026-12-06T01:00:00Z", "expiresAt": 1}
    n8n.api_keys["person"] = {"id": "person", "label": "my laptop script", "expiresAt": None}
    seen: list[str] = []
    with owner_api_key(N8nAccess(n8n.base_url, PASSWORD), progress=seen.append):
        assert {"old", "crash"}.isdisjoint(n8n.api_keys)
    assert set(n8n.api_keys) == {"person"}, "a key someone made in the editor is theirs"
    assert any("2 API key(s) left by earlier seeding runs" in line for line in seen)


def test_old_local_state_files_with_an_api_key_still_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import asdict

    from infra import local_state

    monkeypatch.setenv("KAIZENITY_STATE_DIR", str(tmp_path))
    endpoints = LocalEndpoints(
        "ci", "kzt-old", "https://g", "https://g/webhook/", None, None, None, "admin", "pw", None, "n"
    )
    old = {k: v for k, v in asdict(endpoints).items() if k != "n8n_reader_database_url"}
    old["n8n_api_key"] = "n8n-api-key-of-an-older-version"
    local_state.state_file("kzt-old").write_text(json.dumps(old), encoding="utf-8")
    loaded = local_state.load_state("kzt-old")
    assert loaded is not None
    assert loaded.n8n_reader_database_url is None
    assert "n8n-api-key-of-an-older-version" not in json.dumps(asdict(loaded))


def test_health_targets_read_n8n_as_the_reader_and_ignore_an_old_api_key(tmp_path: Path) -> None:
    """`kaizenity health --stack`: the n8n section gets the reader's URL (its password redacted in every finding); an
    old state file's API key is not used (health has no API path any more)."""
    from healthchecks.config import build_plan
    from healthchecks.n8n_state import SqlN8nState
    from healthchecks.targets import settings_from_stack

    reader = "postgresql://kaizenity_n8n_reader:reader-pw-secret-1@127.0.0.1:2/n8n"
    state = {"n8n_url": "http://127.0.0.1:1", "n8n_reader_database_url": reader, "n8n_api_key": "old-api-key-1"}
    (tmp_path / "kaizenity-r-local.json").write_text(json.dumps(state))
    settings = settings_from_stack("r", {"KAIZENITY_STATE_DIR": str(tmp_path)})
    assert settings["n8n"] == {"url": state["n8n_url"], "database_url": reader}
    plan = build_plan(settings)
    (n8n_target,) = [item.target for item in plan.planned if item.name == "n8n"]
    assert isinstance(n8n_target.state, SqlN8nState)
    assert "reader-pw-secret-1" not in plan.redactor(f"connection to {reader} failed")
    assert "n8n.state" not in {n.probe for n in plan.not_configured}
    assert "n8n.state" in {n.probe for n in build_plan({"n8n": {"url": "http://n8n"}}).not_configured}
