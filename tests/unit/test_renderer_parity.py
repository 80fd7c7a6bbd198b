"""Both renderers create the same containers: the Pulumi program and the local renderer, for every stack file.

For each stack file (including any `kaizenity bootstrap` adds), the settings the local engine would use (the
stack file with the local TLS override, see infra/local_overrides.py) are rendered twice: by the Pulumi program
under `pulumi.runtime.set_mocks`, and by `infra.container_spec` (what the local engine hands to Docker). Both are
normalised into one vocabulary and compared container by container, property by property. A guard checks that
the comparison covers every field of `ServiceSpec`, so a property added to the model without teaching both
renderers (and this test) fails here.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest

from infra.container_spec import NANOSECONDS, ContainerCreateSpec, render_environment
from infra.environment import build_environment
from infra.local_overrides import local_config
from infra.model import EnvironmentModel, ServiceSpec
from infra.settings_validation import parse_settings
from infra.stack_files import available_stacks
from tests.unit.pulumi_harness import TEST_SECRETS, Registered, Rendered, render, unwrap

STACKS = available_stacks()

# ServiceSpec fields -> the normalised properties that carry them. Fields that are not container properties
# say why instead.
COVERAGE: dict[str, tuple[str, ...] | str] = {
    "name": "the logical name: the key both renderings are matched by",
    "kind": "which Pulumi component type holds the container: not a container property",
    "container_name": ("name",),
    "image": ("image",),
    "command": ("command",),
    "entrypoint": ("entrypoint",),
    "env": ("env",),
    "ports": ("ports",),
    "mounts": ("mounts",),
    "uploads": ("uploads",),
    "healthcheck": ("healthcheck", "ready_timeout_s"),
    "restart": ("restart",),
    "memory_mb": ("memory_mb",),
    "user": ("user",),
    "aliases": ("network", "aliases"),
    "depends_on": "start order: compared separately (test_dependencies_order_the_same_way)",
    "cap_drop": ("cap_drop",),
    "cap_add": ("cap_add",),
    "security_opts": ("security_opts",),
    "labels": ("labels",),
    "stop_grace_s": ("stop_grace_s",),
    "log_options": ("log_driver", "log_options"),
    "read_only_rootfs": ("read_only_rootfs",),
    "tmpfs": ("tmpfs",),
}


def settings_config(stack: str) -> dict[str, Any]:
    """What the local engine validates for `stack` (the local TLS override included), with test secrets."""
    return {**local_config(stack), **TEST_SECRETS}


def model_for(stack: str) -> EnvironmentModel:
    return build_environment(parse_settings(stack, settings_config(stack)))


def _seconds(text: str) -> int:
    match = re.fullmatch(r"(\d+)s", text)
    assert match, f"duration {text!r} is not whole seconds"
    return int(match[1])


def from_pulumi(container: Registered, image_names: dict[str, str]) -> dict[str, Any]:
    """A registered docker:Container's inputs in the normalised vocabulary."""
    inputs = {key: unwrap(value) for key, value in container.inputs.items()}
    check = inputs.get("healthcheck")
    networks = inputs["networksAdvanced"]
    assert len(networks) == 1
    return {
        "name": inputs["name"],
        "image": image_names[inputs["image"]],
        "command": tuple(inputs["command"]) if inputs.get("command") else None,
        "entrypoint": tuple(inputs["entrypoints"]) if inputs.get("entrypoints") else None,
        "env": dict(unwrap(entry).split("=", 1) for entry in inputs.get("envs", [])),
        "ports": sorted(
            (p["ip"], int(p["external"]), int(p["internal"]), p["protocol"]) for p in inputs.get("ports", [])
        ),
        "mounts": sorted((v["volumeName"], v["containerPath"], bool(v["readOnly"])) for v in inputs.get("volumes", [])),
        "uploads": sorted((u["file"], u["content"], bool(u["executable"])) for u in inputs.get("uploads", [])),
        "healthcheck": None
        if check is None
        else (
            tuple(check["tests"]),
            _seconds(check["interval"]),
            _seconds(check["timeout"]),
            int(check["retries"]),
            _seconds(check["startPeriod"]),
        ),
        "ready_timeout_s": int(inputs["waitTimeout"]) if inputs.get("wait") else None,
        "restart": inputs["restart"],
        "memory_mb": int(inputs["memory"]),
        "user": inputs.get("user"),
        "network": networks[0]["name"],
        "aliases": tuple(networks[0].get("aliases", [])),
        "cap_drop": tuple(inputs["capabilities"].get("drops", [])),
        "cap_add": tuple(inputs["capabilities"].get("adds", [])),
        "security_opts": tuple(inputs.get("securityOpts", [])),
        "labels": {item["label"]: item["value"] for item in inputs.get("labels", [])},
        "stop_grace_s": int(inputs["stopTimeout"]),
        "destroy_grace_s": int(inputs["destroyGraceSeconds"]),
        "log_driver": inputs["logDriver"],
        "log_options": dict(inputs.get("logOpts", {})),
        "read_only_rootfs": bool(inputs.get("readOnly", False)),
        "tmpfs": dict(inputs.get("tmpfs", {})),
    }


def from_local(create: ContainerCreateSpec) -> dict[str, Any]:
    """A local create spec in the normalised vocabulary."""
    check = create.healthcheck
    return {
        "name": create.name,
        "image": create.image,
        "command": create.command,
        "entrypoint": create.entrypoint,
        "env": dict(create.env),
        "ports": sorted(
            (ip, port, int(key.split("/")[0]), key.split("/")[1]) for key, (ip, port) in create.port_bindings.items()
        ),
        "mounts": sorted((volume, target, mode == "ro") for volume, (target, mode) in create.volume_binds.items()),
        "uploads": sorted((u.target, u.content, bool(u.mode & 0o111)) for u in create.uploads),
        "healthcheck": None
        if check is None
        else (
            tuple(check["test"]),
            int(check["interval"]) // NANOSECONDS,
            int(check["timeout"]) // NANOSECONDS,
            int(check["retries"]),
            int(check["start_period"]) // NANOSECONDS,
        ),
        "ready_timeout_s": create.ready_timeout_s if check is not None else None,
        "restart": create.restart_policy,
        "memory_mb": create.memory_bytes // (1024 * 1024),
        "user": create.user,
        "network": create.network,
        "aliases": create.aliases,
        "cap_drop": create.cap_drop,
        "cap_add": create.cap_add,
        "security_opts": create.security_opts,
        "labels": dict(create.labels),
        "stop_grace_s": create.stop_timeout_s,
        # The local engine removes its containers outright (`docker rm -f`); Pulumi stops them first, for as long
        # as a `docker stop` may take: the same grace.
        "destroy_grace_s": create.stop_timeout_s,
        "log_driver": create.log_driver,
        "log_options": dict(create.log_options),
        "read_only_rootfs": create.read_only_rootfs,
        "tmpfs": dict(create.tmpfs or {}),
    }


_RENDERED: dict[str, Rendered] = {}


def pulumi_render(stack: str) -> Rendered:
    if stack not in _RENDERED:
        _RENDERED[stack] = render(stack, settings_config(stack))
    return _RENDERED[stack]


def test_coverage_names_every_service_field() -> None:
    fields = {field.name for field in dataclasses.fields(ServiceSpec)}
    assert set(COVERAGE) == fields, "teach both renderers and this test the new ServiceSpec field(s)"
    normalised = set(from_local(next(iter(render_environment(model_for("ci"), TEST_SECRETS).values()))))
    covered = {prop for value in COVERAGE.values() if isinstance(value, tuple) for prop in value}
    assert covered <= normalised


@pytest.mark.parametrize("stack", STACKS)
def test_both_renderers_create_the_same_containers(stack: str) -> None:
    model = model_for(stack)
    local = {create.name: from_local(create) for create in render_environment(model, TEST_SECRETS).values()}
    rendered = pulumi_render(stack)
    pulumi = {name: from_pulumi(c, rendered.image_names()) for name, c in rendered.containers().items()}
    assert sorted(pulumi) == sorted(local)
    for name, expected in local.items():
        differing = {
            key: (pulumi[name].get(key), value) for key, value in expected.items() if pulumi[name].get(key) != value
        }
        assert differing == {}, f"{stack}/{name}: (pulumi, local) differ"
        assert set(pulumi[name]) == set(expected)


@pytest.mark.parametrize("stack", STACKS)
def test_dependencies_order_the_same_way(stack: str) -> None:
    """Pulumi creates a container after those it depends on; the local engine starts it in a later wave."""
    model = model_for(stack)
    rendered = pulumi_render(stack)
    containers = rendered.containers()
    wave_of = {spec.name: index for index, wave in enumerate(model.start_order()) for spec in wave}
    for spec in model.services:
        deps = {rendered.by_urn(urn).inputs.get("name") for urn in containers[spec.container_name].dependencies}
        for dependency in spec.depends_on:
            assert model.service(dependency).container_name in deps, (spec.name, dependency)
            assert wave_of[dependency] < wave_of[spec.name]
