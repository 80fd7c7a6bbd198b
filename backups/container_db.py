"""PostgreSQL client tools run inside the database container, through `docker exec`.

The container's own pg_dump/pg_restore/psql always match the server's major version (the host's may not, and
a production database is not published to the host at all). They connect over the container's local socket
as the superuser, which the image trusts; no password crosses a command line.
"""

from __future__ import annotations

import contextlib
import io
import os
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

END_MARKER = "kaizenity:end-of-rows"
FIELD_SEPARATOR = "\x1f"
RESTORE_DIR = "/var/lib/postgresql/kaizenity-restore"  # the postgres home, beside (not in) PGDATA


class DatabaseToolError(RuntimeError):
    """A pg_dump/pg_restore/psql run inside the container failed."""

    def __init__(self, message: str, exit_code: int = -1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class ContainerDatabase:
    """The PostgreSQL server in one container, driven by its own client tools."""

    def __init__(self, client: Any, container_name: str, superuser: str) -> None:
        self._client = client
        self._container = client.containers.get(container_name)
        self._superuser = superuser

    def query(self, database: str, sql: str) -> list[list[str]]:
        """Rows of `sql` as lists of strings (psql unaligned output).

        psql ends its output with a marker line: without it the rows were lost between psql and us (seen once
        under load: an aggregate "returned" no row with exit code 0, and a restore's comparison failed). A read
        is asked again once; lost twice, it raises rather than returning fewer rows than exist."""
        command = ["psql", "-X", "-A", "-t", "-F", FIELD_SEPARATOR, "-v", "ON_ERROR_STOP=1", *self._conn(database)]
        command += ["-c", sql, "-c", f"\\echo {END_MARKER}"]
        for _ in range(2):
            lines = self._run(command, what=f"query on {database}").decode().splitlines()
            if lines and lines[-1] == END_MARKER:
                return [line.split(FIELD_SEPARATOR) for line in lines[:-1] if line]
        raise DatabaseToolError(f"query on {database} in {self._container.name}: psql's output was cut off twice.")

    def execute(self, database: str, sql: str) -> None:
        self._run(
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", *self._conn(database), "-c", sql],
            what=f"statement on {database}",
        )

    def dump(self, database: str, destination: Path) -> None:
        """pg_dump in custom format, streamed from the container into `destination`."""
        command = ["pg_dump", "--format=custom", "--compress=6", *self._conn(database)]
        with private_file(destination) as handle:
            for chunk in self._stream(command, what=f"pg_dump of {database}"):
                handle.write(chunk)

    def restore(self, database: str, dump_file: Path) -> None:
        """pg_restore a custom-format dump into `database` (which must exist and be empty), all or nothing."""
        self._copy_in(dump_file)
        remote = f"{RESTORE_DIR}/{dump_file.name}"
        try:
            self._run(
                ["pg_restore", "--exit-on-error", "--single-transaction", *self._conn(database), remote],
                what=f"pg_restore into {database}",
            )
        finally:
            self._run(["rm", "-rf", RESTORE_DIR], what="clean-up of the restore files", user="root")

    def _conn(self, database: str) -> list[str]:
        return ["--username", self._superuser, "--dbname", database, "--host", "/var/run/postgresql"]

    def _run(self, command: list[str], *, what: str, user: str = "postgres") -> bytes:
        return run_in(self._client, self._container, command, what=what, user=user)

    def _stream(self, command: list[str], *, what: str, user: str = "postgres") -> Iterator[bytes]:
        return stream_in(self._client, self._container, command, what=what, user=user)

    def _copy_in(self, path: Path) -> None:
        self._run(["mkdir", "-p", RESTORE_DIR], what="restore directory", user="root")
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            info = archive.gettarinfo(str(path), arcname=path.name)
            info.uid = info.gid = 999  # the image's postgres user, so pg_restore can read it
            info.mode = 0o600
            with path.open("rb") as handle:
                archive.addfile(info, handle)
        if not self._container.put_archive(RESTORE_DIR, buffer.getvalue()):
            raise DatabaseToolError(f"could not copy {path.name} into {self._container.name}.")


def run_in(client: Any, container: Any, command: list[str], *, what: str, user: str = "postgres") -> bytes:
    """Run `command` in a running container (docker exec) and return its stdout; raise naming `what` on failure."""
    return b"".join(stream_in(client, container, command, what=what, user=user))


def stream_in(client: Any, container: Any, command: list[str], *, what: str, user: str = "postgres") -> Iterator[bytes]:
    """Like :func:`run_in`, yielding stdout as it comes (large outputs never sit in memory whole)."""
    api = client.api
    exec_id = api.exec_create(container.id, command, user=user)["Id"]
    errors = io.BytesIO()
    for stdout, stderr in api.exec_start(exec_id, stream=True, demux=True):
        if stderr:
            errors.write(stderr)
        if stdout:
            yield stdout
    exit_code = _exit_code(api, exec_id)
    if exit_code != 0:
        message = errors.getvalue().decode(errors="replace").strip()[-2000:]
        raise DatabaseToolError(
            f"{what} in container {container.name} failed (exit {exit_code}): {message or 'no output'}. "
            f"Fix: see the error above; `docker logs {container.name}` shows the server's side.",
            exit_code,
        )


def _exit_code(api: Any, exec_id: str) -> int:
    for _ in range(50):  # the stream can end a moment before Docker records the exit code
        code = api.exec_inspect(exec_id).get("ExitCode")
        if code is not None:
            return int(code)
        time.sleep(0.05)
    return -1


@contextlib.contextmanager
def private_file(path: Path) -> Iterator[BinaryIO]:
    """Open `path` for writing, created 0600 from the first byte (a dump holds every secret n8n stores).

    `Path.open` would create it with the umask's mode (often 0644) and leave a window before any chmod.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its old mode under O_CREAT
    with os.fdopen(fd, "wb") as handle:
        yield handle
