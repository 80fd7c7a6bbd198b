"""The wheel's contents, as declared: every package of the checkout, and the data a non-editable install needs."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]


def test_every_package_of_the_checkout_is_shipped() -> None:
    found = {
        ".".join(path.parent.relative_to(ROOT).parts)
        for path in ROOT.glob("*/**/__init__.py")
        if path.parts[len(ROOT.parts)] not in {"tests", ".venv", "build", "benchmarks"}
    }
    assert found <= set(SETUPTOOLS["packages"]), (
        f"add to [tool.setuptools] packages: {found - set(SETUPTOOLS['packages'])}"
    )


def test_bundled_data_is_what_project_files_reads() -> None:
    """infra/project_files.py reads infra/bundled/{stacks,images} in a wheel: they map to the checkout's dirs."""
    assert SETUPTOOLS["package-dir"] == {"infra.bundled.stacks": "stacks", "infra.bundled.images": "images"}
    data = SETUPTOOLS["package-data"]
    assert "Pulumi.*.yaml" in data["infra.bundled.stacks"]
    assert "versions.env" in data["infra.bundled.images"]
    assert "migrations/*.sql" in data["bootstrap"]
    assert {"definitions/*.json", "*.yaml", "*.txt"} <= set(data["workflows"])
