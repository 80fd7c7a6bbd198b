"""The state files of local environments: their endpoints and generated secrets, readable only by their owner.

`down`, `status`, the health checks and the seeder of another process find a local environment through these.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

from infra.local_endpoints import RETIRED_STATE_KEYS, LocalEndpoints
from infra.project_files import state_dir

__all__ = ["load_state", "save_state", "state_dir", "state_file", "write_private_file"]


def state_file(prefix: str) -> Path:
    """The state file of the local environment with this name prefix."""
    return state_dir() / f"{prefix}.json"


def write_private_file(path: Path, text: str) -> None:
    """Write a file only its owner can read (state files hold generated secrets)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)


def save_state(endpoints: LocalEndpoints) -> Path:
    """Record a running environment (0600: it holds the generated secrets)."""
    path = state_file(endpoints.prefix)
    write_private_file(path, json.dumps(asdict(endpoints), indent=2))
    return path


def load_state(prefix: str) -> LocalEndpoints | None:
    """The recorded endpoints of a local environment, or None."""
    path = state_file(prefix)
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    for key in RETIRED_STATE_KEYS:  # e.g. the n8n API key older versions kept
        data.pop(key, None)
    return LocalEndpoints(**data)


def remove_state(prefix: str) -> None:
    """Forget a local environment: its state file and its CA file."""
    for path in state_dir().glob(f"{prefix}*"):
        path.unlink(missing_ok=True)
