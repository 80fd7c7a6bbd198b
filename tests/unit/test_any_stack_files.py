"""The unit tests hold for any set of stack files: a stack file `kaizenity bootstrap` writes leaves them green.

Writes the files `kaizenity bootstrap --stack team1 --yes` (internal TLS) and `--stack team2 --tls-mode acme`
would write, next to copies of the shipped ones in a temporary stacks directory, and runs the stack-parametrized
unit tests against it (`KAIZENITY_STACKS_DIR`) in a subprocess: every test for the new stacks must pass.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from bootstrap.stack_template import StackChoices, write_stack_file
from infra.stack_files import stacks_dir

ROOT = Path(__file__).resolve().parents[2]
PARAMETRIZED = [
    "tests/unit/test_settings.py",
    "tests/unit/test_model.py",
    "tests/unit/test_pulumi_program.py",
    "tests/unit/test_renderer_parity.py",
    "tests/unit/test_local_engine.py",
]


def test_bootstrapped_stack_files_leave_the_unit_tests_green(tmp_path: Path) -> None:
    stacks = tmp_path / "stacks"
    shutil.copytree(stacks_dir(), stacks)
    write_stack_file(stacks / "Pulumi.team1.yaml", "team1", StackChoices())
    write_stack_file(
        stacks / "Pulumi.team2.yaml",
        "team2",
        StackChoices(domain="ops.team2.example.com", tls_mode="acme", acme_email="ops@team2.example.com"),
    )
    env = {**os.environ, "KAIZENITY_STACKS_DIR": str(stacks)}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *PARAMETRIZED],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr
    assert result.returncode == 0, result.stdout[-6000:]
    assert " passed" in summary
    assert "failed" not in summary
    assert "error" not in summary
