"""Another team's CI, as it would use the bundle: a built wheel in a fresh venv, a one-line test, no checkout.

The wheel is built from a copy of the tracked files (nothing written into the checkout), installed with its
dependencies into a new virtualenv (pip's cache makes the second run fast), and pytest runs a consumer test
in a temporary directory outside the checkout: the `kaizenity_stack` fixture brings up the team's own stack file
(`--kaizenity-stack-file`, a copy of the ci stack) with the offline images (`images/build.sh`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CONSUMER_TEST = """
import httpx


def test_the_environment_answers(kaizenity_stack):
    assert httpx.get(kaizenity_stack.n8n_url + "/healthz/readiness", timeout=10).status_code == 200
"""


def _run(command: list[str], cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


def _clean_env(home: Path) -> dict[str, str]:
    """The environment of a stranger's CI: no KAIZENITY_* variables, no checkout on the path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAIZENITY_", "PYTHON", "VIRTUAL_ENV"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["HOME"] = os.environ.get("HOME", str(home))  # pip's cache
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the built wheel installed (not editable); returns its bin directory."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for name in tracked.splitlines():
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    env = _clean_env(work)
    _run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "-q", "-w", str(work / "dist")], source, env, 600)
    wheel = next((work / "dist").glob("kaizenity_tta_ops-*.whl"))
    venv.EnvBuilder(with_pip=True).create(work / "venv")
    bin_dir = work / "venv" / "bin"
    _run([str(bin_dir / "pip"), "install", "-q", str(wheel), "pytest"], work, env, 1200)
    return bin_dir


def test_cli_works_from_the_wheel(installed: Path, tmp_path: Path) -> None:
    env = _clean_env(tmp_path)
    assert "bootstrap" in _run([str(installed / "kaizenity"), "--help"], tmp_path, env, 60).stdout
    # The stack files ship in the wheel (no checkout, no stacks/ here): `config` finds and validates the bundled
    # ci stack file, and reports what only its owner can add (the secrets; Pulumi keeps them encrypted).
    checked = subprocess.run(
        [str(installed / "kaizenity"), "config", "--stack", "ci"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "infra/bundled/stacks/Pulumi.ci.yaml" in checked.stderr, checked.stderr
    assert "required secret is missing" in checked.stderr
    assert "no stack file" not in checked.stderr


def test_consumer_test_uses_kaizenity_stack(installed: Path, tmp_path: Path) -> None:
    consumer = tmp_path / "consumer"
    (consumer / "ops").mkdir(parents=True)
    bundled = next((installed.parent / "lib").glob("python3*/site-packages/infra/bundled/stacks/Pulumi.ci.yaml"))
    shutil.copy(bundled, consumer / "ops" / "Pulumi.myteam.yaml")  # the team's own stack file
    (consumer / "test_ours.py").write_text(CONSUMER_TEST, encoding="utf-8")
    result = _run(
        [str(installed / "pytest"), "-q", "-p", "no:cacheprovider", "--kaizenity-stack-file", "ops/Pulumi.myteam.yaml"],
        consumer,
        _clean_env(tmp_path),
        1200,
    )
    assert "1 passed" in result.stdout
