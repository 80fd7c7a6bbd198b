"""The local engine's overrides of a stack file: what makes a stack runnable on this machine, nothing else.

Each override is explicit and printed by `kaizenity up`: a unique name prefix, free host ports, the offline
images, throw-away secrets, and for stacks with public TLS (`tlsMode: acme`, which needs a public DNS name
pointing at this host) the local TLS override: Caddy's own CA on localhost, published on loopback only.
Everything else is the stack file's own, so a local run renders the same containers `pulumi up` would.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from infra.host_ports import free_port
from infra.secrets import BY_KEY
from infra.settings import Settings
from infra.settings_validation import parse_settings
from infra.stack_files import load_stack_config
from infra.versions import offline_images

# acme -> Caddy's local CA; the site must answer on localhost, and nothing of a laptop's may listen beyond it.
# `publicUrl` names the real host, whose certificate this machine cannot have: dropped.
LOCAL_TLS_OVERRIDE: dict[str, Any] = {"tlsMode": "internal", "domain": "localhost", "bindAddress": "127.0.0.1"}
_DROPPED_BY_TLS_OVERRIDE = ("publicUrl",)


def local_prefix(stack: str) -> str:
    """Name prefix of a stack's local-engine environment (distinct from what `pulumi up` names)."""
    return f"kaizenity-{stack}-local"


def offline_requested() -> bool:
    """`KAIZENITY_OFFLINE_IMAGES=1` switches every stack to the locally built images."""
    return os.environ.get("KAIZENITY_OFFLINE_IMAGES", "").strip().lower() in {"1", "true", "yes"}


def local_tls_override(config: Mapping[str, Any]) -> dict[str, Any]:
    """`config` with the local TLS override applied when its gateway wants public TLS (acme); else unchanged."""
    gateway = dict(config.get("gateway") or {})
    if str(gateway.get("tlsMode", "")).lower() != "acme":
        return dict(config)
    for key in _DROPPED_BY_TLS_OVERRIDE:
        gateway.pop(key, None)
    return {**config, "gateway": {**gateway, **LOCAL_TLS_OVERRIDE}}


def tls_override_note(stack: str) -> str | None:
    """What the local TLS override changes for `stack`, for the person running it; None when it does not apply."""
    gateway = load_stack_config(stack).values.get("gateway") or {}
    if str(gateway.get("tlsMode", "")).lower() != "acme":
        return None
    return (
        f"stack '{stack}' uses public TLS (tlsMode acme, {gateway.get('domain', '?')}): the local engine runs it on "
        "Caddy's local CA at https://localhost, published on 127.0.0.1 only (local TLS override)"
    )


def local_config(
    stack: str,
    *,
    prefix: str | None = None,
    offline: bool = False,
    free_ports: bool = False,
    secrets: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The raw config (stack-file keys, no namespace) the local engine validates: the stack file's, overridden.

    `overrides` replaces whole top-level sections (e.g. {"backups": {"enabled": True}}) for tests and drills."""
    config: dict[str, Any] = {
        k: (dict(v) if isinstance(v, dict) else v) for k, v in load_stack_config(stack).values.items()
    }
    config = local_tls_override(config)
    if prefix:
        config["namePrefix"] = prefix
    if offline:
        config["images"] = {**config.get("images", {}), **offline_images()}
    if free_ports:
        config["gateway"] = {**config.get("gateway", {}), "httpPort": free_port(), "httpsPort": free_port()}
        config["postgres"] = {**config.get("postgres", {}), "hostPort": free_port()}
        config["n8n"] = {**config.get("n8n", {}), "hostPort": free_port()}
        config["redis"] = {**config.get("redis", {}), "hostPort": free_port()}
    config.update(overrides or {})
    config.update(secrets or {})
    return config


def local_settings(
    stack: str,
    *,
    prefix: str | None = None,
    offline: bool = False,
    free_ports: bool = False,
    secrets: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Settings of `stack` with the local-run overrides applied, validated like any stack's."""
    config = local_config(
        stack, prefix=prefix, offline=offline, free_ports=free_ports, secrets=secrets, overrides=overrides
    )
    return parse_settings(stack, config, source=f"stack '{stack}' (local engine)")


def recordable_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """`config` (from :func:`local_config`) without its secret values: what a local environment's state records as
    the settings it was started with (the state file keeps the secrets apart, in `secrets`)."""
    return {key: value for key, value in config.items() if key not in BY_KEY}


def recorded_settings(
    stack: str, recorded: Mapping[str, Any], secrets: Mapping[str, str], *, prefix: str | None = None
) -> Settings:
    """The settings a local environment was started with (`recorded`: :func:`recordable_config` of its config), with
    `secrets`; where nothing was recorded (a state file older than the record), the stack file's as
    :func:`local_settings` renders it, which misses the overrides it may have been started with."""
    if not recorded:
        return local_settings(stack, prefix=prefix, secrets=secrets)
    config = {**recordable_config(recorded), **secrets}
    if prefix:
        config["namePrefix"] = prefix
    return parse_settings(stack, config, source=f"stack '{stack}' (local environment {prefix or ''} as started)")
