"""pytest plugin (entry point `kaizenity`): a real Kaizenity TTA environment for integration tests.

`kaizenity_stack` (session-scoped) brings up the stack named by `--kaizenity-stack` (default `ci`) with the local
engine: the same environment model `pulumi up` renders, with a unique name prefix, free loopback ports and
throw-away secrets, so several runs on one machine never collide. It yields :class:`~infra.local_endpoints.
LocalEndpoints` and removes every container, network and volume afterwards.

Any team's own CI can use it by installing this package (`pip install kaizenity-tta-ops`, no checkout needed):
the stack files ship inside the wheel. A team's own stack file is used with `--kaizenity-stack-file PATH` (or
`KAIZENITY_STACKS_DIR` / `KAIZENITY_PROJECT_DIR`, see `infra.project_files`). The images are the offline
`kaizenity-local/*` ones built by `images/build.sh`, or with `--kaizenity-images stack` the stack file's own.

`kaizenity_queue_stack` (session-scoped) does the same for the queue-mode stack named by
`--kaizenity-queue-stack` (default `ci-queue`: the production shape, main + Redis + 2 workers). It yields
:class:`~infra.local_endpoints.LocalEndpoints` too, with `redis_url` set (Redis published on loopback) and the
workers in `containers` (`n8n-worker-1`, `n8n-worker-2`); `kaizenity_queue_stack_handle` adds the LocalStack for
tests that stop or replace containers. It starts only when a test asks for it, so single-mode runs do not pay
for it. Tests that break it (stop workers, restart Redis) must restore what they broke before they end: later
tests share the session environment.

Tests marked `kaizenity_teardown` run last and may take the environment down to check the tear-down itself.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from infra.container_runner import ContainerRunner
    from infra.local_endpoints import LocalEndpoints


@dataclass
class KaizenityStackHandle:
    """What the session fixture keeps: the endpoints tests use and the runner that can tear them down."""

    endpoints: LocalEndpoints
    stack: ContainerRunner


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kaizenity")
    group.addoption("--kaizenity-stack", default="ci", help="stack the kaizenity_stack fixture brings up")
    group.addoption(
        "--kaizenity-stack-file",
        default=None,
        metavar="PATH",
        help="a stack file of your own (Pulumi.<stack>.yaml) to bring up instead of a bundled one",
    )
    group.addoption(
        "--kaizenity-queue-stack",
        default="ci-queue",
        help="queue-mode stack file the kaizenity_queue_stack fixture brings up",
    )
    group.addoption(
        "--kaizenity-images",
        choices=["offline", "stack"],
        default="offline",
        help="offline: kaizenity-local/* images (make images); stack: the stack file's images",
    )
    group.addoption(
        "--kaizenity-seed",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a workflow parameter for seeding (workflows/parameters.yaml), e.g. heartbeatEvery=2; repeatable",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "kaizenity_teardown: runs last; may tear down the session environment")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.get_closest_marker("kaizenity_teardown") is not None)


@pytest.fixture(scope="session")
def kaizenity_stack_handle(request: pytest.FixtureRequest) -> Iterator[KaizenityStackHandle]:
    """The running environment and its ContainerRunner (for tests that check tear-down)."""
    stack_name = str(request.config.getoption("--kaizenity-stack"))
    stack_file = request.config.getoption("--kaizenity-stack-file")
    if stack_file:
        stack_name = _use_stack_file(Path(stack_file))
    yield from _stack_session(request, stack_name, "kaizenity_stack")


@pytest.fixture(scope="session")
def kaizenity_queue_stack_handle(request: pytest.FixtureRequest) -> Iterator[KaizenityStackHandle]:
    """The running queue-mode environment and its ContainerRunner (for tests that stop or replace workers)."""
    stack = str(request.config.getoption("--kaizenity-queue-stack"))
    yield from _stack_session(request, stack, "kaizenity_queue_stack")


@pytest.fixture(scope="session")
def kaizenity_queue_stack(kaizenity_queue_stack_handle: KaizenityStackHandle) -> LocalEndpoints:
    """A real queue-mode environment (main + Redis + workers): the same endpoints as `kaizenity_stack`, plus
    `redis_url`; worker containers are in `containers` under `n8n-worker-N`."""
    return kaizenity_queue_stack_handle.endpoints


def _stack_session(request: pytest.FixtureRequest, stack_name: str, label: str) -> Iterator[KaizenityStackHandle]:
    """Bring `stack_name` up with the local engine for the session, and remove everything afterwards."""
    from infra import local_engine

    offline = request.config.getoption("--kaizenity-images") == "offline"
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")

    def progress(message: str) -> None:
        if reporter is not None:
            reporter.write_line(f"[{label}] {message}")

    prefix = f"kzt-{stack_name}-{secrets.token_hex(3)}"
    try:
        seed_values = dict(item.split("=", 1) for item in request.config.getoption("--kaizenity-seed"))
        stack, endpoints = local_engine.start(
            stack_name,
            prefix=prefix,
            offline=offline,
            free_ports=True,
            progress=progress,
            record=False,
            seed_values=seed_values,
        )
    except Exception as exc:
        local_engine.stop(prefix)
        pytest.fail(f"could not bring up the {stack_name} stack: {exc}\nFix: `make images`; is dockerd running?")
    try:
        yield KaizenityStackHandle(endpoints, stack)
    finally:
        local_engine.stop(prefix, progress)


def _use_stack_file(path: Path) -> str:
    """Make the stack files' directory the one `path` is in; return the stack name its file name gives."""
    name = path.name
    if not (name.startswith("Pulumi.") and name.endswith(".yaml")):
        raise pytest.UsageError(f"--kaizenity-stack-file {path}: the name must be Pulumi.<stack>.yaml")
    if not path.is_file():
        raise pytest.UsageError(f"--kaizenity-stack-file {path}: no such file")
    os.environ["KAIZENITY_STACKS_DIR"] = str(path.resolve().parent)
    return name.removeprefix("Pulumi.").removesuffix(".yaml")


@pytest.fixture(scope="session")
def kaizenity_stack(kaizenity_stack_handle: KaizenityStackHandle) -> LocalEndpoints:
    """Connection details of a real, running environment: gateway/webhook/n8n URLs, database URLs, CA file."""
    return kaizenity_stack_handle.endpoints
