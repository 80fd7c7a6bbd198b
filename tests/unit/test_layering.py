"""The import layering of the bundle: model <- services <- renderers <- engines <- CLI, and no import cycles.

Read from the source (every `import`, also those inside functions), so a lazy import cannot hide a wrong
dependency. A module may import its own layer and the layers below; every module of `infra` and `kaizenity` must
be placed in a layer here, so a new module is a deliberate choice.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIRST_PARTY = ("infra", "kaizenity", "bootstrap", "healthchecks", "workflows", "backups")

LAYERS: list[tuple[str, set[str]]] = [
    (
        "model",
        {
            "infra.versions",
            "infra.project_files",
            "infra.secrets",
            "infra.settings",
            "infra.settings_problems",
            "infra.model",
            "infra.stack_files",
            "infra.url_masking",
        },
    ),
    (
        "services",
        {
            "infra.services",
            "infra.environment",
            "infra.settings_validation",
            "infra.seeding",
            "infra.rotation",
            "infra.database_identity",
            "infra.queue_info",
        },
    ),
    (
        "renderers",
        {
            "infra.pulumi_program",
            "infra.migrations_resource",
            "infra.workflows_resource",
            "infra.rotation_resource",
            "infra.container_spec",
        },
    ),
    (
        "engines",
        {
            "infra.local_engine",
            "infra.container_runner",
            "infra.local_readiness",
            "infra.local_overrides",
            "infra.secret_generation",
            "infra.host_ports",
            "infra.local_endpoints",
            "infra.local_state",
            "infra.local_seeding",
            "infra.docker_engine",
            "infra.rotation_local",
            "infra.scaling",
        },
    ),
    ("cli", {"kaizenity"}),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def first_party_modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for package in FIRST_PARTY
        for path in (ROOT / package).rglob("*.py")
        if "bundled" not in path.parts
    }


def imports_of(path: Path, known: set[str]) -> set[str]:
    """First-party modules `path` imports (resolved to the longest known module name)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        for name in names:
            parts = name.split(".")
            for end in range(len(parts), 0, -1):
                candidate = ".".join(parts[:end])
                if candidate in known:
                    found.add(candidate)
                    break
    return found


def layer_of(module: str) -> int | None:
    for index, (_name, members) in enumerate(LAYERS):
        if any(module == m or module.startswith(m + ".") for m in members):
            return index
    return None


GRAPH = {name: imports_of(path, set(first_party_modules())) for name, path in first_party_modules().items()}


def test_every_infra_and_cli_module_has_a_layer() -> None:
    unplaced = [m for m in GRAPH if m.split(".")[0] in {"infra", "kaizenity"} and m != "infra" and layer_of(m) is None]
    assert unplaced == [], f"place these modules in a layer in {__file__}: {unplaced}"


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if layer_of(m) is not None))
def test_imports_only_its_layer_and_below(module: str) -> None:
    own = layer_of(module)
    assert own is not None
    upward = [
        f"{target} ({LAYERS[layer][0]})"
        for target in GRAPH[module]
        if (layer := layer_of(target)) is not None and layer > own
    ]
    assert upward == [], f"{module} ({LAYERS[own][0]}) imports a higher layer: {upward}"


def test_no_import_cycles() -> None:
    """Tarjan's strongly connected components over the module graph: every component is one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in GRAPH.get(node, ()):
            if target == node or target not in GRAPH:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    assert cycles == [], f"import cycles: {cycles}"
