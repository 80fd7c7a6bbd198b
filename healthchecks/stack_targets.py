"""Probe targets from an environment the bundle brought up: the local engine's state, or Pulumi's outputs.

`kaizenity health --stack dev` then needs no other settings for the database, n8n and the gateway; a YAML
file and environment variables still override anything found here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any


class StackTargetsError(RuntimeError):
    """The stack's environment could not be found."""


def targets_for(stack: str) -> dict[str, Any]:
    """Settings (the --config YAML shape) for the stack's running environment."""
    local = _from_local_state(stack)
    if local is not None:
        return local
    if shutil.which("pulumi"):
        return _from_pulumi(stack)
    raise StackTargetsError(
        f"no environment found for stack '{stack}': no local environment kaizenity-{stack}-local and no Pulumi CLI. "
        f"Fix: `kaizenity up --stack {stack}` first, or pass targets with --config / environment variables."
    )


def _from_local_state(stack: str) -> dict[str, Any] | None:
    from infra import local_engine

    state = local_engine.load_state(f"kaizenity-{stack}-local")
    if state is None:
        return None
    settings: dict[str, Any] = {"gateway": {"url": state.gateway_url}}
    if state.ca_file:
        settings["gateway"].update(ca_file=state.ca_file, tls_internal=True)
    if state.database_url:
        settings["database"] = {"url": state.database_url}
    if state.n8n_url:
        settings["n8n"] = {"url": state.n8n_url, **({"api_key": state.n8n_api_key} if state.n8n_api_key else {})}
    return settings


def _from_pulumi(stack: str) -> dict[str, Any]:
    completed = subprocess.run(
        ["pulumi", "stack", "output", "--json", "--show-secrets", "--stack", stack],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    if completed.returncode != 0:
        raise StackTargetsError(f"`pulumi stack output --stack {stack}` failed: {completed.stderr.strip()[-400:]}")
    outputs = json.loads(completed.stdout or "{}")
    settings: dict[str, Any] = {"gateway": {"url": outputs.get("gatewayUrl")}}
    if outputs.get("databaseUrl"):
        settings["database"] = {"url": outputs["databaseUrl"]}
    if outputs.get("n8nHostUrl"):
        settings["n8n"] = {"url": outputs["n8nHostUrl"]}
    return settings
