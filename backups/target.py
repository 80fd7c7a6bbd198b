"""Which containers hold an environment's data, found through Docker labels alone.

Every container the model renders carries `io.kaizenity.prefix` and `io.kaizenity.service` labels, whether
`pulumi up` or the local engine created it, so backup and restore work for both without Pulumi state.
Database names and n8n's encryption key are read from the containers' own environment: the values the running
environment really uses, not what a config file says it should use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from infra.services.common import LABEL_PREFIX, LABEL_SERVICE


class TargetError(RuntimeError):
    """The environment to back up or restore cannot be found or is incomplete."""


@dataclass(frozen=True)
class DataTarget:
    """The containers and names a backup needs. `encryption_key` is a secret: never print it."""

    prefix: str
    postgres_container: str
    superuser: str
    app_database: str
    n8n_database: str
    n8n_containers: tuple[str, ...]
    encryption_key: str = field(repr=False)


def find_target(client: Any, prefix: str) -> DataTarget:
    """Locate the environment `prefix` on this Docker engine."""
    containers = client.containers.list(all=True, filters={"label": f"{LABEL_PREFIX}={prefix}"})
    by_service = {c.labels.get(LABEL_SERVICE, ""): c for c in containers}
    postgres = by_service.get("postgres")
    if postgres is None:
        raise TargetError(
            f"environment '{prefix}': no PostgreSQL container labelled {LABEL_PREFIX}={prefix} on this Docker "
            "engine. Fix: check the stack name (`kaizenity status --stack NAME`) and DOCKER_HOST, or bring the "
            "environment up first."
        )
    n8n_main = by_service.get("n8n")
    if n8n_main is None:
        raise TargetError(f"environment '{prefix}': no n8n container. Fix: bring the environment up first.")
    pg_env = container_env(postgres)
    n8n_env = container_env(n8n_main)
    superuser = pg_env.get("POSTGRES_USER", "postgres")
    workers = sorted(name for name in by_service if name.startswith("n8n-worker"))
    return DataTarget(
        prefix=prefix,
        postgres_container=postgres.name,
        superuser=superuser,
        app_database=pg_env.get("POSTGRES_DB", superuser),
        n8n_database=n8n_env.get("DB_POSTGRESDB_DATABASE", "n8n"),
        n8n_containers=(n8n_main.name, *(by_service[w].name for w in workers)),
        encryption_key=n8n_env.get("N8N_ENCRYPTION_KEY", ""),
    )


def container_env(container: Any) -> dict[str, str]:
    """A container's environment as a dict (from `docker inspect`)."""
    pairs = container.attrs.get("Config", {}).get("Env") or []
    return dict(pair.split("=", 1) for pair in pairs if "=" in pair)
