"""Preflight for `kaizenity bootstrap`: every check runs, and every failure is reported at once, before anything
is created. Each failure names the thing, the cause and the fix."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from infra.model import EnvironmentModel

MIN_FREE_GB = 5.0


@dataclass(frozen=True)
class PreflightCheck:
    """One preflight finding. `ok=False` blocks the bootstrap; `note` is shown either way."""

    name: str
    ok: bool
    note: str
    fix: str = ""


def python_version() -> PreflightCheck:
    found = ".".join(map(str, sys.version_info[:3]))
    ok = sys.version_info >= (3, 11)
    return PreflightCheck(
        "python", ok, f"Python {found}", "" if ok else "install Python 3.11 or newer and re-create .venv"
    )


def docker_engine() -> PreflightCheck:
    try:
        from infra.docker_engine import docker_client

        version = docker_client().version().get("Version", "?")
    except Exception as exc:  # the SDK raises many kinds; all mean "no engine here"
        return PreflightCheck(
            "docker", False, f"no Docker engine answers ({type(exc).__name__})",
            "start it (`sudo systemctl start docker`, or `make engine` on Debian), or set DOCKER_HOST",
        )  # fmt: skip
    return PreflightCheck("docker", True, f"Docker engine {version}")


def disk_space(path: Path, docker_root: str | None = None) -> PreflightCheck:
    """Free space where the images and volumes go (Docker's root) and in the checkout."""
    places = [path, *([Path(docker_root)] if docker_root and Path(docker_root).exists() else [])]
    free = min(shutil.disk_usage(p).free for p in places) / 2**30
    ok = free >= MIN_FREE_GB
    return PreflightCheck(
        "disk", ok, f"{free:.1f} GB free", "" if ok else f"free at least {MIN_FREE_GB:g} GB (images need ~3 GB)"
    )


def ports_free(model: EnvironmentModel) -> PreflightCheck:
    """Every host port the environment publishes must be free (skipped when the environment is already up)."""
    from infra.host_ports import taken_port_problems

    taken = [problem.problem.removesuffix(" is already in use on this host") + f" ({problem.key})"
             for problem in taken_port_problems(model)]  # fmt: skip
    if taken:
        return PreflightCheck(
            "ports", False, "in use: " + ", ".join(taken), "stop what listens there, or change the port keys"
        )
    return PreflightCheck("ports", True, f"{len(model.published_ports())} port(s) free")


def pulumi_cli() -> PreflightCheck:
    """Present or not, this never blocks: without the CLI the local engine brings the environment up."""
    path = shutil.which("pulumi")
    if path is None:
        return PreflightCheck(
            "pulumi", True, "Pulumi CLI not found: the local engine (testcontainers on this Docker engine) will be "
            "used; install the CLI (https://www.pulumi.com/docs/install/) to manage real environments with state",
        )  # fmt: skip
    version = subprocess.run([path, "version"], capture_output=True, text=True, check=False).stdout.strip()
    return PreflightCheck("pulumi", True, f"Pulumi CLI {version}")


def images_available(images: list[str]) -> PreflightCheck:
    """The stack's images are on this engine (or, for official images, can be pulled when Pulumi runs)."""
    try:
        from infra.docker_engine import docker_client

        client = docker_client()
        missing = []
        for image in images:
            try:
                client.images.get(image)
            except Exception:
                missing.append(image)
    except Exception:
        return PreflightCheck("images", False, "cannot list images: no Docker engine", "see the docker check")
    if not missing:
        return PreflightCheck("images", True, f"{len(images)} image(s) present")
    local = [m for m in missing if m.startswith("kaizenity-local/")]
    if local:
        return PreflightCheck("images", False, "offline images not built: " + ", ".join(local), "run `make images`")
    return PreflightCheck("images", True, "will be pulled: " + ", ".join(missing))


def report(checks: list[PreflightCheck]) -> tuple[bool, str]:
    """All checks as text (failures with their fix) and whether the bootstrap may go on."""
    lines = []
    for check in checks:
        mark = "ok  " if check.ok else "FAIL"
        lines.append(f"  [{mark}] {check.name}: {check.note}" + (f"\n         fix: {check.fix}" if check.fix else ""))
    return all(c.ok for c in checks), "\n".join(lines)
