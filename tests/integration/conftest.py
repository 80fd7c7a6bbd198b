"""Fixtures shared by the integration tests (the stacks themselves come from kaizenity/pytest_plugin.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infra.local_endpoints import LocalEndpoints
from tests.integration.n8n_keys import n8n_test_key


@pytest.fixture(scope="session")
def n8n_api_key(kaizenity_stack: LocalEndpoints) -> Iterator[str]:
    """A short-lived owner API key of `kaizenity_stack`'s n8n for the session, deleted at its end."""
    with n8n_test_key(kaizenity_stack) as key:
        yield key


@pytest.fixture(scope="session")
def n8n_queue_api_key(kaizenity_queue_stack: LocalEndpoints) -> Iterator[str]:
    """The same for `kaizenity_queue_stack`."""
    with n8n_test_key(kaizenity_queue_stack) as key:
        yield key
