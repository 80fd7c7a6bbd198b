"""Migration file discovery: order, checksums, and the names and numbers the runner refuses."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from bootstrap.catalog import MIGRATIONS_DIR, MigrationFileError, load_migrations


def test_shipped_migrations_are_ordered_and_checksummed() -> None:
    migrations = load_migrations()
    assert [m.version for m in migrations] == sorted(m.version for m in migrations)
    assert [m.name for m in migrations][:5] == ["roles", "core", "client", "ops", "analytics"]
    first = migrations[0]
    assert first.checksum == hashlib.sha256((MIGRATIONS_DIR / first.label).read_bytes()).hexdigest()
    assert all(m.transactional for m in migrations)


def test_objects_are_created_as_the_owner_role() -> None:
    for migration in load_migrations()[1:]:
        assert "SET LOCAL ROLE kaizenity_owner;" in migration.sql, migration.label


def test_bad_names_and_duplicate_versions_are_all_reported(tmp_path: Path) -> None:
    (tmp_path / "0001_ok.sql").write_text("SELECT 1;")
    (tmp_path / "0001_again.sql").write_text("SELECT 1;")
    (tmp_path / "2_Bad-Name.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationFileError) as failure:
        load_migrations(tmp_path)
    message = str(failure.value)
    assert "2_Bad-Name.sql: name must look like" in message
    assert "version 1 is also used by" in message


def test_no_transaction_mark(tmp_path: Path) -> None:
    (tmp_path / "0001_index.sql").write_text("-- kaizenity:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (c);\n")
    assert not load_migrations(tmp_path)[0].transactional


def test_missing_directory_is_explained(tmp_path: Path) -> None:
    with pytest.raises(MigrationFileError, match="does not exist"):
        load_migrations(tmp_path / "nowhere")
