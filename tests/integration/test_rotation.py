"""Rotating each rotatable secret of a real environment keeps n8n and the workflows working, with nothing lost.

Own environment (the ci stack on the local engine, offline images): rotation changes its secrets, so it must not
be the session's shared `kaizenity_stack`. The in-place step is infra/rotation.py, the code the Pulumi resource
runs too (see also tests/integration/test_pulumi_engine.py for that resource driven over gRPC).
"""

from __future__ import annotations

import secrets
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import psycopg
import pytest

from infra import local_engine
from infra.local_endpoints import LocalEndpoints
from infra.local_seeding import seed_values_for
from infra.local_state import load_state
from infra.rotation import ROTATIONS, RotationError, change_owner_password, rotation_for
from infra.rotation_local import rotate_local
from workflows.deploy import OWNER_EMAIL
from workflows.n8n_api import N8nApiError, N8nSession

pytestmark = pytest.mark.integration
ROTATED = [
    "n8nDbPassword",
    "postgresPassword",
    "appDatabasePassword",
    "n8nReaderDbPassword",
    "gatewayEditorPassword",
    "n8nOwnerPassword",
]


@pytest.fixture(scope="module")
def environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalEndpoints]:
    state = tmp_path_factory.mktemp("state")
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("KAIZENITY_STATE_DIR", str(state))
    prefix = f"kzt-issue10-rot-{secrets.token_hex(3)}"
    try:
        _, endpoints = local_engine.start("ci", prefix=prefix, offline=True, free_ports=True, record=True)
        yield endpoints
    finally:
        local_engine.stop(prefix)
        monkeypatch.undo()


def wait_until(condition: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            value = condition()
        except (httpx.HTTPError, psycopg.Error):
            value = None
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")


def rows(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        return conn.execute(sql, params).fetchall()


def inbound_message_is_stored(env: LocalEndpoints, update_id: int) -> None:
    """A Telegram update through the gateway lands as a row (n8n webhook + the app login's DB credential)."""
    assert env.ca_file
    assert env.database_url
    url = f"{env.webhook_base_url}telegram/{env.secrets['telegramWebhookPathToken']}"
    update = {"update_id": update_id, "message": {"message_id": 1, "date": 0, "chat": {"id": 7, "type": "private"}}}
    headers = {"X-Telegram-Bot-Api-Secret-Token": env.secrets["telegramWebhookSecret"]}
    with httpx.Client(verify=ssl.create_default_context(cafile=env.ca_file), timeout=15) as client:
        # readiness is not "webhooks registered" (REFERENCE.md): retry until the webhook answers 200
        wait_until(lambda: client.post(url, json=update, headers=headers).status_code == 200, 60, "the webhook")
    count = "SELECT count(*) FROM ops.messages WHERE channel = 'telegram' AND idempotency_key = %s"
    database_url = env.database_url
    wait_until(lambda: rows(database_url, count, str(update_id))[0][0] == 1, 30, f"message {update_id}")


def owner_login_works(env: LocalEndpoints, password: str) -> bool:
    """True if n8n accepts the owner password, False if it refuses it (401); anything else fails the test (a 429
    past the login's bounded wait must not pass for "refused")."""
    assert env.n8n_url
    session = N8nSession(env.n8n_url)
    try:
        session.login(OWNER_EMAIL, password)
        return True
    except N8nApiError as exc:
        if exc.status == 401:
            return False
        raise
    finally:
        session.close()


def editor_status(env: LocalEndpoints, password: str) -> int:
    assert env.ca_file
    with httpx.Client(verify=ssl.create_default_context(cafile=env.ca_file), timeout=15) as client:
        return client.get(f"{env.gateway_url}/rest/settings", auth=(env.editor_user, password)).status_code


def test_every_rotatable_secret_rotates_and_the_environment_keeps_working(environment: LocalEndpoints) -> None:
    env = environment
    assert env.database_url
    assert env.n8n_url
    inbound_message_is_stored(env, 810000)
    workflows = "SELECT count(*) FROM workflow_entity WHERE active"
    assert env.n8n_database_url
    active_before = rows(env.n8n_database_url, workflows)[0][0]
    for number, key in enumerate(ROTATED, start=1):
        old = env.secrets[key]
        started = time.monotonic()
        env = rotate_local("ci", key, prefix=env.prefix)
        elapsed = time.monotonic() - started
        assert env.secrets[key] != old
        assert load_state(env.prefix).secrets[key] == env.secrets[key], "recorded in the state"  # type: ignore[union-attr]
        # n8n is ready and a seed workflow still runs end to end; earlier rows are all still there
        inbound_message_is_stored(env, 810000 + number)
        assert env.database_url
        assert env.n8n_database_url
        stored = rows(env.database_url, "SELECT count(*) FROM ops.messages WHERE idempotency_key LIKE '8100%%'")
        assert stored[0][0] == number + 1, f"after {key}: nothing lost"
        assert rows(env.n8n_database_url, workflows)[0][0] == active_before
        print(f"rotated {key} in {elapsed:.1f} s")
        if key == "n8nReaderDbPassword":  # health's read-only login: the recorded URL carries the new password
            assert env.n8n_reader_database_url
            assert env.secrets[key] in unquote(env.n8n_reader_database_url)
            published = 'SELECT count(*) FROM workflow_entity WHERE "activeVersionId" IS NOT NULL'
            assert rows(env.n8n_reader_database_url, published)[0][0] == active_before
        if key in {"postgresPassword", "n8nDbPassword", "appDatabasePassword", "n8nReaderDbPassword"}:
            user = {
                "postgresPassword": "postgres",
                "n8nDbPassword": "n8n",
                "appDatabasePassword": "kaizenity_n8n",
                "n8nReaderDbPassword": "kaizenity_n8n_reader",
            }
            host_and_database = env.database_url.split("@", 1)[1]
            with pytest.raises(psycopg.OperationalError):
                psycopg.connect(f"postgresql://{user[key]}:{old}@{host_and_database}", connect_timeout=5).close()
        if key == "gatewayEditorPassword":
            assert editor_status(env, old) == 401
            assert editor_status(env, env.secrets[key]) == 200
        if key == "n8nOwnerPassword":
            assert not owner_login_works(env, old)
            assert owner_login_works(env, env.secrets[key])


def test_secrets_that_cannot_be_rotated_say_why() -> None:
    for key in ("n8nEncryptionKey", "telegramWebhookSecret"):
        with pytest.raises(RotationError, match=f"{key} cannot be rotated by kaizenity"):
            rotation_for(key)
    assert set(ROTATED) <= set(ROTATIONS)


def test_rotating_a_local_environment_that_does_not_exist_fails_clearly(tmp_path: Path) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KAIZENITY_STATE_DIR", str(tmp_path))
        with pytest.raises(RotationError, match="no local environment kzt-none is recorded"):
            rotate_local("ci", "postgresPassword", prefix="kzt-none")


def test_owner_password_rotation_waits_out_n8ns_login_rate_limit(environment: LocalEndpoints) -> None:
    """The real n8n 2.8.4 behind tests/fakes/n8n_login.py: five failed logins use up the per-e-mail window, the sixth
    attempt is a 429 with Retry-After (at most the one-minute window), and the rotation waits it out and succeeds.
    Runs before the gRPC test below, which changes the owner password in n8n but not in the recorded state."""
    env = load_state(environment.prefix)
    assert env is not None
    assert env.n8n_url
    current = env.secrets["n8nOwnerPassword"]
    with httpx.Client(base_url=env.n8n_url, timeout=15, headers={"browser-id": "kaizenity-test"}) as client:
        body = {"emailOrLdapLoginId": OWNER_EMAIL, "password": "Wrong-password-0"}
        statuses = [client.post("/rest/login", json=body).status_code for _ in range(6)]
        assert 429 in statuses, f"n8n did not rate-limit six failed logins: {statuses}"
        limited = client.post("/rest/login", json={**body, "password": current})
    assert limited.status_code == 429, "the right password is refused too while the window is used up"
    retry_after = int(limited.headers["retry-after"])
    assert 0 < retry_after <= 60
    rotated = f"Rotated-{secrets.token_hex(6)}8"
    started = time.monotonic()
    change_owner_password(env.n8n_url, current, rotated)
    waited = time.monotonic() - started
    assert waited >= retry_after - 1, f"changed after {waited:.0f} s: it did not wait for the window"
    assert owner_login_works(env, rotated)
    change_owner_password(env.n8n_url, rotated, current)  # the state keeps the environment's recorded password
    print(f"n8n asked to retry after {retry_after} s; the rotation succeeded after {waited:.0f} s")


def test_seed_provider_over_grpc_keeps_no_api_key_and_rotates_the_owner_password(
    environment: LocalEndpoints,
) -> None:
    """The seed-workflows provider as the engine runs it (tests/unit/engine_harness.py), against the real n8n:
    Create returns no API key (issue 14: the run deletes its own) and n8n holds none afterwards; the outputs it
    returns in plain text (the provider does not accept secrets) are kept out of the state file only by
    `additional_secret_outputs` (defect 3); Update with a new owner password sets it in n8n with the old one from
    `olds` (defect 5, Pulumi path)."""
    from infra.workflows_resource import SECRET_OUTPUTS, SeedWorkflowsProvider, _values_hash, definition_hashes
    from tests.unit.engine_harness import dynamic_provider, load_project, secret_in_state, with_provider

    env = load_state(environment.prefix)
    assert env is not None
    assert env.n8n_url
    assert env.database_url
    values = seed_values_for(env, "kaizenity", {})
    props = {
        "n8nUrl": env.n8n_url,
        "databaseUrl": env.database_url,
        "ownerPassword": env.secrets["n8nOwnerPassword"],
        "values": values,
        "valuesHash": _values_hash(values),
        "definitions": definition_hashes(),
        "databaseInstance": env.containers["postgres"],
        "n8nDatabase": "n8n",
        "readerPassword": env.secrets["n8nReaderDbPassword"],
    }
    secret_inputs = {"databaseUrl", "ownerPassword", "values", "valuesHash", "readerPassword", "__provider"}
    new_owner = f"Rotated-{secrets.token_hex(6)}9"
    with dynamic_provider(load_project()) as plugin:
        plugin.configure()
        checked = plugin.check({}, with_provider(SeedWorkflowsProvider(), props))
        _, outs = plugin.create(checked)
        assert "apiKey" not in outs, "no n8n API key is kept in the state"
        assert env.n8n_database_url
        with psycopg.connect(env.n8n_database_url, autocommit=True) as conn:
            left = conn.execute("SELECT label FROM user_api_keys WHERE label LIKE 'kaizenity-seeder%'").fetchall()
        assert left == [], f"the seeder's API key outlived its run: {left}"
        assert outs["credentialFingerprints"], "the provider returns the fingerprints (plain: it accepts no secrets)"
        assert {"credentialFingerprints", "readerPassword"} <= secret_in_state(outs, secret_inputs, SECRET_OUTPUTS)
        without = secret_in_state(outs, secret_inputs, [])
        assert "credentialFingerprints" not in without, "without the option: plain text in state"
        assert outs["systemIdentifier"]
        news = plugin.check(outs, {**checked, "ownerPassword": new_owner})
        assert plugin.diff("seed-workflows", outs, news).changes == 2, "a rotated owner password is a change"
        plugin.update("seed-workflows", outs, news)
    assert owner_login_works(env, new_owner)
    assert not owner_login_works(env, env.secrets["n8nOwnerPassword"])
