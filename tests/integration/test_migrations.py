"""The migration runner and the schema against a real PostgreSQL (the session environment's server).

Each test migrates a database of its own, created empty for it, so tests do not depend on each other.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from bootstrap.catalog import MIGRATIONS_DIR, load_migrations
from bootstrap.runner import HISTORY_TABLE, MigrationDrift, apply_migrations, current_plan
from infra.local_endpoints import LocalEndpoints

pytestmark = pytest.mark.integration


def with_database(url: str, database: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + database


@pytest.fixture
def empty_db(kaizenity_stack: LocalEndpoints) -> Iterator[str]:
    """URL of a new, empty database on the environment's server (dropped afterwards)."""
    assert kaizenity_stack.database_url
    name = f"mig_{secrets.token_hex(4)}"
    with psycopg.connect(kaizenity_stack.database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield with_database(kaizenity_stack.database_url, name)
    with psycopg.connect(kaizenity_stack.database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def migrated_db(empty_db: str) -> str:
    apply_migrations(empty_db)
    return empty_db


@pytest.fixture
def migrations_copy(tmp_path: Path) -> Path:
    directory = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, directory)
    return directory


def history(url: str) -> list[tuple[int, str]]:
    with psycopg.connect(url) as conn:
        return conn.execute(f"SELECT version, checksum FROM {HISTORY_TABLE} ORDER BY version").fetchall()


def test_empty_to_latest_then_rerun_is_a_noop(empty_db: str) -> None:
    files = load_migrations()
    applied = apply_migrations(empty_db)
    assert [m.version for m in applied] == [m.version for m in files]
    assert history(empty_db) == [(m.version, m.checksum) for m in files]
    assert apply_migrations(empty_db) == []
    assert current_plan(empty_db).up_to_date


def test_adding_a_migration_applies_only_it(empty_db: str, migrations_copy: Path) -> None:
    apply_migrations(empty_db, load_migrations(migrations_copy))
    (migrations_copy / "0099_add_invoices.sql").write_text(
        "SET LOCAL ROLE kaizenity_owner;\nCREATE TABLE ops.invoices (id int PRIMARY KEY);\n"
    )
    applied = apply_migrations(empty_db, load_migrations(migrations_copy))
    assert [m.label for m in applied] == ["0099_add_invoices.sql"]
    with psycopg.connect(empty_db) as conn:
        owner = conn.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'invoices'").fetchone()
    assert owner == ("kaizenity_owner",)


def test_five_concurrent_runners_apply_each_migration_once(empty_db: str) -> None:
    with ThreadPoolExecutor(max_workers=5) as pool:
        results = list(pool.map(lambda _: apply_migrations(empty_db), range(5)))
    applied = [m.version for run in results for m in run]
    assert sorted(applied) == [m.version for m in load_migrations()], "each applied exactly once, by some runner"
    assert len(history(empty_db)) == len(load_migrations())


def test_changed_applied_file_is_refused_and_nothing_applied(empty_db: str, migrations_copy: Path) -> None:
    apply_migrations(empty_db, load_migrations(migrations_copy))
    core = migrations_copy / "0002_core.sql"
    core.write_text(core.read_text() + "\n-- an innocent-looking edit\n")
    (migrations_copy / "0099_more.sql").write_text("CREATE TABLE public.should_not_exist (id int);\n")
    with pytest.raises(MigrationDrift, match=r"0002_core\.sql changed after it was applied"):
        apply_migrations(empty_db, load_migrations(migrations_copy))
    with psycopg.connect(empty_db) as conn:
        assert conn.execute("SELECT to_regclass('public.should_not_exist')").fetchone() == (None,)
    assert len(history(empty_db)) == len(load_migrations())


def test_runner_killed_mid_migration_then_rerun_completes(empty_db: str, migrations_copy: Path) -> None:
    (migrations_copy / "0099_slow.sql").write_text(
        "CREATE TABLE public.slow_result (id int);\nSELECT pg_sleep(60);\nINSERT INTO public.slow_result VALUES (1);\n"
    )
    script = (
        "import sys; from pathlib import Path; from bootstrap.catalog import load_migrations; "
        "from bootstrap.runner import apply_migrations; "
        "apply_migrations(sys.argv[1], load_migrations(Path(sys.argv[2])))"
    )
    runner = subprocess.Popen([sys.executable, "-c", script, empty_db, str(migrations_copy)], cwd=Path.cwd())
    try:
        _wait_for_sleeping_migration(empty_db)
    finally:
        os.kill(runner.pid, signal.SIGKILL)
        runner.wait()
    started = time.monotonic()
    (migrations_copy / "0099_slow.sql").write_text(
        "CREATE TABLE public.slow_result (id int);\nINSERT INTO public.slow_result VALUES (1);\n"
    )  # an unapplied file may still change
    applied = apply_migrations(empty_db, load_migrations(migrations_copy), lock_wait_s=30)
    assert time.monotonic() - started < 10, "the killed runner's lock was released promptly"
    assert [m.label for m in applied] == ["0099_slow.sql"]
    with psycopg.connect(empty_db) as conn:
        assert conn.execute("SELECT count(*) FROM public.slow_result").fetchone() == (1,)
    assert current_plan(empty_db, load_migrations(migrations_copy)).up_to_date


def _wait_for_sleeping_migration(url: str) -> None:
    deadline = time.monotonic() + 30
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'kaizenity-migrations' "
                "AND query LIKE '%pg_sleep(60)%' AND state = 'active'"
            ).fetchone()
            if row and row[0]:
                # The first five migrations are committed; 0099 is mid-way.
                assert conn.execute("SELECT to_regclass('core.tenants') IS NOT NULL").fetchone() == (True,)
                return
            time.sleep(0.1)
    pytest.fail("the runner never reached the slow migration")


# --- the schema's guarantees -----------------------------------------------------------------------------


@pytest.fixture
def login(migrated_db: str) -> Iterator[dict[str, str]]:
    """Login users for the app and analytics group roles; their URLs by role."""
    users = {"app": f"t_app_{secrets.token_hex(3)}", "analytics": f"t_ro_{secrets.token_hex(3)}"}
    password = secrets.token_urlsafe(16)
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        for group, user in users.items():
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE {}").format(
                    sql.Identifier(user), sql.Literal(password), sql.Identifier(f"kaizenity_{group}")
                )
            )
    base = migrated_db.split("://", 1)[1].split("@", 1)[1]
    yield {group: f"postgresql://{user}:{password}@{base}" for group, user in users.items()}
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        for user in users.values():
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(user)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(user)))


@pytest.fixture
def two_tenants(migrated_db: str) -> tuple[uuid.UUID, uuid.UUID]:
    """Tenants A and B with one space each (written as the superuser, which bypasses RLS)."""
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        ids = []
        for slug in ("tenant-a", "tenant-b"):
            row = conn.execute("INSERT INTO core.tenants (slug, name) VALUES (%s, %s) RETURNING id", (slug, slug))
            tenant = row.fetchone()[0]  # type: ignore[index]
            conn.execute(
                "INSERT INTO client.spaces (tenant_id, name, coda_doc_id) VALUES (%s, %s, %s)",
                (tenant, f"{slug} space", f"doc-{slug}"),
            )
            ids.append(tenant)
    return ids[0], ids[1]


def test_rls_a_tenant_session_sees_and_writes_only_its_own_rows(
    login: dict[str, str], two_tenants: tuple[uuid.UUID, uuid.UUID]
) -> None:
    tenant_a, tenant_b = two_tenants
    with psycopg.connect(login["app"], autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM client.spaces").fetchone() == (0,), "no tenant bound: nothing"
        conn.execute("SELECT set_config('app.tenant_id', %s, false)", (str(tenant_a),))
        assert conn.execute("SELECT tenant_id FROM client.spaces").fetchall() == [(tenant_a,)]
        assert conn.execute("SELECT count(*) FROM client.spaces WHERE tenant_id = %s", (tenant_b,)).fetchone() == (0,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            conn.execute(
                "INSERT INTO client.spaces (tenant_id, name, coda_doc_id) VALUES (%s, 'x', 'doc-x')", (tenant_b,)
            )
        updated = conn.execute("UPDATE client.spaces SET name = 'hijacked' WHERE tenant_id = %s", (tenant_b,))
        assert updated.rowcount == 0
        conn.execute("INSERT INTO client.spaces (name, coda_doc_id) VALUES ('own', 'doc-own')")  # tenant defaulted
        assert conn.execute("SELECT count(*) FROM client.spaces").fetchone() == (2,)


def test_analytics_role_reads_but_cannot_write(login: dict[str, str]) -> None:
    with psycopg.connect(login["analytics"], autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM analytics.events").fetchone() == (0,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO analytics.events (name) VALUES ('x')")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT count(*) FROM ops.messages")


def test_app_role_cannot_drop_or_alter_tables(login: dict[str, str]) -> None:
    with psycopg.connect(login["app"], autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="must be owner"):
            conn.execute("DROP TABLE ops.messages")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("TRUNCATE core.audit_log")
        conn.execute("INSERT INTO core.audit_log (actor, action) VALUES ('test', 'created')")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match=r"append-only|permission denied"):
            conn.execute("UPDATE core.audit_log SET action = 'rewritten'")


def test_duplicate_inbound_message_is_stored_once(login: dict[str, str]) -> None:
    insert = (
        "INSERT INTO ops.messages (channel, direction, idempotency_key, body) VALUES ('telegram', 'inbound', %s, %s) "
        "ON CONFLICT (channel, direction, idempotency_key) DO NOTHING"
    )
    with psycopg.connect(login["app"], autocommit=True) as conn:
        assert conn.execute(insert, ("update-1001", "hello")).rowcount == 1
        assert conn.execute(insert, ("update-1001", "hello")).rowcount == 0
        assert conn.execute("SELECT count(*) FROM ops.messages").fetchone() == (1,)


def test_notifications_are_claimed_by_one_worker_each(login: dict[str, str]) -> None:
    claim = (
        "UPDATE ops.notifications SET status = 'sending', attempts = attempts + 1 WHERE id IN ("
        "SELECT id FROM ops.notifications WHERE status = 'pending' AND next_attempt_at <= now() "
        "ORDER BY next_attempt_at FOR UPDATE SKIP LOCKED LIMIT 3) RETURNING id"
    )
    with psycopg.connect(login["app"], autocommit=True) as setup:
        setup.execute(
            "INSERT INTO ops.notifications (channel, recipient, body) "
            "SELECT 'telegram', 'chat-' || g, 'hi' FROM generate_series(1, 5) g"
        )
    with psycopg.connect(login["app"]) as first, psycopg.connect(login["app"]) as second:
        claimed_first = {r[0] for r in first.execute(claim).fetchall()}  # transaction left open: rows locked
        claimed_second = {r[0] for r in second.execute(claim).fetchall()}
        first.commit()
        second.commit()
    assert len(claimed_first) == 3
    assert len(claimed_second) == 2
    assert claimed_first.isdisjoint(claimed_second)


def test_events_land_in_monthly_partitions(login: dict[str, str]) -> None:
    with psycopg.connect(login["app"], autocommit=True) as conn:
        conn.execute("INSERT INTO analytics.events (name) VALUES ('message.received')")
        conn.execute("INSERT INTO analytics.events (name, occurred_at) VALUES ('old', '2001-01-01')")
        parts: dict[str, int] = dict(
            conn.execute("SELECT tableoid::regclass::text, count(*) FROM analytics.events GROUP BY 1").fetchall()
        )
        assert conn.execute("SELECT analytics.ensure_event_partitions(0, 4)").fetchone() == (1,)
    assert parts["analytics.events_default"] == 1
    assert any(name.startswith("analytics.events_20") for name in parts)


def test_db_apply_makes_monitorings_least_privilege_login_when_given_its_password(empty_db: str) -> None:
    """Where `pulumi up` cannot reach the database (prod), `kaizenity db apply` with the monitoring password makes
    postgres_exporter's login after the migrations (0013: kaizenity_monitoring, pg_monitor); run again, the new
    password replaces the old."""
    from click.testing import CliRunner

    from bootstrap.cli import MONITORING_PASSWORD_ENV, db

    base = empty_db.split("://", 1)[1].split("@", 1)[1]
    first, second = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    for password in (first, second):
        result = CliRunner().invoke(db, ["--database-url", empty_db, "apply"], env={MONITORING_PASSWORD_ENV: password})
        assert result.exit_code == 0, result.output
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(f"postgresql://kaizenity_monitor:{first}@{base}", connect_timeout=5).close()
    with psycopg.connect(f"postgresql://kaizenity_monitor:{second}@{base}", autocommit=True) as conn:
        assert conn.execute(
            "SELECT pg_has_role('pg_monitor', 'USAGE'), rolsuper FROM pg_roles WHERE rolname = current_user"
        ).fetchone() == (True, False)
        assert conn.execute("SELECT count(*) FROM ops.workflow_errors").fetchone() == (0,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT count(*) FROM ops.messages")
