"""Where the bundle's files are, in a checkout and in an installed wheel.

A checkout (or an editable install) reads `stacks/`, `images/versions.env` and `.kaizenity/` at its root. A
normal `pip install` has no checkout: the stack files and `versions.env` ship inside the wheel under
`infra/bundled/` (see `[tool.setuptools.package-dir]` in pyproject.toml), and the team's own files are found in
the *project directory*:

* `KAIZENITY_PROJECT_DIR`, else the checkout root (when running from one), else the current directory;
* stack files: `KAIZENITY_STACKS_DIR` alone when set; else `<project dir>/stacks`, then the bundled ones (a
  team's own file of the same name wins); new stack files (`kaizenity bootstrap`) go to `<project dir>/stacks`;
* local environment state: `KAIZENITY_STATE_DIR`, else `<project dir>/.kaizenity/local`.
"""

from __future__ import annotations

import os
from pathlib import Path

_CODE_ROOT = Path(__file__).resolve().parent.parent  # the checkout root, or site-packages for a wheel
BUNDLED = Path(__file__).resolve().parent / "bundled"


def running_from_checkout() -> bool:
    """True when the code runs from a source checkout (editable install, or `python -m` in the repo)."""
    return (_CODE_ROOT / "pyproject.toml").is_file() and (_CODE_ROOT / "stacks").is_dir()


def project_dir() -> Path:
    """The directory whose `stacks/` and `.kaizenity/` belong to the team running the bundle."""
    explicit = os.environ.get("KAIZENITY_PROJECT_DIR")
    if explicit:
        return Path(explicit)
    return _CODE_ROOT if running_from_checkout() else Path.cwd()


def stacks_dir() -> Path:
    """Where the team's stack files live, and where new ones are written."""
    explicit = os.environ.get("KAIZENITY_STACKS_DIR")
    return Path(explicit) if explicit else project_dir() / "stacks"


def stack_search_path() -> list[Path]:
    """Directories searched for a stack file, first match wins: the team's, then those shipped in the wheel."""
    own = stacks_dir()
    if os.environ.get("KAIZENITY_STACKS_DIR"):
        return [own]
    return [own, BUNDLED / "stacks"]


def versions_file() -> Path:
    """`images/versions.env` of the checkout, or the copy shipped in the wheel."""
    checkout = _CODE_ROOT / "images" / "versions.env"
    return checkout if checkout.is_file() else BUNDLED / "images" / "versions.env"


def state_dir() -> Path:
    """Where local environments are recorded (`KAIZENITY_STATE_DIR` or `<project dir>/.kaizenity/local`)."""
    return Path(os.environ.get("KAIZENITY_STATE_DIR") or project_dir() / ".kaizenity" / "local")
