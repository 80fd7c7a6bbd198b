"""Preflight for `kaizenity bootstrap`: every check runs, and every failure is reported at once, before anything
is created. Each failure names the thing, the cause and the fix."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

MIN_FREE_GB = 5.0


@dataclass(frozen=True)
class Check:
    """One preflight finding. `ok=False` blocks the bootstrap; `note` is shown either way."""

    name: str
    ok: bool
    note: str
    fix: str = ""


def python_version() -> Check:
    found = ".".join(map(str, sys.version_info[:3]))
    ok = sys.version_info >= (3, 11)
    return Check("python", ok, f"Python {found}", "" if ok else "install Python 3.11 or newer and re-create .venv")


def docker_engine() -> Check:
    try:
        from infra.local_stack import docker_client

        version = docker_client().version().get("Version", "?")
    except Exception as exc:  # the SDK raises many kinds; all mean "no engine here"
        return Check(
            "docker", False, f"no Docker engine answers ({type(exc).__name__})",
            "start it (`sudo systemctl start docker`, or `make engine` on Debian), or set DOCKER_HOST",
        )  # fmt: skip
    return Check("docker", True, f"Docker engine {version}")


def disk_space(path: Path, docker_root: str | None = None) -> Check:
    """Free space where the images and volumes go (Docker's root) and in the checkout."""
    places = [path, *([Path(docker_root)] if docker_root and Path(docker_root).exists() else [])]
    free = min(shutil.disk_usage(p).free for p in places) / 2**30
    ok = free >= MIN_FREE_GB
    return Check(
        "disk", ok, f"{free:.1f} GB free", "" if ok else f"free at least {MIN_FREE_GB:g} GB (images need ~3 GB)"
    )


def ports_free(ports: list[tuple[str, str, int]]) -> Check:
    """Every host port the environment publishes must be free (skipped when the environment is already up)."""
    taken = []
    for key, host, port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("0.0.0.0" if host in {"0.0.0.0", ""} else host, port))  # noqa: S104
            except OSError:
                taken.append(f"{host}:{port} ({key})")
    if taken:
        return Check("ports", False, "in use: " + ", ".join(taken), "stop what listens there, or change the port keys")
    return Check("ports", True, f"{len(ports)} port(s) free")


def pulumi_cli() -> Check:
    """Present or not, this never blocks: without the CLI the local engine brings the environment up."""
    path = shutil.which("pulumi")
    if path is None:
        return Check(
            "pulumi", True, "Pulumi CLI not found: the local engine (testcontainers on this Docker engine) will be "
            "used; install the CLI (https://www.pulumi.com/docs/install/) to manage real environments with state",
        )  # fmt: skip
    version = subprocess.run([path, "version"], capture_output=True, text=True, check=False).stdout.strip()
    return Check("pulumi", True, f"Pulumi CLI {version}")


def images_available(images: list[str]) -> Check:
    """The stack's images are on this engine (or, for official images, can be pulled when Pulumi runs)."""
    try:
        from infra.local_stack import docker_client

        client = docker_client()
        missing = []
        for image in images:
            try:
                client.images.get(image)
            except Exception:
                missing.append(image)
    except Exception:
        return Check("images", False, "cannot list images: no Docker engine", "see the docker check")
    if not missing:
        return Check("images", True, f"{len(images)} image(s) present")
    local = [m for m in missing if m.startswith("kaizenity-local/")]
    if local:
        return Check("images", False, "offline images not built: " + ", ".join(local), "run `make images`")
    return Check("images", True, "will be pulled: " + ", ".join(missing))


def report(checks: list[Check]) -> tuple[bool, str]:
    """All checks as text (failures with their fix) and whether the bootstrap may go on."""
    lines = []
    for check in checks:
        mark = "ok  " if check.ok else "FAIL"
        lines.append(f"  [{mark}] {check.name}: {check.note}" + (f"\n         fix: {check.fix}" if check.fix else ""))
    return all(c.ok for c in checks), "\n".join(lines)
