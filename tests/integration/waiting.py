"""Polling helper shared by the integration tests: wait for a condition on a real container, or fail naming it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest


def wait_until(condition: Callable[[], Any], timeout_s: float, what: str) -> Any:
    """The first truthy value of `condition` (polled every 0.5 s); fails the test after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")
