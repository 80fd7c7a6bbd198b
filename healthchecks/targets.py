"""Targets from a deployed stack: the local engine's state file or ``pulumi stack output``.

Both give the same nested settings dict as ``--config`` and the environment (which override them), so
on-call can run ``kaizenity health --stack dev`` with no other setup. The local state file is read as
plain JSON rather than through ``infra.local_engine``, whose import pulls in testcontainers: a health run
must not pay for (or break on) the tooling that created the environment.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from healthchecks.config import ConfigError

PULUMI_TIMEOUT_SECONDS = 30

# stack output / local state key -> (section, key)
STACK_OUTPUTS: dict[str, tuple[str, str]] = {
    "gatewayUrl": ("gateway", "url"),
    "n8nHostUrl": ("n8n", "url"),
    "databaseUrl": ("database", "url"),
    "n8nReaderDatabaseUrl": ("n8n", "database_url"),
}
LOCAL_STATE: dict[str, tuple[str, str]] = {
    "gateway_url": ("gateway", "url"),
    "ca_file": ("gateway", "ca_file"),
    "n8n_url": ("n8n", "url"),
    "n8n_reader_database_url": ("n8n", "database_url"),
    "database_url": ("database", "url"),
    "redis_url": ("redis", "url"),
    "n8n_database_url": ("queue", "n8n_database_url"),
}


def state_dir(environ: Mapping[str, str]) -> Path:
    """Where the local engine records environments (``infra.project_files.state_dir``, for this `environ`)."""
    from infra.project_files import project_dir

    return Path(environ.get("KAIZENITY_STATE_DIR") or project_dir() / ".kaizenity" / "local")


def settings_from_stack(name: str, environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """Settings of the stack's local environment (`kaizenity-NAME-local`, or NAME as a prefix), else of the
    Pulumi stack NAME."""
    for prefix in (f"kaizenity-{name}-local", name):
        path = state_dir(environ) / f"{prefix}.json"
        if path.is_file():
            state = json.loads(path.read_text(encoding="utf-8"))
            settings = _pick(state, LOCAL_STATE)
            workers = [name for name in state.get("containers", {}) if name.startswith("n8n-worker-")]
            if workers and "redis" in settings:  # queue mode: the pool the stack declares is what must be live
                settings.setdefault("queue", {})["expected_workers"] = str(len(workers))
            if "backup" in state.get("containers", {}) and state.get("database_url"):
                settings.setdefault("backups", {})["url"] = state["database_url"]  # it runs a backup sidecar
            if "ca_file" in settings.get("gateway", {}):
                settings["gateway"]["tls_internal"] = "true"  # the local engine's gateway uses Caddy's local CA
            return settings
    if shutil.which("pulumi"):
        return _pick(_pulumi_outputs(name), STACK_OUTPUTS)
    raise ConfigError(
        [
            f"--stack {name}: no local environment {path} and no Pulumi CLI on PATH; bring it up "
            "(`kaizenity up`), pass the prefix printed by `kaizenity status`, or use --config / environment "
            "variables instead"
        ]
    )


def settings_from_outputs(outputs: Mapping[str, Any]) -> dict[str, Any]:
    """Settings from a ``pulumi stack output --json --show-secrets`` document."""
    return _pick(outputs, STACK_OUTPUTS)


def _pulumi_outputs(name: str) -> dict[str, Any]:
    command = ["pulumi", "stack", "output", "--json", "--show-secrets", "--stack", name]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PULUMI_TIMEOUT_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        raise ConfigError([f"--stack {name}: `pulumi stack output` took over {PULUMI_TIMEOUT_SECONDS} s"]) from None
    if done.returncode != 0:
        reason = done.stderr.strip().splitlines()[-1:] or ["no error text"]
        raise ConfigError([f"--stack {name}: `pulumi stack output` failed ({reason[0]}); check `pulumi whoami`"])
    outputs = json.loads(done.stdout or "{}")
    return outputs if isinstance(outputs, dict) else {}


def _pick(source: Mapping[str, Any], mapping: Mapping[str, tuple[str, str]]) -> dict[str, Any]:
    settings: dict[str, dict[str, Any]] = {}
    for key, (section, name) in mapping.items():
        value = source.get(key)
        if value not in (None, ""):
            settings.setdefault(section, {})[name] = str(value)
    return dict(settings)
