"""Deploy the seed workflows to one n8n: owner and API key first (headless), then the idempotent seed.

The API key is minted once and kept by the caller (Pulumi state, the local state file): later runs reuse it and
only mint a new one when n8n rejects it (a restored database, a revoked key).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workflows.definitions import DEFINITIONS_DIR
from workflows.n8n_api import N8nSession, PublicApi
from workflows.seed import SeedReport, seed

OWNER_EMAIL = "owner@kaizenity.invalid"  # n8n needs an e-mail address; .invalid never routes anywhere
SEEDER_KEY_LABEL = "kaizenity-seeder"  # each key is labelled "<this> <UTC time>": n8n refuses duplicate labels


@dataclass
class N8nAccess:
    """How to reach one n8n as its owner. `owner_password` and `api_key` are secrets."""

    base_url: str
    owner_password: str = field(repr=False)
    owner_email: str = OWNER_EMAIL
    api_key: str | None = field(default=None, repr=False)
    client_options: dict[str, Any] = field(default_factory=dict)


def ensure_api_key(access: N8nAccess) -> str:
    """A working API key: the known one if n8n accepts it, else a new one (setting up the owner if needed)."""
    if access.api_key:
        api = PublicApi(access.base_url, access.api_key, **access.client_options)
        try:
            if api.key_works():
                return access.api_key
        finally:
            api.close()
    session = N8nSession(access.base_url, **access.client_options)
    try:
        if not session.owner_is_set_up():
            session.set_up_owner(access.owner_email, access.owner_password)
        session.login(access.owner_email, access.owner_password)
        # n8n refuses a second key with the same label (HTTP 500 "There is already an entry with this name"): a key
        # minted earlier by another path (the local engine, a lost Pulumi state) must not block this one.
        return session.create_api_key(f"{SEEDER_KEY_LABEL} {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}")
    finally:
        session.close()


def deploy_workflows(
    access: N8nAccess,
    values: Mapping[str, str],
    *,
    known_fingerprints: Mapping[str, str] | None = None,
    dry_run: bool = False,
    progress: Callable[[str], None] = lambda _m: None,
    definitions_dir: Path = DEFINITIONS_DIR,
) -> tuple[SeedReport, str]:
    """Seed `access`'s n8n; returns the report and the API key to keep for next time."""
    key = ensure_api_key(access)
    api = PublicApi(access.base_url, key, **access.client_options)
    try:
        report = seed(
            api,
            values,
            known_fingerprints=known_fingerprints,
            dry_run=dry_run,
            progress=progress,
            definitions_dir=definitions_dir,
        )
    finally:
        api.close()
    return report, key
