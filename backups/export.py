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
    command = ["bash", "-c", export_script(stamp)]
    descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        encrypt_stream(load_key(), stream_in(client, container, command, what="archive export"), handle)
    progress(f"exported base backup {stamp} and its WAL to {out} ({out.stat().st_size} bytes, encrypted)")
    return stamp


def export_script(stamp: str, root: str = ARCHIVE_DIR) -> str:
    """The tar stream of one base backup, the WAL and the keys, as one consistent snapshot (run in the sidecar).

    Under the agent's lock (no base backup, hence no retention prune, while it reads: every file it lists stays);
    completed segments never change again (pg_receivewal writes `*.partial` and renames it when full). The segment
    being written is exported as a *copy* taken before the listing, under its `.partial` name: a prefix of valid
    WAL records (replay stops at its end, as for any partial segment) rather than a file tar reads while it grows.
    A segment completed after that copy is exported as that copy only. tar must exit 0: any warning fails.
    """
    return f"""set -euo pipefail
umask 077
exec 9>>{root}/.base.lock
flock -w 3600 9
snap=$(mktemp -d /tmp/kaizenity-export.XXXXXX)
trap 'rm -rf "$snap"' EXIT
mkdir "$snap/wal"
cd {root}/wal
for f in *.partial; do  # renamed before cp opened it: complete now, and in the listing below
    if [ -f "$f" ]; then cp "$f" "$snap/wal/" 2>/dev/null || true; fi
done
if [ -f SHA256SUMS ]; then cp SHA256SUMS "$snap/wal/"; fi
ls | grep -E '^[0-9A-F]{{24}}$|^[0-9A-F]{{8}}\\.history$' | sed 's|^|wal/|' >"$snap/list" || true
tar -C {root} -cf - {shlex.quote(f"base/{stamp}")} keys -T "$snap/list" -C "$snap" wal
"""


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
            helper.remove(force=True, v=True)
    progress(f"imported {source} into volume {volume}: `kaizenity restore --archive {volume} --latest`")
