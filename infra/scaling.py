"""Change a running queue-mode environment's workers (count, concurrency) without losing work or the main process.

The local engine's rolling replacement, one worker at a time:

- scale up: the new workers start (each waits for its own readiness) next to the running ones;
- concurrency (any change of a worker's container): worker N is stopped gracefully, then recreated and waited
  for, before worker N+1 is touched, so the pool never drops by more than one;
- scale down: the highest-numbered workers are stopped gracefully, last.

"Gracefully" is `docker stop` with the model's `stop_grace_s` (n8n's N8N_GRACEFUL_SHUTDOWN_TIMEOUT + a margin),
passed explicitly (the local engine also creates the containers with it as their stop timeout). Then
on SIGTERM an n8n worker stops taking jobs and waits for its running executions; jobs still waiting in Redis
stay there for the other workers. Docker's default 10 s would SIGKILL it mid-execution, and n8n 2.8.4 never
re-runs such a job (maxStalledCount 0). The main process, Redis and PostgreSQL are never touched.

With Pulumi the same model applies: the workers' containers carry `destroy_grace_seconds = stop_grace_s`, each
worker depends on the previous one (infra/services/n8n.py) and has `delete_before_replace` (fixed names), so
pulumi-docker replaces them in dependency order: delete worker-1 (stopping it with the grace), create it and
wait for its health check (`wait=True`), then worker-2. Only the changed workers are replaced (a concurrency
change changes every worker's `command`, hence all of them, one after the other).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from infra.container_runner import ContainerRunner
from infra.docker_engine import docker_client
from infra.environment import build_environment
from infra.local_overrides import local_config, recordable_config
from infra.model import EnvironmentModel, ServiceSpec
from infra.services import n8n
from infra.services.common import LABEL_PREFIX, LABEL_SERVICE
from infra.settings_validation import parse_settings

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ScalePlan:
    """What a rolling change does, in order: workers to replace, to add and to remove (by logical name)."""

    replace: tuple[str, ...] = ()
    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        """True when the running pool already matches."""
        return not (self.replace or self.add or self.remove)


@dataclass
class ScaleReport:
    """What was done, with the seconds each graceful stop took (the proof no worker was SIGKILLed early), and the
    config (no secrets) the new pool was built from: what the CLI records in the state."""

    plan: ScalePlan
    stop_seconds: dict[str, float] = field(default_factory=dict)
    exit_codes: dict[str, int] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)


def plan_rolling(running: Mapping[str, tuple[str, ...]], desired: list[ServiceSpec]) -> ScalePlan:
    """Compare running workers (logical name -> container command) with the desired specs."""
    wanted = {spec.name: spec for spec in desired}
    replace = tuple(
        name for name in sorted(running, key=_index) if name in wanted and running[name] != _cmd(wanted[name])
    )
    add = tuple(name for name in sorted(wanted, key=_index) if name not in running)
    remove = tuple(name for name in sorted(running, key=_index, reverse=True) if name not in wanted)
    return ScalePlan(replace, add, remove)


def scaled_config(
    stack: str,
    prefix: str,
    *,
    recorded: Mapping[str, Any] | None = None,
    workers: int | None = None,
    concurrency: int | None = None,
    n8n_image: str | None = None,
) -> dict[str, Any]:
    """The config (no secrets) of the running environment `prefix` with the new pool size and concurrency: what it
    was started with (`recorded`, the settings its state records, overrides included), else the stack file's.

    The CLI records the result in the state, so a later rotation or scaling sees the workers as they now are."""
    config = recordable_config(recorded or local_config(stack, prefix=prefix))
    config["namePrefix"] = prefix
    n8n_config = dict(config.get("n8n", {}))
    if workers is not None:
        n8n_config["workers"] = workers
    if concurrency is not None:
        n8n_config["workerConcurrency"] = concurrency
    config["n8n"] = n8n_config
    if n8n_image:
        config["images"] = {**config.get("images", {}), "n8n": n8n_image}
    return config


def running_workers(prefix: str) -> dict[str, Any]:
    """The worker containers of environment `prefix` (logical name -> docker-py container), running or not."""
    client = docker_client()
    found = client.containers.list(all=True, filters={"label": f"{LABEL_PREFIX}={prefix}"})
    return {
        c.labels.get(LABEL_SERVICE, ""): c
        for c in found
        if c.labels.get(LABEL_SERVICE, "").startswith(n8n.WORKER_PREFIX)
    }


def main_image(prefix: str) -> str | None:
    """The image the running main process uses (so new workers match it: offline or stack images)."""
    client = docker_client()
    for container in client.containers.list(all=True, filters={"label": f"{LABEL_PREFIX}={prefix}"}):
        if container.labels.get(LABEL_SERVICE) == n8n.NAME:
            return str(container.attrs["Config"]["Image"])
    return None


def rolling_scale(model: EnvironmentModel, secrets: Mapping[str, str], progress: Progress | None = None) -> ScaleReport:
    """Bring the running worker pool of `model.prefix` to the model's, one worker at a time (see module doc)."""
    report_progress = progress or (lambda _message: None)
    containers = running_workers(model.prefix)
    running = {name: tuple(c.attrs["Config"].get("Cmd") or ()) for name, c in containers.items()}
    desired = [s for s in model.services if s.kind == "n8n-worker"]
    plan = plan_rolling(running, desired)
    report = ScaleReport(plan)
    stack = ContainerRunner(model, secrets, report_progress)
    specs = {spec.name: spec for spec in desired}
    for name in plan.replace:
        _graceful_stop(containers[name], specs[name].stop_grace_s, report, report_progress)
        containers[name].remove(v=False)
        stack.start_service(specs[name])
    for name in plan.add:
        stack.start_service(specs[name])
    for name in plan.remove:
        grace = n8n.STOP_GRACE_MARGIN_S + _graceful_timeout(containers[name])
        _graceful_stop(containers[name], grace, report, report_progress)
        containers[name].remove(v=False)
    return report


def _graceful_stop(container: Any, grace_s: int, report: ScaleReport, progress: Progress) -> None:
    import time

    name = container.labels.get(LABEL_SERVICE, container.name)
    progress(f"stopping {name} (up to {grace_s} s for its running executions)")
    started = time.monotonic()
    container.stop(timeout=grace_s)
    container.reload()
    report.stop_seconds[name] = round(time.monotonic() - started, 1)
    report.exit_codes[name] = int(container.attrs["State"].get("ExitCode", -1))
    progress(f"{name} stopped in {report.stop_seconds[name]} s (exit code {report.exit_codes[name]})")


def _graceful_timeout(container: Any) -> int:
    env = dict(item.split("=", 1) for item in container.attrs["Config"].get("Env") or [] if "=" in item)
    return int(env.get("N8N_GRACEFUL_SHUTDOWN_TIMEOUT", "30"))


def scale_local(
    stack: str,
    prefix: str,
    secrets: Mapping[str, str],
    *,
    workers: int | None = None,
    concurrency: int | None = None,
    recorded: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
) -> tuple[ScaleReport, EnvironmentModel]:
    """Scale the local environment `prefix` of `stack` (started with the `recorded` settings, if its state has
    them); returns what was done (with the config it used) and the new model."""
    config = scaled_config(
        stack, prefix, recorded=recorded, workers=workers, concurrency=concurrency, n8n_image=main_image(prefix)
    )
    settings = parse_settings(stack, {**config, **secrets}, source=f"stack '{stack}' (scaling {prefix})")
    if not settings.n8n.queue_mode:
        raise ValueError(f"stack '{stack}' is not in queue mode: set kaizenity:n8n.queueMode true to have workers")
    model = build_environment(settings)
    report = rolling_scale(model, secrets, progress)
    report.config = config
    return report, model


def _index(name: str) -> int:
    return int(name.rsplit("-", 1)[-1]) if name.rsplit("-", 1)[-1].isdigit() else 0


def _cmd(spec: ServiceSpec) -> tuple[str, ...]:
    return tuple(spec.command or ())
