"""The Pulumi path, engine-faithful, against real components (see tests/unit/engine_harness.py for what is
reproduced from which engine/SDK source file).

- The schema-migrations dynamic provider, started as the engine starts it and driven over gRPC, creates the schema in
  a real PostgreSQL 17, and a *recreated* database (another initdb) is a diff and gets migrated by Update.
- A fresh virtualenv made the way Pulumi's pip toolchain makes it (sdk/python/toolchain/pip.go
  `InstallDependencies`: `python -m venv`, `pip install --upgrade pip setuptools wheel`, then
  `pip install -r requirements.txt` in the main directory) runs the program from the main directory.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from infra.migrations_resource import SchemaMigrationsProvider, migration_checksums
from infra.rotation_resource import DatabaseRolePasswordsProvider
from infra.services.postgres import dsn
from tests.unit.engine_harness import (
    DYNAMIC_TYPE,
    REPO_ROOT,
    dynamic_provider,
    load_project,
    run_program,
    with_provider,
)
from tests.unit.pulumi_harness import TEST_SECRETS, stack_config

pytestmark = pytest.mark.integration
POSTGRES_IMAGE = "kaizenity-local/postgres:17"


def _wait_for(url: str, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with psycopg.connect(url, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.fixture
def throwaway_postgres() -> Iterator[object]:
    """Start fresh PostgreSQL servers (each its own initdb) on loopback; all are removed at the end."""
    import docker

    client = docker.from_env()
    started: list[object] = []
    containers: dict[str, tuple[str, str]] = {}

    def start() -> str:
        password = secrets.token_urlsafe(24)
        container = client.containers.run(
            POSTGRES_IMAGE,
            name=f"kzt-issue10-pg-{uuid.uuid4().hex[:8]}",
            environment={"POSTGRES_PASSWORD": password, "POSTGRES_DB": "kaizenity"},
            ports={"5432/tcp": ("127.0.0.1", None)},
            labels={"kaizenity.test": "issue-10"},
            detach=True,
        )
        started.append(container)
        container.reload()
        port = int(container.attrs["NetworkSettings"]["Ports"]["5432/tcp"][0]["HostPort"])
        url = dsn("postgres", password, "127.0.0.1", port, "kaizenity")
        _wait_for(url)
        containers[url] = (container.name, password)
        return url

    start.containers = containers  # type: ignore[attr-defined]
    try:
        yield start
    finally:
        for container in started:
            container.remove(force=True, v=True)  # type: ignore[attr-defined]


def _tables(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname IN ('core', 'ops', 'client')").fetchone()
    return int(row[0]) if row else 0


def test_migrations_provider_creates_and_remigrates_a_recreated_database_over_grpc(throwaway_postgres: object) -> None:
    """Create on database A; then the same inputs pointed at a freshly initdb'd server B (as after a lost volume):
    Diff must say DIFF_SOME (system_identifier changed) and Update must migrate B."""
    start = throwaway_postgres
    url_a = start()  # type: ignore[operator]
    props = {"databaseUrl": url_a, "checksums": migration_checksums(), "databaseInstance": "container-1"}
    with dynamic_provider(load_project()) as plugin:
        plugin.configure()
        news = plugin.check({}, with_provider(SchemaMigrationsProvider(), props))
        id_, outs = plugin.create(news)
        assert id_ == "schema-migrations"
        assert outs["applied"] == sorted(migration_checksums())
        assert outs["systemIdentifier"], "the database's identity is recorded in state"
        assert _tables(url_a) > 5
        assert plugin.diff(id_, outs, news).changes == 1, "same database, same files: no change"

        url_b = start()  # type: ignore[operator]
        news_b = plugin.check(outs, {**news, "databaseUrl": url_b})
        assert plugin.diff(id_, outs, news_b).changes == 2, "a recreated database must be migrated"
        outs_b = plugin.update(id_, outs, news_b)
        assert outs_b["systemIdentifier"] not in (None, outs["systemIdentifier"])
        assert _tables(url_b) == _tables(url_a)
        plugin.delete(id_, outs_b)
        assert _tables(url_b) == _tables(url_a), "delete never drops the schema"


def _copy_project(target: Path) -> Path:
    """The checkout's tracked and new files (what a DevOps engineer clones), without .venv or caches."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    for name in listed:
        source = REPO_ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def test_a_pip_toolchain_virtualenv_from_requirements_txt_runs_the_program(tmp_path: Path) -> None:
    """Defect 2: with requirements.txt only (no `make setup`, no manual `pip install -e .`)."""
    project = load_project(_copy_project(tmp_path / "checkout"))
    venv = project.root / project.runtime_options["virtualenv"]  # toolchain/pip.go: relative to the project root
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=env)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip", "setuptools", "wheel"], cwd=project.pwd, check=True, env=env)
    subprocess.run([*pip, "-r", "requirements.txt"], cwd=project.pwd, check=True, env=env, timeout=600)

    config = {f"kaizenity:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in stack_config("dev").items()}
    secret_keys = [f"kaizenity:{k}" for k in TEST_SECRETS]
    completed, records = run_program(project, str(venv / "bin" / "python"), "dev", config, secret_keys, env=env)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert {r["name"] for r in records if r["type"] == DYNAMIC_TYPE} == {
        "database-role-passwords",
        "schema-migrations",
        "seed-workflows",
    }
    with dynamic_provider(project, env=env) as plugin:  # the shim resolves the copy's .venv from its main dir
        props = with_provider(SchemaMigrationsProvider(), {"databaseUrl": "x", "checksums": {}})
        assert plugin.check({}, props)["checksums"] == {}


def _login_works(url: str, user: str, password: str) -> bool:
    host_and_database = url.split("@", 1)[1]
    try:
        psycopg.connect(dsn_for(user, password, host_and_database), connect_timeout=5).close()
    except psycopg.OperationalError:
        return False
    return True


def dsn_for(user: str, password: str, host_and_database: str) -> str:
    from urllib.parse import quote

    return f"postgresql://{user}:{quote(password, safe='')}@{host_and_database}"


def test_role_passwords_provider_alters_roles_with_the_old_superuser_password_over_grpc(
    throwaway_postgres: object,
) -> None:
    """Defect 5, Pulumi path: Update (what the engine runs before replacing the PostgreSQL container) changes the
    stored passwords in the running server; the superuser's own last, using the old one from `olds`."""
    start = throwaway_postgres
    url = start()  # type: ignore[operator]
    container_name, superuser_old = start.containers[url]  # type: ignore[attr-defined]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE ROLE n8n LOGIN PASSWORD 'n8n-old-password-000'")
    roles = {"n8nDbPassword": "n8n", "appDatabasePassword": "kaizenity_n8n", "postgresPassword": "postgres"}
    olds_passwords = {"postgresPassword": superuser_old, "n8nDbPassword": "n8n-old-password-000"}
    olds_passwords["appDatabasePassword"] = "app-old-password-000"  # role not created yet: skipped, no error
    props = {"containerName": container_name, "superuser": "postgres", "roles": roles, "passwords": olds_passwords}
    news_passwords = {key: f"{key}-rotated-{secrets.token_hex(8)}" for key in roles}
    with dynamic_provider(load_project()) as plugin:
        plugin.configure()
        checked = plugin.check({}, with_provider(DatabaseRolePasswordsProvider(), props))
        id_, outs = plugin.create(checked)
        assert _login_works(url, "postgres", superuser_old), "create changes nothing"
        news = plugin.check(outs, {**checked, "passwords": news_passwords})
        assert plugin.diff(id_, outs, news).changes == 2
        plugin.update(id_, outs, news)
    assert _login_works(url, "n8n", news_passwords["n8nDbPassword"])
    assert not _login_works(url, "n8n", "n8n-old-password-000")
    assert _login_works(url, "postgres", news_passwords["postgresPassword"])
    assert not _login_works(url, "postgres", superuser_old)
