"""Backup and restore against real containers: round trip, refusals, corruption, and the encryption key."""

from __future__ import annotations

import dataclasses
import io
import json
import secrets
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from backups.backup import KEY_FILE, backups_of, create_backup
from backups.manifest import BackupCorrupted, Manifest
from backups.restore import RestoreRefused, restore_backup
from backups.target import DataTarget, find_target
from infra import local_engine
from infra.docker_engine import docker_client
from infra.local_endpoints import LocalEndpoints

pytestmark = pytest.mark.integration

CREDENTIAL_SECRET = "telegram-token-" + secrets.token_hex(8)
CREDENTIAL = {
    "id": "kzBackupCred0001",
    "name": "Backup round-trip Telegram",
    "type": "telegramApi",
    "data": {"accessToken": CREDENTIAL_SECRET},
}


def n8n_cli(container_name: str, *args: str) -> str:
    """Run the n8n CLI inside the n8n container (a second n8n process on the same database and key)."""
    result = docker_client().containers.get(container_name).exec_run(["n8n", *args], user="node")
    output: str = result.output.decode(errors="replace")
    assert result.exit_code == 0, output
    return output


def put_file(container_name: str, path: str, text: str) -> None:
    buffer = io.BytesIO()
    data = text.encode()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo(Path(path).name)
        info.size, info.uid, info.gid = len(data), 1000, 1000
        archive.addfile(info, io.BytesIO(data))
    assert docker_client().containers.get(container_name).put_archive(str(Path(path).parent), buffer.getvalue())


def decrypted_credentials(container_name: str) -> list[dict[str, object]]:
    n8n_cli(container_name, "export:credentials", "--all", "--decrypted", "--output=/home/node/creds.json")
    raw = docker_client().containers.get(container_name).exec_run(["cat", "/home/node/creds.json"]).output
    return list(json.loads(raw))


def app_rows(url: str) -> list[tuple[int, str]]:
    with psycopg.connect(url, connect_timeout=5) as conn:
        return conn.execute("SELECT id, note FROM backup_probe ORDER BY id").fetchall()


@pytest.fixture(scope="module")
def source(kaizenity_stack: LocalEndpoints) -> DataTarget:
    """The session environment with data in both databases: app rows and an n8n credential."""
    assert kaizenity_stack.database_url
    with psycopg.connect(kaizenity_stack.database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE backup_probe (id int PRIMARY KEY, note text, payload jsonb)")
        conn.execute(
            "INSERT INTO backup_probe SELECT g, 'row ' || g, jsonb_build_object('g', g) FROM generate_series(1, 500) g"
        )
    n8n_container = kaizenity_stack.containers["n8n"]
    put_file(n8n_container, "/home/node/cred.json", json.dumps([CREDENTIAL]))
    n8n_cli(n8n_container, "import:credentials", "--input=/home/node/cred.json")
    return find_target(docker_client(), kaizenity_stack.prefix)


@pytest.fixture(scope="module")
def backup_dir(source: DataTarget, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("backups")
    return create_backup(docker_client(), source, root, retention=3)


@pytest.fixture(scope="module")
def fresh_environment(backup_dir: Path) -> Iterator[LocalEndpoints]:
    """A second, empty environment brought up with the backup's encryption key (disaster recovery)."""
    prefix = f"kzt-restore-{secrets.token_hex(3)}"
    key = (backup_dir / KEY_FILE).read_text(encoding="utf-8")
    try:
        _, endpoints = local_engine.start(
            "ci", prefix=prefix, offline=True, free_ports=True, record=False, preset_secrets={"n8nEncryptionKey": key}
        )
        yield endpoints
    finally:
        local_engine.stop(prefix)


def test_backup_is_complete_checksummed_and_private(backup_dir: Path, source: DataTarget) -> None:
    manifest = Manifest.read(backup_dir)
    assert set(manifest.files) == {"app.dump", "n8n.dump", KEY_FILE}
    assert manifest.tables["app"]["public.backup_probe"].rows == 500
    assert manifest.tables["n8n"]["public.credentials_entity"].rows >= 1
    assert (backup_dir / KEY_FILE).stat().st_mode & 0o777 == 0o600
    assert (backup_dir / KEY_FILE).read_text() == source.encryption_key
    assert source.encryption_key not in (backup_dir / "manifest.json").read_text()
    assert not [p for p in backup_dir.parent.iterdir() if p.name.startswith(".partial-")]


def test_n8n_runs_again_after_the_backup(source: DataTarget) -> None:
    container = docker_client().containers.get(source.n8n_containers[0])
    assert container.status == "running", "the writers paused for the backup are resumed"


def test_retention_keeps_the_newest(source: DataTarget, tmp_path: Path) -> None:
    made = [create_backup(docker_client(), source, tmp_path, retention=3) for _ in range(4)]
    assert backups_of(tmp_path / source.prefix) == made[1:], "the oldest went first"


def test_restore_onto_data_without_force_is_refused(
    source: DataTarget, kaizenity_stack: LocalEndpoints, tmp_path: Path, backup_dir: Path
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(backup_dir, copy)
    assert kaizenity_stack.database_url
    before = app_rows(kaizenity_stack.database_url)
    with pytest.raises(RestoreRefused, match="already hold data"):
        restore_backup(docker_client(), source, copy)
    assert app_rows(kaizenity_stack.database_url) == before


def test_corrupted_backup_is_detected_before_anything_is_touched(
    source: DataTarget, kaizenity_stack: LocalEndpoints, tmp_path: Path, backup_dir: Path
) -> None:
    copy = tmp_path / "corrupt"
    shutil.copytree(backup_dir, copy)
    dump = copy / "app.dump"
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dump.write_bytes(bytes(data))
    assert kaizenity_stack.database_url
    before = app_rows(kaizenity_stack.database_url)
    with pytest.raises(BackupCorrupted, match=r"app\.dump: checksum mismatch"):
        restore_backup(docker_client(), source, copy, force=True)
    assert app_rows(kaizenity_stack.database_url) == before
    assert docker_client().containers.get(source.n8n_containers[0]).status == "running"


def test_restore_into_an_environment_with_another_key_is_refused(
    fresh_environment: LocalEndpoints, backup_dir: Path
) -> None:
    target = find_target(docker_client(), fresh_environment.prefix)
    wrong = dataclasses.replace(target, encryption_key="not-the-backups-key")
    with pytest.raises(RestoreRefused, match="different encryption key"):
        restore_backup(docker_client(), wrong, backup_dir)


def test_round_trip_into_a_fresh_environment(
    fresh_environment: LocalEndpoints, backup_dir: Path, kaizenity_stack: LocalEndpoints
) -> None:
    target = find_target(docker_client(), fresh_environment.prefix)
    report = restore_backup(docker_client(), target, backup_dir)  # a fresh environment holds no data: no --force
    manifest = Manifest.read(backup_dir)
    assert report.tables == sum(len(t) for t in manifest.tables.values())
    assert fresh_environment.database_url
    assert kaizenity_stack.database_url
    assert app_rows(fresh_environment.database_url) == app_rows(kaizenity_stack.database_url)
    credentials = decrypted_credentials(fresh_environment.containers["n8n"])
    restored = next(c for c in credentials if c["id"] == CREDENTIAL["id"])
    assert restored["data"] == {"accessToken": CREDENTIAL_SECRET}, "the key came back with the data"
    assert docker_client().containers.get(fresh_environment.containers["n8n"]).status == "running"
