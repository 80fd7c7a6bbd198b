"""Deploy the seed workflows to one n8n: owner (headless), a short-lived API key, the idempotent seed, key deleted.

No API key outlives a seeding run: each run logs in as the owner, deletes the seeder keys earlier runs left
(older versions kept theirs; a crashed run leaves one), mints a key that n8n refuses after `SEEDER_KEY_TTL_S`
anyway, seeds with it and deletes it in a `finally`. n8n 2.8.4's community edition gives every key all of the
owner's scopes (docs/security.md), so the only way to make the key less dangerous is to make it not exist.
Nothing else needs one: `kaizenity health` reads n8n's state from its database (healthchecks/n8n_state.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workflows.definitions import DEFINITIONS_DIR
from workflows.n8n_api import N8nSession, PublicApi
from workflows.seed import SeedReport, seed

OWNER_EMAIL = "owner@kaizenity.invalid"  # n8n needs an e-mail address; .invalid never routes anywhere
SEEDER_KEY_LABEL = "kaizenity-seeder"  # each key is labelled "<this> <UTC time>": n8n refuses duplicate labels
# How long a seeder key stays valid if the run dies before deleting it (a seeding takes seconds to a minute).
SEEDER_KEY_TTL_S = 3600


@dataclass
class N8nAccess:
    """How to reach one n8n as its owner. `owner_password` is a secret."""

    base_url: str
    owner_password: str = field(repr=False)
    owner_email: str = OWNER_EMAIL
    client_options: dict[str, Any] = field(default_factory=dict)


def delete_seeder_keys(session: N8nSession) -> list[str]:
    """Delete every `kaizenity-seeder*` key of the logged-in owner (left by older versions or crashed runs);
    returns their labels."""
    stale = [key for key in session.api_keys() if str(key.get("label", "")).startswith(SEEDER_KEY_LABEL)]
    for key in stale:
        session.delete_api_key(str(key["id"]))
    return [str(key.get("label")) for key in stale]


@contextmanager
def owner_api_key(
    access: N8nAccess,
    *,
    label: str = SEEDER_KEY_LABEL,
    ttl_s: float = SEEDER_KEY_TTL_S,
    progress: Callable[[str], None] = lambda _m: None,
) -> Iterator[str]:
    """A raw API key of n8n's owner for the duration of the `with` block, deleted when it ends (expiring after
    `ttl_s` if this process dies first). Sets the owner up on a fresh n8n. One login (n8n allows 5 per minute per
    e-mail). With the seeder's label, stale seeder keys are deleted first."""
    session = N8nSession(access.base_url, **access.client_options)
    try:
        if not session.owner_is_set_up():
            session.set_up_owner(access.owner_email, access.owner_password)
        session.login(access.owner_email, access.owner_password)
        if label == SEEDER_KEY_LABEL:
            stale = delete_seeder_keys(session)
            if stale:
                progress(f"n8n: deleted {len(stale)} API key(s) left by earlier seeding runs")
        key = session.create_expiring_key(label, ttl_s)
        try:
            yield key.raw
        except BaseException as failure:  # delete the key, but never hide why the run failed
            try:
                session.delete_api_key(key.id)
            except Exception as cleanup:
                failure.add_note(
                    f"n8n API key {key.label!r} could not be deleted ({cleanup}); n8n refuses it after "
                    f"{ttl_s / 60:.0f} min and the next seeding deletes it"
                )
            raise
        session.delete_api_key(key.id)
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
) -> SeedReport:
    """Seed `access`'s n8n with a key that exists only while this runs; returns the report."""
    with owner_api_key(access, progress=progress) as key:
        api = PublicApi(access.base_url, key, **access.client_options)
        try:
            return seed(
                api,
                values,
                known_fingerprints=known_fingerprints,
                dry_run=dry_run,
                progress=progress,
                definitions_dir=definitions_dir,
            )
        finally:
            api.close()
