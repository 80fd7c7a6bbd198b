"""Backup files are private from the first byte, whatever the umask (a dump holds every secret n8n stores)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from backups.container_db import private_file


@pytest.fixture
def loose_umask() -> Iterator[None]:
    previous = os.umask(0o022)  # the usual default: new files 0644
    try:
        yield
    finally:
        os.umask(previous)


def test_dump_file_is_created_0600(tmp_path: Path, loose_umask: None) -> None:
    target = tmp_path / "app.dump"
    with private_file(target) as handle:
        handle.write(b"data")
    assert target.stat().st_mode & 0o777 == 0o600


def test_an_existing_dump_file_is_made_private(tmp_path: Path, loose_umask: None) -> None:
    target = tmp_path / "app.dump"
    target.write_bytes(b"old")
    target.chmod(0o644)
    with private_file(target) as handle:
        handle.write(b"new")
    assert target.stat().st_mode & 0o777 == 0o600
    assert target.read_bytes() == b"new"
