"""Access to the local Docker engine: the client, and reading a file out of a container.

A module of its own because the CLI, bootstrap, backups and the container runner all need the engine, and none
of them should reach into another's module for it.
"""

from __future__ import annotations

import io
import tarfile
from typing import Any


class ContainerFileError(RuntimeError):
    """A path inside a container is not a regular file."""


def docker_client() -> Any:
    """A docker-py client for the engine testcontainers uses (DOCKER_HOST or the default socket)."""
    import docker

    return docker.from_env()


def read_file_from_container(container: Any, path: str) -> str:
    """One text file out of a container (docker cp), e.g. Caddy's local root CA."""
    stream, _ = container.get_archive(path)
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
        member = archive.next()
        extracted = archive.extractfile(member) if member else None
        if extracted is None:
            raise ContainerFileError(f"{path} in {container.name} is not a file")
        return extracted.read().decode()


def containers_running(names: Any) -> bool:
    """True when every named container exists and runs (False when the engine cannot be asked)."""
    try:
        client = docker_client()
        return all(client.containers.get(name).status == "running" for name in names)
    except Exception:
        return False
