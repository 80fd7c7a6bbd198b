"""The testcontainers renderer: runs the environment model for real on the local Docker engine.

CI and laptops have no Pulumi state, so they bring the environment up through here: the same
:class:`~infra.model.EnvironmentModel` that `pulumi up` renders, started as testcontainers containers on the
model's private network with the model's aliases, volumes, uploads, limits and health checks. Nothing about a
container is decided here; this module only translates and waits.

Ryuk (testcontainers' reaper) cannot be pulled on offline hosts, so clean-up is ours: every object carries the
environment's labels and :func:`remove_environment` deletes them by label, from any process.
"""

from __future__ import annotations

import io
import os
import tarfile
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infra.model import EnvironmentModel, SecretRef, ServiceSpec, resolve_secret
from infra.services.common import LABEL_PREFIX

if TYPE_CHECKING:
    from testcontainers.core.container import DockerContainer

Progress = Callable[[str], None]
CADDY_ROOT_CA = "/data/caddy/pki/authorities/local/root.crt"


def configure_testcontainers() -> None:
    """Settings testcontainers reads at import time; call before importing it.

    Ryuk's image cannot be pulled offline; and inside a container-like host (`/.dockerenv`) testcontainers
    would otherwise talk to the bridge gateway instead of the engine we publish ports on.
    """
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    os.environ.setdefault("TESTCONTAINERS_CONNECTION_MODE", "docker_host")


class LocalStackError(RuntimeError):
    """A service of the local environment did not come up; the message says which, why and what to do."""


@dataclass
class RunningEnvironment:
    """A started environment: the model it came from and the containers that run it."""

    model: EnvironmentModel
    containers: dict[str, DockerContainer] = field(default_factory=dict)
    ca_certificate: str | None = None  # Caddy's local root CA (PEM) when the gateway uses `tls internal`
    startup_seconds: dict[str, float] = field(default_factory=dict)


class LocalStack:
    """Bring an environment model up on the local engine, and take it down again, leaving nothing behind."""

    def __init__(self, model: EnvironmentModel, secrets: Mapping[str, str], progress: Progress | None = None) -> None:
        missing = sorted({key for s in model.services for key in s.secret_keys()} - set(secrets))
        if missing:
            raise LocalStackError(f"no value for secret(s) {', '.join(missing)}: the local engine generates them")
        self.model = model
        self._secrets = dict(secrets)
        self._progress = progress or (lambda _message: None)
        self.running = RunningEnvironment(model)

    def up(self) -> RunningEnvironment:
        """Create the network and volumes, then start the services wave by wave, each wave in parallel.

        On any failure, everything created so far is removed before the error is raised.
        """
        configure_testcontainers()
        try:
            self._create_network_and_volumes()
            for wave in self.model.start_order():
                self._start_wave(wave)
            self.running.ca_certificate = self._caddy_root_ca()
        except BaseException:
            self.down()
            raise
        return self.running

    def down(self) -> None:
        """Remove every container, volume and the network of this environment (by label)."""
        remove_environment(self.model.prefix, self._progress)
        self.running.containers.clear()

    def __enter__(self) -> RunningEnvironment:
        return self.up()

    def __exit__(self, *_: object) -> None:
        self.down()

    # ----------------------------------------------------------------------------------------------------------

    def _create_network_and_volumes(self) -> None:
        client = docker_client()
        labels = dict(self.model.labels)
        client.networks.create(
            self.model.network.docker_name,
            driver="bridge",
            internal=self.model.network.internal,
            labels=labels,
        )
        for volume in self.model.volumes:
            client.volumes.create(name=volume.docker_name, labels=labels)

    def _start_wave(self, wave: list[ServiceSpec]) -> None:
        with ThreadPoolExecutor(max_workers=len(wave)) as pool:
            futures = {spec.name: pool.submit(self._start_service, spec) for spec in wave}
        errors = [f"{name}: {future.exception()}" for name, future in futures.items() if future.exception()]
        if errors:
            raise LocalStackError("service(s) did not become ready:\n" + "\n".join(errors))

    def _start_service(self, spec: ServiceSpec) -> None:
        started = time.monotonic()
        self._progress(f"starting {spec.name} ({spec.image})")
        container = self._container_for(spec)
        self.running.containers[spec.name] = container
        container.start()
        elapsed = time.monotonic() - started
        self.running.startup_seconds[spec.name] = elapsed
        self._progress(f"{spec.name} ready in {elapsed:.1f} s")

    def _container_for(self, spec: ServiceSpec) -> DockerContainer:
        from docker.types import LogConfig
        from testcontainers.core.container import DockerContainer

        from infra.local_readiness import ServiceReady

        volumes = {v.name: v.docker_name for v in self.model.volumes}
        container = _uploading_container_class(DockerContainer)(spec.image, name=spec.container_name)
        container.with_command(list(spec.command) if spec.command else None)  # type: ignore[arg-type]
        container.with_envs(**{key: self._env_value(value) for key, value in spec.env})
        for port in spec.ports:
            # docker-py takes (host address, host port): publish on the model's address only, never 0.0.0.0.
            container.ports[f"{port.container_port}/{port.protocol}"] = (port.host_ip, port.host_port)  # type: ignore[assignment]
        for mount in spec.mounts:
            container.with_volume_mapping(volumes[mount.volume], mount.target, "ro" if mount.read_only else "rw")
        for upload in spec.uploads:
            container.with_copy_into_container(
                upload.content.encode(), upload.target, 0o755 if upload.executable else 0o644
            )
        container.tmpfs.update(dict(spec.tmpfs))  # testcontainers passes its own `tmpfs` to create()
        container.with_kwargs(**_create_kwargs(spec, self.model.network.docker_name, LogConfig))
        container.waiting_for(ServiceReady(spec, self._progress).with_startup_timeout(spec.ready_timeout_s()))
        return container

    def _env_value(self, value: str | SecretRef) -> str:
        if not isinstance(value, SecretRef):
            return value
        salt = self._secrets[value.salt_key] if value.salt_key else None
        return resolve_secret(value, self._secrets[value.key], salt)

    def _caddy_root_ca(self) -> str | None:
        gateway = self.running.containers.get("gateway")
        if gateway is None or not any(u.content.count("tls internal") for u in self.model.service("gateway").uploads):
            return None
        return read_file_from_container(gateway.get_wrapped_container(), CADDY_ROOT_CA)


def _uploading_container_class(base: type[DockerContainer]) -> type[DockerContainer]:
    """testcontainers' container, uploading each file into its own directory instead of the root.

    testcontainers puts every upload as an archive at `/`, which Docker refuses for a read-only root filesystem
    ("container rootfs is marked read-only") even when the file's directory is a volume; an archive put at the
    file's directory is accepted there, as `pulumi-docker` uploads are.
    """

    class UploadingContainer(base):  # type: ignore[valid-type,misc]
        def _transfer_into_container(self, transferable: Any, destination_in_container: str, mode: int) -> None:
            directory, name = os.path.split(destination_in_container)
            buffer = io.BytesIO()
            with tarfile.open(fileobj=buffer, mode="w") as archive:
                data = bytes(transferable)
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(data), mode
                archive.addfile(info, io.BytesIO(data))
            if not self._container.put_archive(path=directory or "/", data=buffer.getvalue()):
                raise LocalStackError(f"could not upload {destination_in_container}: Docker refused the archive")

    return UploadingContainer


def _create_kwargs(spec: ServiceSpec, network: str, log_config: Any) -> dict[str, Any]:
    """docker-py `create` arguments for what testcontainers has no builder method for."""
    kwargs: dict[str, Any] = {
        "network": network,
        "networking_config": {network: _endpoint_config(spec)},
        "mem_limit": f"{spec.memory_mb}m",
        "cap_drop": list(spec.cap_drop),
        "cap_add": list(spec.cap_add),
        "security_opt": list(spec.security_opts),
        "labels": dict(spec.labels),
        "log_config": log_config(type="json-file", config=dict(spec.log_options)),
        "restart_policy": {"Name": spec.restart},
    }
    if spec.user:
        kwargs["user"] = spec.user
    if spec.read_only_rootfs:
        kwargs["read_only"] = True

    if spec.healthcheck:
        check = spec.healthcheck
        kwargs["healthcheck"] = {
            "test": list(check.test),
            "interval": check.interval_s * 1_000_000_000,
            "timeout": check.timeout_s * 1_000_000_000,
            "retries": check.retries,
            "start_period": check.start_period_s * 1_000_000_000,
        }
    return kwargs


def _endpoint_config(spec: ServiceSpec) -> Any:
    from docker.types import EndpointConfig

    return EndpointConfig("1.41", aliases=list(spec.aliases))


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
            raise LocalStackError(f"{path} in {container.name} is not a file")
        return extracted.read().decode()


def remove_environment(prefix: str, progress: Progress | None = None) -> dict[str, int]:
    """Delete every container, network and volume labelled with this environment prefix. Idempotent.

    Containers go first (network and volumes cannot be removed while in use). Returns the counts removed.
    """
    import docker.errors

    client = docker_client()
    selector = {"label": f"{LABEL_PREFIX}={prefix}"}
    counts = {"containers": 0, "networks": 0, "volumes": 0}
    for container in client.containers.list(all=True, filters=selector):
        container.remove(force=True, v=True)
        counts["containers"] += 1
    for network in client.networks.list(filters=selector):
        network.remove()
        counts["networks"] += 1
    for volume in client.volumes.list(filters=selector):
        try:
            volume.remove(force=True)
            counts["volumes"] += 1
        except docker.errors.NotFound:
            pass
    if progress and any(counts.values()):
        progress(
            f"removed {counts['containers']} containers, {counts['networks']} networks, {counts['volumes']} volumes"
        )
    return counts


def write_private_file(path: Path, text: str) -> None:
    """Write a file only its owner can read (state files hold generated secrets)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
