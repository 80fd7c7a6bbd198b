"""One short-lived n8n API key for tests and benchmarks that drive n8n's public API, deleted afterwards.

The environment keeps no API key (the seeder deletes its own, workflows/deploy.py), so a test that needs the
public API mints one here: one key per stack and test session (fixtures `n8n_api_key` / `n8n_queue_api_key` in
tests/integration/conftest.py), because n8n allows 5 logins per minute per e-mail. The key is labelled
`kaizenity-test` (the seeder deletes only `kaizenity-seeder*` keys, so seeding during the session leaves it alone)
and expires on its own after `TEST_KEY_TTL_S` if the session dies before deleting it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from infra.local_endpoints import LocalEndpoints
from workflows.n8n_api import N8nSession

TEST_KEY_LABEL = "kaizenity-test"
TEST_KEY_TTL_S = 4 * 3600


def _session(endpoints: LocalEndpoints) -> N8nSession:
    assert endpoints.n8n_url, f"{endpoints.prefix} publishes no n8n port"
    session = N8nSession(endpoints.n8n_url)
    session.login(endpoints.n8n_owner_email, endpoints.secrets["n8nOwnerPassword"])
    return session


@contextmanager
def n8n_test_key(endpoints: LocalEndpoints) -> Iterator[str]:
    """A raw API key of the owner of `endpoints`' n8n while the block runs; deleted at the end with a fresh login
    (the owner's password may have been rotated meanwhile, which ends the first session)."""
    session = _session(endpoints)
    try:
        key = session.create_expiring_key(TEST_KEY_LABEL, TEST_KEY_TTL_S)
    finally:
        session.close()
    try:
        yield key.raw
    finally:
        _delete(endpoints, key.id)


def _delete(endpoints: LocalEndpoints, key_id: str) -> None:
    """Delete the key, unless its n8n is gone: tests/integration/test_stack.py takes the session environment down
    on purpose (its database, and the key with it, is deleted)."""
    try:
        session = _session(endpoints)
    except httpx.ConnectError:
        return
    try:
        session.delete_api_key(key_id)  # gone already after a restore: deleting an unknown id succeeds
    finally:
        session.close()
