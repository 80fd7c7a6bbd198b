"""Regenerate `workflows/known_node_types.json` from a running n8n of the pinned version. Fails loudly.

Why a running n8n and not `require()` of the node packages: n8n's loader does more than load classes. It builds
the `*Tool` variants (`n8n-nodes-base.postgresTool`) at load time, loads `@n8n/n8n-nodes-langchain` with its own
dependencies, and leaves out the nodes excluded by default (`NODES_EXCLUDE`: `executeCommand`, ...). Requiring the
files in a loop and skipping the ones that throw lost about half of the types. `GET /types/nodes.json` (owner
session) is what the editor itself is served, so the file matches what the pinned n8n really runs.

The n8n runs in a throw-away container on SQLite (no PostgreSQL needed), removed afterwards whatever happens.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from workflows.n8n_api import N8nSession
from workflows.validation.node_types import KNOWN_TYPES_FILE

ROOT = Path(__file__).resolve().parents[2]
# Types the pinned n8n must serve: if one is missing, the load went wrong (a broken image, a changed loader).
SENTINELS = (
    "n8n-nodes-base.webhook", "n8n-nodes-base.postgres", "n8n-nodes-base.postgresTool", "n8n-nodes-base.html",
    "n8n-nodes-base.whatsAppTrigger", "n8n-nodes-base.code", "n8n-nodes-base.scheduleTrigger",
    "@n8n/n8n-nodes-langchain.agent", "@n8n/n8n-nodes-langchain.lmChatOpenAi",
)  # fmt: skip
MIN_TYPES = 600
READY_LINE = "Editor is now accessible via"


class _TypesSession(N8nSession):
    """An owner session that can also read the editor's node descriptions."""

    def node_types(self) -> httpx.Response:
        return self._http.get("/types/nodes.json")


class GenerationError(RuntimeError):
    """The node types could not be read from n8n; nothing was written."""


def pinned_image() -> tuple[str, str]:
    """(version, image) from images/versions.env: the single place the n8n version is written."""
    env = dict(
        line.split("=", 1)
        for line in (ROOT / "images/versions.env").read_text(encoding="utf-8").splitlines()
        if "=" in line and not line.startswith("#")
    )
    return env["N8N_VERSION"], f"{env['LOCAL_IMAGE_PREFIX']}/n8n:{env['N8N_VERSION']}"


def _docker(*args: str) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, check=False, timeout=120)
    if result.returncode != 0:
        raise GenerationError(f"docker {args[0]} failed: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout.strip()


def _wait_ready(container: str, timeout_s: float = 240) -> str:
    """The n8n base URL once the editor (and its REST API) is up; n8n's logs say when."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        logs = subprocess.run(["docker", "logs", container], capture_output=True, text=True, check=False).stdout
        if READY_LINE in logs:
            port = _docker("port", container, "5678/tcp").splitlines()[0].rsplit(":", 1)[1]
            return f"http://127.0.0.1:{port}"
        if _docker("inspect", "-f", "{{.State.Running}}", container) != "true":
            raise GenerationError(f"n8n exited before it was ready:\n{logs[-2000:]}")
        time.sleep(2)
    raise GenerationError(f"n8n was not ready after {timeout_s:.0f} s (no {READY_LINE!r} in its log)")


def fetch_descriptions(image: str) -> list[dict[str, Any]]:
    """Every node description the n8n in `image` serves to its editor."""
    container = f"kaizenity-nodetypes-{secrets.token_hex(3)}"
    _docker(
        "run", "-d", "--name", container, "-p", "127.0.0.1::5678", "-e", "DB_TYPE=sqlite",
        "-e", "N8N_DIAGNOSTICS_ENABLED=false", "-e", "N8N_SECURE_COOKIE=false", image,
    )  # fmt: skip
    try:
        base_url = _wait_ready(container)
        session = _TypesSession(base_url, timeout=120)
        email, password = "nodetypes@kaizenity.invalid", "Aa1" + secrets.token_urlsafe(16)
        session.set_up_owner(email, password)
        session.login(email, password)
        response = session.node_types()
        session.close()
        if response.status_code != httpx.codes.OK:
            raise GenerationError(f"GET /types/nodes.json: HTTP {response.status_code}: {response.text[:300]}")
        descriptions = response.json()
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True, check=False)
    if not isinstance(descriptions, list):
        raise GenerationError(f"GET /types/nodes.json: expected a list, got {type(descriptions).__name__}")
    return descriptions


def summarise(descriptions: list[dict[str, Any]], n8n_version: str) -> dict[str, Any]:
    """`{n8nVersion, nodeTypes: {name: [versions]}}`; refuses a suspiciously small or incomplete set."""
    versions: dict[str, set[float]] = {}
    for description in descriptions:
        raw = description.get("version")
        found = raw if isinstance(raw, list) else [raw]
        versions.setdefault(str(description["name"]), set()).update(float(v) for v in found if v is not None)
    missing = [s for s in SENTINELS if s not in versions]
    if len(versions) < MIN_TYPES or missing:
        raise GenerationError(
            f"n8n served {len(versions)} node types (expected at least {MIN_TYPES}); missing: {missing or 'none'}"
        )
    types = {name: [int(v) if v.is_integer() else v for v in sorted(vs)] for name, vs in sorted(versions.items())}
    return {"n8nVersion": n8n_version, "source": "GET /types/nodes.json of a running n8n", "nodeTypes": types}


def render(summary: dict[str, Any]) -> str:
    """JSON with one node type per line, so a version bump reads as a short diff."""
    lines = [f"  {json.dumps(name)}: {json.dumps(versions)}" for name, versions in summary["nodeTypes"].items()]
    head = {k: v for k, v in summary.items() if k != "nodeTypes"}
    opening = json.dumps(head)[:-1] + ', "nodeTypes": {\n'
    return opening + ",\n".join(lines) + "\n}}\n"


def main(argv: list[str]) -> int:
    version, image = pinned_image()
    if len(argv) > 1:
        image = argv[1]
    try:
        summary = summarise(fetch_descriptions(image), version)
    except (GenerationError, httpx.HTTPError, subprocess.TimeoutExpired) as exc:
        print(f"generate-known-node-types: {exc}\nNothing was written.", file=sys.stderr)
        return 1
    KNOWN_TYPES_FILE.write_text(render(summary), encoding="utf-8")
    print(f"{len(summary['nodeTypes'])} node types of n8n {version} written to {KNOWN_TYPES_FILE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
