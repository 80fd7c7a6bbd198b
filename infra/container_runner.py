"""Start an environment model's containers on the local Docker engine, and remove them again.

The containers are created from the local renderer's create specs (`infra.container_spec`) through docker-py's
low-level API, which takes every property the model has (testcontainers' builder has no stop timeout), files are
put in with testcontainers' transfer archive, and readiness is the model's health check
(`infra.local_readiness`). Services start wave by wave in dependency order, each wave in parallel.

Ryuk (testcontainers' reaper) cannot be pulled on offline hosts, so clean-up is ours: every object carries the
environment's labels and :func:`remove_environment` deletes them by label, from any process.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from infra.container_spec import ContainerCreateSpec, render_container
from infra.docker_engine import docker_client, read_file_from_container
from infra.model import EnvironmentModel, ServiceSpec
from infra.services.common import LABEL_PREFIX

Progress = Callable[[str], None]


def configure_testcontainers() -> None:
    """Settings testcontainers reads at import time; call before importing it.

    Ryuk's image cannot be pulled offline; and inside a container-like host (`/.dockerenv`) testcontainers
    would otherwise talk to the bridge gateway instead of the engine we publish ports on.
    """
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    os.environ.setdefault("TESTCONTAINERS_CONNECTION_MODE", "docker_host")


class ContainerRunnerError(RuntimeError):
    """A service of the local environment did not come up; the message says which, why and what to do."""


@dataclass
class RunningEnvironment:
    """A started environment: the model it came from and the containers that run it (docker-py objects)."""

    model: EnvironmentModel
    containers: dict[str, Any] = field(default_factory=dict)
    ca_certificate: str | None = None  # the gateway's local root CA (PEM) when the model says it has one
    startup_seconds: dict[str, float] = field(default_factory=dict)


class ContainerRunner:
    """Bring an environment model up on the local engine, and take it down again, leaving nothing behind."""

    def __init__(self, model: EnvironmentModel, secrets: Mapping[str, str], progress: Progress | None = None) -> None:
        missing = sorted(model.secret_keys() - set(secrets))
        if missing:
            raise ContainerRunnerError(f"no value for secret(s) {', '.join(missing)}: the local engine generates them")
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
            self.running.ca_certificate = self._local_root_ca()
        except BaseException:
            self.down()
            raise
        return self.running

    def start_service(self, spec: ServiceSpec) -> None:
        """Start one service of the model and wait until it is ready (rolling replacement, infra/scaling.py)."""
        configure_testcontainers()
        self._start_service(spec)

    def down(self) -> None:
        """Remove every container, volume and the network of this environment (by label)."""
        remove_environment(self.model.prefix, self._progress)
        self.running.containers.clear()

    def __enter__(self) -> RunningEnvironment:
        return self.up()

    def __exit__(self, *_: object) -> None:
        self.down()

    def _create_network_and_volumes(self) -> None:
        client = docker_client()
        labels = dict(self.model.labels)
        client.networks.create(
            self.model.network.docker_name, driver="bridge", internal=self.model.network.internal, labels=labels
        )
        for volume in self.model.volumes:
            client.volumes.create(name=volume.docker_name, labels=labels)

    def _start_wave(self, wave: list[ServiceSpec]) -> None:
        with ThreadPoolExecutor(max_workers=len(wave)) as pool:
            futures = {spec.name: pool.submit(self._start_service, spec) for spec in wave}
        errors = [f"{name}: {future.exception()}" for name, future in futures.items() if future.exception()]
        if errors:
            raise ContainerRunnerError("service(s) did not become ready:\n" + "\n".join(errors))

    def _start_service(self, spec: ServiceSpec) -> None:
        from infra.local_readiness import ServiceReady

        started = time.monotonic()
        self._progress(f"starting {spec.name} ({spec.image})")
        create = render_container(self.model, spec, self._secrets)
        container = create_container(docker_client(), create)
        self.running.containers[spec.name] = container
        container.start()
        ServiceReady(spec, self._progress).with_startup_timeout(create.ready_timeout_s).wait_until_ready(
            _Started(container)
        )
        elapsed = time.monotonic() - started
        self.running.startup_seconds[spec.name] = elapsed
        self._progress(f"{spec.name} ready in {elapsed:.1f} s")

    def _local_root_ca(self) -> str | None:
        ca_file = self.model.endpoints.local_ca_file
        gateway = self.running.containers.get("gateway")
        if ca_file is None or gateway is None:
            return None
        return read_file_from_container(gateway, ca_file)


@dataclass
class _Started:
    """What testcontainers' wait strategies expect of a container: the docker-py object behind it."""

    container: Any

    def get_wrapped_container(self) -> Any:
        return self.container


def create_container(client: Any, create: ContainerCreateSpec) -> Any:
    """Create (not start) one container exactly as `create` says, with its files in place."""
    from docker.types import LogConfig
    from testcontainers.core.transferable import build_transfer_tar

    api = client.api
    host_config = api.create_host_config(
        port_bindings=dict(create.port_bindings),
        binds={volume: {"bind": target, "mode": mode} for volume, (target, mode) in create.volume_binds.items()},
        mem_limit=create.memory_bytes,
        cap_add=list(create.cap_add),
        cap_drop=list(create.cap_drop),
        security_opt=list(create.security_opts),
        log_config=LogConfig(type=create.log_driver, config=create.log_options),
        restart_policy={"Name": create.restart_policy},
        read_only=create.read_only_rootfs,
        tmpfs=create.tmpfs,
    )
    networking = api.create_networking_config(
        {create.network: api.create_endpoint_config(aliases=list(create.aliases))}
    )
    created = api.create_container(
        create.image,
        command=list(create.command) if create.command else None,
        entrypoint=list(create.entrypoint) if create.entrypoint else None,
        name=create.name,
        environment=create.env,
        user=create.user,
        labels=create.labels,
        healthcheck=create.healthcheck,
        stop_timeout=create.stop_timeout_s,
        ports=[tuple(key.split("/")) for key in create.port_bindings],
        host_config=host_config,
        networking_config=networking,
    )
    container = client.containers.get(created["Id"])
    for upload in create.uploads:
        # An archive put at `/` is refused for a read-only root filesystem ("container rootfs is marked
        # read-only") even when the file's directory is a volume; put at that directory, it is accepted there.
        directory, name = os.path.split(upload.target)
        if not container.put_archive(directory or "/", build_transfer_tar(upload.content.encode(), name, upload.mode)):
            raise ContainerRunnerError(f"could not put {upload.target} into {create.name}")
    return container


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
