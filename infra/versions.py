"""Pinned versions, read from `images/versions.env`, the single place where they are written (a wheel ships a
copy: `infra.project_files.versions_file`).

The offline image build (images/build.sh) and the default official image tags must name the same n8n version:
a workflow validated against one n8n version and run on another is a production incident waiting to happen.
"""

from __future__ import annotations

from pathlib import Path

from infra.project_files import versions_file

VERSIONS_FILE = versions_file()


def read_versions(path: Path = VERSIONS_FILE) -> dict[str, str]:
    """Parse the shell-style KEY=VALUE file (comments and blank lines ignored)."""
    versions: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        versions[key.strip()] = value.strip().strip("'\"")
    return versions


_VERSIONS = read_versions()
N8N_VERSION: str = _VERSIONS["N8N_VERSION"]
LOCAL_IMAGE_PREFIX: str = _VERSIONS.get("LOCAL_IMAGE_PREFIX", "kaizenity-local")
POSTGRES_MAJOR: str = _VERSIONS.get("POSTGRES_MAJOR", "17")


def offline_images() -> dict[str, str]:
    """The locally built stand-ins (`make images`) for the official images, keyed like `ImageSettings`."""
    prefix = LOCAL_IMAGE_PREFIX
    return {
        "postgres": f"{prefix}/postgres:{POSTGRES_MAJOR}",
        "n8n": f"{prefix}/n8n:{N8N_VERSION}",
        "gateway": f"{prefix}/caddy:2",
        "redis": f"{prefix}/redis:8",
    }
