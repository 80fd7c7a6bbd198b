"""What every service spec shares: names and labels derived from the environment's prefix."""

from __future__ import annotations

from infra.settings import Settings

LABEL_STACK = "io.kaizenity.stack"
LABEL_PREFIX = "io.kaizenity.prefix"
LABEL_SERVICE = "io.kaizenity.service"


def container_name(settings: Settings, service: str) -> str:
    """Docker name of a service's container: `<prefix>-<service>`."""
    return f"{settings.prefix}-{service}"


def labels(settings: Settings, service: str | None = None) -> tuple[tuple[str, str], ...]:
    """Labels that let tooling (and tear-down) find every object of an environment."""
    base = ((LABEL_STACK, settings.stack), (LABEL_PREFIX, settings.prefix))
    return (*base, (LABEL_SERVICE, service)) if service else base
