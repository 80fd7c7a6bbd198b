"""Readiness for the local engine: a testcontainers wait strategy driven by the model, not by sleeps.

A service is ready when its health check passes: the model's one definition of ready, the same one `pulumi up`
waits for (`wait=True`). The health check is the model's own command: Docker runs it every `interval_s` (and
Docker 20.10 knows no `start_interval`), so while the
container is starting we also run it ourselves, by `docker exec`, every half second: the same check, found passing
seconds earlier.
A container that exits while we wait fails at once with the end of its log, not after the timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from testcontainers.core.wait_strategies import WaitStrategy

from infra.model import ServiceSpec

LOG_TAIL_LINES = 25


class ServiceReady(WaitStrategy):
    """Wait until the service's health check passes."""

    def __init__(self, spec: ServiceSpec, progress: Callable[[str], None] | None = None) -> None:
        super().__init__()
        self._spec = spec
        self._progress = progress or (lambda _message: None)
        self._poll_interval = 0.5

    def wait_until_ready(self, container: Any) -> None:
        deadline = time.monotonic() + self._startup_timeout
        started = time.monotonic()
        next_report = started + 10
        wrapped = container.get_wrapped_container()
        while True:
            wrapped.reload()
            state = wrapped.attrs.get("State", {})
            if state.get("Status") in {"exited", "dead"}:
                raise RuntimeError(self._explain(wrapped, f"exited with code {state.get('ExitCode')}"))
            health = (state.get("Health") or {}).get("Status")
            if health == "unhealthy":
                raise RuntimeError(self._explain(wrapped, "health check reported unhealthy"))
            if health == "healthy" or self._check_passes(wrapped):
                return
            now = time.monotonic()
            if now > deadline:
                raise TimeoutError(self._explain(wrapped, f"not ready after {self._startup_timeout:.0f} s"))
            if now >= next_report:
                self._progress(f"still waiting for {self._spec.name} ({now - started:.0f} s, health: {health})")
                next_report = now + 10
            time.sleep(self._poll_interval)

    def _check_passes(self, wrapped: Any) -> bool:
        """Run the model's health-check command inside the container now; True when it exits 0."""
        check = self._spec.healthcheck
        if check is None or not check.test or check.test[0] not in {"CMD", "CMD-SHELL"}:
            return False
        command = ["/bin/sh", "-c", check.test[1]] if check.test[0] == "CMD-SHELL" else list(check.test[1:])
        try:
            result = wrapped.exec_run(command, stdout=False, stderr=False)
        except Exception:  # the container stopped between reload and exec: the next round reports why
            return False
        return bool(result.exit_code == 0)

    def _explain(self, wrapped: Any, what: str) -> str:
        tail = wrapped.logs(stdout=True, stderr=True, tail=LOG_TAIL_LINES).decode(errors="replace")
        checks = ((wrapped.attrs.get("State", {}).get("Health") or {}).get("Log") or [])[-1:]
        last_check = checks[0].get("Output", "").strip() if checks else "none"
        return (
            f"{self._spec.name} ({wrapped.name}, image {self._spec.image}) {what}. Last health check output: "
            f"{last_check or '(empty)'}. Last log lines:\n{tail}\n"
            f"Fix: see the log above; `docker logs {wrapped.name}` while it exists, and check the image builds "
            "(`make images`)."
        )
