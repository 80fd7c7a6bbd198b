"""The local renderer: each service of the environment model as a plain "container create spec".

A :class:`ContainerCreateSpec` is exactly what `infra.container_runner` passes to the Docker engine (docker-py's
low-level `create_container` and `create_host_config`, then the uploads), with secrets resolved. It is plain data,
made without Docker, so tests can compare it property by property with what the Pulumi program registers
(tests/unit/test_renderer_parity.py). Nothing about a container is decided here: this module only translates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from infra.model import EnvironmentModel, EnvValue, SecretRef, ServiceSpec, resolve_secret

NANOSECONDS = 1_000_000_000


@dataclass(frozen=True)
class Upload:
    """A file put into the container before it starts (tar mode bits)."""

    target: str
    content: str
    mode: int


@dataclass(frozen=True)
class ContainerCreateSpec:
    """One container, in the Docker Engine API's vocabulary (durations in nanoseconds, memory in bytes)."""

    name: str
    image: str
    command: tuple[str, ...] | None
    entrypoint: tuple[str, ...] | None
    env: dict[str, str]
    user: str | None
    labels: dict[str, str]
    healthcheck: dict[str, Any] | None
    stop_timeout_s: int
    port_bindings: dict[str, tuple[str, int]]  # "5432/tcp" -> (host address, host port)
    volume_binds: dict[str, tuple[str, str]]  # docker volume name -> (container path, "rw" | "ro")
    memory_bytes: int
    cap_add: tuple[str, ...]
    cap_drop: tuple[str, ...]
    security_opts: tuple[str, ...]
    log_driver: str
    log_options: dict[str, str]
    restart_policy: str
    network: str
    aliases: tuple[str, ...]
    uploads: tuple[Upload, ...]
    ready_timeout_s: int
    read_only_rootfs: bool = False
    tmpfs: dict[str, str] | None = None  # container path -> mount options


def render_container(model: EnvironmentModel, spec: ServiceSpec, secrets: Mapping[str, str]) -> ContainerCreateSpec:
    """The create spec of one service; `secrets` holds a value for every secret the service refers to."""
    volumes = {v.name: v.docker_name for v in model.volumes}
    return ContainerCreateSpec(
        name=spec.container_name,
        image=spec.image,
        command=spec.command,
        entrypoint=spec.entrypoint,
        env={key: _env_value(value, secrets) for key, value in spec.env},
        user=spec.user,
        labels=dict(spec.labels),
        healthcheck=_healthcheck(spec),
        stop_timeout_s=spec.stop_grace_s,
        # Publish on the model's address only, never on docker's default 0.0.0.0.
        port_bindings={f"{p.container_port}/{p.protocol}": (p.host_ip, p.host_port) for p in spec.ports},
        volume_binds={volumes[m.volume]: (m.target, "ro" if m.read_only else "rw") for m in spec.mounts},
        memory_bytes=spec.memory_mb * 1024 * 1024,
        cap_add=spec.cap_add,
        cap_drop=spec.cap_drop,
        security_opts=spec.security_opts,
        log_driver="json-file",
        log_options=dict(spec.log_options),
        restart_policy=spec.restart,
        network=model.network.docker_name,
        aliases=spec.aliases,
        uploads=tuple(Upload(u.target, u.content, 0o755 if u.executable else 0o644) for u in spec.uploads),
        ready_timeout_s=spec.ready_timeout_s(),
        read_only_rootfs=spec.read_only_rootfs,
        tmpfs=dict(spec.tmpfs) or None,
    )


def render_environment(model: EnvironmentModel, secrets: Mapping[str, str]) -> dict[str, ContainerCreateSpec]:
    """Every service's create spec, by logical service name."""
    return {spec.name: render_container(model, spec, secrets) for spec in model.services}


def _env_value(value: EnvValue, secrets: Mapping[str, str]) -> str:
    if not isinstance(value, SecretRef):
        return value
    salt = secrets[value.salt_key] if value.salt_key else None
    return resolve_secret(value, secrets[value.key], salt)


def _healthcheck(spec: ServiceSpec) -> dict[str, Any] | None:
    check = spec.healthcheck
    if check is None:
        return None
    return {
        "test": list(check.test),
        "interval": check.interval_s * NANOSECONDS,
        "timeout": check.timeout_s * NANOSECONDS,
        "retries": check.retries,
        "start_period": check.start_period_s * NANOSECONDS,
    }
