"""A new stack file for `kaizenity bootstrap`: sensible defaults, asking only what cannot be defaulted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class StackChoices:
    """What a new team must decide: the public name and how TLS is done (and, for ACME, whom the CA mails)."""

    domain: str = "localhost"
    tls_mode: str = "internal"
    acme_email: str | None = None


def stack_config(choices: StackChoices) -> dict[str, Any]:
    """The `kaizenity:` config for these choices (the keys of a stack file's `config:` section)."""
    public = choices.tls_mode != "internal"
    gateway: dict[str, Any] = {
        "domain": choices.domain,
        "tlsMode": choices.tls_mode,
        "bindAddress": "0.0.0.0" if public else "127.0.0.1",  # noqa: S104 - a public gateway listens publicly
        "httpPort": 80 if public else 8080,
        "httpsPort": 443 if public else 8443,
    }
    if choices.acme_email:
        gateway["acmeEmail"] = choices.acme_email
    return {
        "kaizenity:protectVolumes": public,
        "kaizenity:gateway": gateway,
        "kaizenity:postgres": {"publish": "loopback", "hostPort": 5432},
        "kaizenity:n8n": {"publish": "loopback", "hostPort": 5678},
    }


def write_stack_file(path: Path, stack: str, choices: StackChoices) -> None:
    """Create the file (never overwrite: bootstrap only calls this when none exists)."""
    header = (
        f"# {stack}: created by `kaizenity bootstrap` on {datetime.now(UTC):%Y-%m-%d}. Edit freely; every key is\n"
        "# validated before anything is created (`kaizenity config --stack NAME`). Secrets are not kept here in\n"
        "# plain text: Pulumi encrypts them into this file, the local engine keeps them in .kaizenity/local/.\n"
    )
    body = yaml.safe_dump({"config": stack_config(choices)}, sort_keys=False)
    with path.open("x", encoding="utf-8") as handle:  # "x": fail rather than overwrite
        handle.write(header + body)
