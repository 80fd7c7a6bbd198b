"""`kaizenity backup`: an on-demand base backup by the environment's backup sidecar, with no writer paused.

pg_basebackup copies the running cluster under `pg_backup_start` while n8n keeps writing (the WAL streamed
alongside makes the copy consistent), so webhooks are answered throughout; the former dump-based backup paused
n8n for its whole duration. The same agent command runs the schedule, so an on-demand backup shares its lock
(never two at once), its pg_verifybackup check and its retention.

n8n's encryption key is written into the archive too, encrypted with the backup key that is kept elsewhere
(`backups.crypto`): the data and the key that decrypts its credentials travel together, but a copy of the
archive alone reveals neither the key nor the credentials.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from backups.archive import KEY_FILE, Archive, BaseBackup
from backups.crypto import encrypt, load_key
from backups.target import DataTarget

Progress = Callable[[str], None]


def store_n8n_key(archive: Archive, target: DataTarget) -> None:
    """Keep n8n's encryption key in the archive, encrypted (a backup key is created on first use, 0600)."""
    if not target.encryption_key:
        raise RuntimeError(
            f"environment '{target.prefix}': n8n runs without N8N_ENCRYPTION_KEY, so the key cannot be kept with "
            "the backup. Fix: set the stack secret kaizenity:n8nEncryptionKey and redeploy."
        )
    archive.put_file(KEY_FILE, encrypt(load_key(create=True), target.encryption_key.encode()))


def take_backup(client: Any, target: DataTarget, archive: Archive, progress: Progress = lambda _m: None) -> BaseBackup:
    """Store the key, take and verify a base backup now, checksum the WAL so far; the new backup."""
    store_n8n_key(archive, target)
    progress("n8n encryption key stored in the archive (encrypted with the backup key)")
    for line in archive.take_base_backup().splitlines():
        progress(line.split("backup-agent: ", 1)[-1])
    archive.checksum_new_segments()
    return archive.base_backups()[-1]
