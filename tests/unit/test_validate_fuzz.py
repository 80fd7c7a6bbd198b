"""No input crashes the validator: mutated workflow files give named problems, never a traceback.

Property-based (hypothesis): one value anywhere in a real workflow (the shipped definitions and the public
exports) is replaced by arbitrary JSON, or a key is removed; validation must return normally, and the safety net
in `validate_paths` (which turns a validator bug into a problem) must never be needed.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workflows.definitions import DEFINITIONS_DIR
from workflows.validate import INTERNAL_ERROR, validate_paths

# More examples for a longer hunt: KAIZENITY_FUZZ_EXAMPLES=2000 pytest tests/unit/test_validate_fuzz.py
EXAMPLES = int(os.environ.get("KAIZENITY_FUZZ_EXAMPLES", "150"))
EXPORTS = Path(__file__).resolve().parents[1] / "fixtures" / "n8n-exports"
SEEDS = [json.loads(p.read_text()) for p in [*sorted(DEFINITIONS_DIR.glob("*.json")), *sorted(EXPORTS.glob("*.json"))]]

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every location in a JSON document (the root excluded)."""
    found = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    for key, child in items:
        found.append((*prefix, key))
        found += paths(child, (*prefix, key))
    return found


def mutate(document: Any, path: tuple[Any, ...], replacement: Any, delete: bool) -> Any:
    copy = json.loads(json.dumps(document))
    parent = copy
    for key in path[:-1]:
        parent = parent[key]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = replacement
    return copy


def validate_text(text: str) -> list[str]:
    with tempfile.TemporaryDirectory() as directory:
        (Path(directory) / "w.json").write_text(text)
        report = validate_paths([Path(directory)])
    return [str(p) for p in report.problems]


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), replacement=JSON_VALUES, delete=st.booleans())
def test_mutated_workflows_give_named_problems_never_a_traceback(
    data: st.DataObject, replacement: Any, delete: bool
) -> None:
    seed = data.draw(st.sampled_from(SEEDS))
    path = data.draw(st.sampled_from(paths(seed)))
    problems = validate_text(json.dumps(mutate(seed, path, replacement, delete)))
    assert not [p for p in problems if INTERNAL_ERROR in p]
    assert all(p.split(":", 1)[0] == "w.json" for p in problems)


@settings(max_examples=max(EXAMPLES // 3, 20), deadline=None)
@given(document=JSON_VALUES)
def test_arbitrary_json_gives_named_problems(document: Any) -> None:
    problems = validate_text(json.dumps(document))
    assert problems
    assert not [p for p in problems if INTERNAL_ERROR in p]


def test_the_two_shapes_that_used_to_crash(tmp_path: Path) -> None:
    seed = json.loads((DEFINITIONS_DIR / "notification-dispatch.json").read_text())
    first = next(iter(seed["connections"]))
    seed["connections"][first]["main"] = [[None]]
    seed["nodes"][1]["credentials"] = ["postgres"]
    problems = validate_text(json.dumps(seed))
    assert (
        f"w.json: field 'connections.{first}.main[0][0]': must be an object {{node, type, index}}, not null None"
        in problems
    )
    assert any(
        p.startswith("w.json: node 'Claim due notifications': field 'credentials': must be an object") for p in problems
    )


def test_undecodable_and_deeply_nested_files_are_named() -> None:
    assert validate_text("[" * 100_000 + "]" * 100_000)[0].startswith("w.json: cannot be read as JSON text")
    assert validate_text('{"name": "x", "nodes": ' + "[" * 900 + "]" * 900 + "}") != []
