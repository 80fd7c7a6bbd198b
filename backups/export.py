"""`kaizenity backup export` / `import`: the archive as one encrypted file, for storage off the host.

What leaves the environment is encrypted with the backup key (AES-256-GCM in 4 MiB chunks, `backups.crypto`),
which is never written into the export: a stolen export without the key file is noise. The export holds the
newest base backup, the WAL since (as much as retention kept) and n8n's key (itself encrypted): enough for
`kaizenity restore --archive VOLUME` after `import` on another host.
"""

from __future__ import annotations

import os
import shlex
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from backups.archive import Archive, ArchiveError
from backups.container_db import run_in, stream_in
from backups.crypto import decrypt_stream, encrypt_stream, load_key
from infra.services.backup import ARCHIVE_DIR

Progress = Callable[[str], None]


def export_archive(client: Any, archive: Archive, out: Path, progress: Progress = lambda _m: None) -> str:
    """Write the newest base backup + WAL + keys as an encrypted file `out` (0600); returns the base stamp."""
    if not archive.sidecar:
        raise ArchiveError(f"archive {archive.volume}: export reads through the running sidecar. Fix: `kaizenity up`.")
    bases = archive.base_backups()
    if not bases:
        raise ArchiveError(f"archive {archive.volume} has no base backup yet. Fix: `kaizenity backup` first.")
    archive.checksum_new_segments()
    stamp = bases[-1].stamp
    container = client.containers.get(archive.sidecar)
    # pg_receivewal keeps writing the `.partial` segment while tar reads it: GNU tar then exits 1 ("file changed as
    # we read it"), which is expected here (the import's chain check needs that segment); 2 and above still fail.
    tar = shlex.join(
        ["tar", "-C", ARCHIVE_DIR, "--warning=no-file-changed", "-cf", "-", f"base/{stamp}", "wal", "keys"]
    )
    command = ["sh", "-c", f"{tar}; rc=$?; [ $rc -le 1 ] || exit $rc"]
    descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        encrypt_stream(load_key(), stream_in(client, container, command, what="archive export"), handle)
    progress(f"exported base backup {stamp} and its WAL to {out} ({out.stat().st_size} bytes, encrypted)")
    return stamp


def import_archive(client: Any, source: Path, volume: str, image: str, progress: Progress = lambda _m: None) -> None:
    """Decrypt an export into the archive volume `volume` (created if missing), owned by the postgres user."""
    import docker.errors

    try:
        client.volumes.get(volume)
    except docker.errors.NotFound:
        client.volumes.create(name=volume)
    with tempfile.TemporaryDirectory(prefix="kaizenity-import-") as scratch:
        tar_path = Path(scratch) / "archive.tar"
        descriptor = os.open(tar_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with source.open("rb") as encrypted, os.fdopen(descriptor, "wb") as plain:
            for chunk in decrypt_stream(load_key(), encrypted, what=str(source)):
                plain.write(chunk)
        helper = client.containers.create(
            image,
            entrypoint=["sleep", "600"],
            volumes={volume: {"bind": ARCHIVE_DIR, "mode": "rw"}},
            network_mode="none",
        )
        try:
            helper.start()
            with tar_path.open("rb") as handle:
                if not helper.put_archive(ARCHIVE_DIR, handle):
                    raise ArchiveError(f"could not unpack {source} into volume {volume}")
            fix = f"chown -R 999:999 {ARCHIVE_DIR} && chmod -R u+rwX,go-rwx {ARCHIVE_DIR}"
            run_in(client, helper, ["sh", "-c", fix], what="archive ownership", user="root")
        finally:
            helper.remove(force=True)
    progress(f"imported {source} into volume {volume}: `kaizenity restore --archive {volume} --latest`")
