"""`kaizenity rotate --local`: rotate one secret of a local-engine environment, the way `pulumi up` does.

Same order as the Pulumi path: the in-place step first with the old secret (infra/rotation.py: ALTER ROLE inside
the running PostgreSQL, or n8n's owner password through its REST API), then the new value is recorded in the
environment's state file, then every container whose environment carries the secret is recreated with the new
value (as terraform-provider-docker replaces a container whose env changed), wave by wave in the model's start
order, each waited for until its health check passes. Volumes and everything stored in them stay.

A container is recreated from its own `docker inspect` (image, command, host config, labels, health check) with
only the rotated variables changed, plus the files the model uploads into it, copied over from the old one: the
rotation must not depend on how the local engine chose ports or images when it started the environment.
"""

from __future__ import annotations

import io
import posixpath
import tarfile
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from infra.environment import build_environment
from infra.local_endpoints import LocalEndpoints
from infra.local_overrides import local_prefix, recorded_settings
from infra.local_seeding import seed_workflows
from infra.local_state import load_state, save_state
from infra.model import EnvironmentModel, SecretRef, ServiceSpec, resolve_secret
from infra.rotation import RotationError, alter_role_password, change_owner_password, role_of, rotation_for
from infra.secret_generation import generate_secrets, placeholder_secrets

Progress = Callable[[str], None]


def rotate_local(
    stack: str, key: str, new_value: str | None = None, *, prefix: str | None = None, progress: Progress | None = None
) -> LocalEndpoints:
    """Rotate `key` of the local environment of `stack` (or `prefix`); returns its updated endpoints."""
    say = progress or (lambda _m: None)
    rotation = rotation_for(key)
    prefix = prefix or local_prefix(stack)
    endpoints = load_state(prefix)
    if endpoints is None:
        raise RotationError(f"no local environment {prefix} is recorded: start it with `kaizenity up --local`.")
    old = endpoints.secrets[key]
    new = new_value or generate_secrets([key])[key]
    if new == old:
        raise RotationError(f"rotating {key}: the new value equals the current one; nothing to do.")
    client = _docker()
    postgres = client.containers.get(endpoints.containers["postgres"])
    postgres_env = _env_of(postgres.attrs)
    role = role_of(rotation, postgres_env)
    if role:
        superuser_password = endpoints.secrets["postgresPassword"]
        alter_role_password(postgres, postgres_env["POSTGRES_USER"], superuser_password, role, new, secret_key=key)
        say(f"{key}: password of role {role} changed in PostgreSQL")
    if rotation.n8n_owner:
        if not endpoints.n8n_url:
            raise RotationError(f"rotating {key}: environment {prefix} does not publish n8n on this host")
        change_owner_password(endpoints.n8n_url, old, new)
        say(f"{key}: n8n owner password changed")
    if not endpoints.settings_config:
        say(
            f"{prefix}: its state does not record the settings it was started with (started before they were "
            "recorded): the stack file's are used; containers that only an override added are not rotated"
        )
    _record(endpoints, key, new)
    save_state(endpoints)
    salts = endpoints.secrets  # a bcrypt secret keeps its salt secret (gatewayEditorPasswordSalt)
    for spec, refs in carriers(model_of(endpoints), key):
        updates = {
            name: resolve_secret(ref, new, salts.get(ref.salt_key) if ref.salt_key else None) for name, ref in refs
        }
        if spec.name in endpoints.containers:
            recreate_with_env(client, spec, endpoints.containers[spec.name], endpoints.network, updates, say=say)
    if rotation.reseed and endpoints.n8n_url and endpoints.database_url:
        seed_workflows(endpoints, progress=say)
        save_state(endpoints)
        say(f"{key}: n8n credentials re-seeded")
    return endpoints


def _docker() -> Any:
    from infra.docker_engine import docker_client

    return docker_client()


def model_of(endpoints: LocalEndpoints) -> EnvironmentModel:
    """The environment's model as it was started (the settings its state records, overrides included), for env
    variable names, uploads and start order (secrets and ports do not matter)."""
    settings = recorded_settings(
        endpoints.stack, endpoints.settings_config, placeholder_secrets(), prefix=endpoints.prefix
    )
    return build_environment(settings)


def carriers(model: EnvironmentModel, key: str) -> list[tuple[ServiceSpec, list[tuple[str, SecretRef]]]]:
    """Every service whose environment carries secret `key`, with those variables, in the model's start order."""
    found = []
    for wave in model.start_order():
        for spec in wave:
            refs = [(name, value) for name, value in spec.env if isinstance(value, SecretRef) and value.key == key]
            if refs:
                found.append((spec, refs))
    return found


def _env_of(attrs: Mapping[str, Any]) -> dict[str, str]:
    return dict(item.split("=", 1) for item in attrs["Config"].get("Env") or [] if "=" in item)


def _record(endpoints: LocalEndpoints, key: str, new: str) -> None:
    """The new value in the state, and in the URLs that embed it."""
    endpoints.secrets[key] = new
    if key == "gatewayEditorPassword":
        endpoints.editor_password = new
    if key == "postgresPassword" and endpoints.database_url:
        endpoints.database_url = _with_password(endpoints.database_url, new)
    if key == "n8nDbPassword" and endpoints.n8n_database_url:
        endpoints.n8n_database_url = _with_password(endpoints.n8n_database_url, new)
    if key == "redisPassword" and endpoints.redis_url:  # the health probes' and tests' way to Redis
        endpoints.redis_url = _with_password(endpoints.redis_url, new)


def _with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    netloc = f"{parts.username or ''}:{quote(password, safe='')}@{parts.hostname}:{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def recreate_with_env(
    client: Any, spec: ServiceSpec, name: str, network: str, updates: Mapping[str, str], *, say: Progress
) -> None:
    """Replace container `name` by one identical but for the `updates` env values; wait until it is healthy."""
    old = client.containers.get(name)
    attrs = old.attrs
    uploads = {u.target: _read_archive(old, u.target) for u in spec.uploads}
    env = {**_env_of(attrs), **updates}
    old.stop(timeout=spec.stop_grace_s)
    old.remove(v=True)  # its anonymous volumes too (an image VOLUME it did not mount); named ones stay
    config = attrs["Config"]
    created = client.api.create_container(
        image=config["Image"],
        command=config.get("Cmd"),
        entrypoint=config.get("Entrypoint"),
        environment=[f"{k}={v}" for k, v in env.items()],
        user=config.get("User") or None,
        labels=config.get("Labels") or {},
        healthcheck=config.get("Healthcheck"),
        ports=list(config.get("ExposedPorts") or {}),
        host_config=attrs["HostConfig"],
        networking_config=client.api.create_networking_config(
            {network: client.api.create_endpoint_config(aliases=list(spec.aliases))}
        ),
        name=name,
    )
    for target, archive in uploads.items():
        client.api.put_archive(created["Id"], posixpath.dirname(target), archive)
    client.api.start(created["Id"])
    started = time.monotonic()
    wait_healthy(client, name, spec.ready_timeout_s())
    say(f"{spec.name}: recreated with the new secret, healthy after {time.monotonic() - started:.1f} s")


def _read_archive(container: Any, path: str) -> bytes:
    """The tar archive of one file, as `put_archive` takes it back."""
    stream, _ = container.get_archive(path)
    data = b"".join(stream)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.getmembers()  # a readable archive, or fail before the old container is removed
    return data


def wait_healthy(client: Any, name: str, timeout_s: float) -> None:
    """Until Docker reports the container healthy (its model health check), or fail naming the last check output."""
    deadline = time.monotonic() + timeout_s
    while True:
        state = client.api.inspect_container(name)["State"]
        health = (state.get("Health") or {}).get("Status")
        if health == "healthy":
            return
        if not state.get("Running") or time.monotonic() > deadline:
            log = ((state.get("Health") or {}).get("Log") or [{}])[-1].get("Output", "")
            raise RotationError(
                f"container {name} did not become healthy after the rotation (state {state.get('Status')}, "
                f"health {health}): {str(log).strip()[-300:]}. Its logs: `docker logs {name}`."
            )
        time.sleep(0.5)
