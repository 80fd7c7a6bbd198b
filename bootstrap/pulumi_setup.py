"""Pulumi for a new team without a Pulumi Cloud account: a local file backend, a passphrase secrets provider,
and every missing stack secret generated (never overwritten). Used by `kaizenity bootstrap` when the Pulumi CLI
is present. (Not exercised in this project's CI: the CLI cannot be installed on its machines.)"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Callable
from pathlib import Path

STATE_DIR = Path(".kaizenity/pulumi")
PASSPHRASE_FILE = STATE_DIR / "passphrase"


def run(
    args: list[str], say: Callable[[str], None], *, check: bool = True, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        ["pulumi", *args], capture_output=True, text=True, check=False, env=pulumi_env(), input=stdin
    )
    if check and completed.returncode != 0:
        raise RuntimeError(f"`pulumi {args[0]}` failed: {completed.stderr.strip()[-800:]}")
    return completed


def pulumi_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for every `pulumi` this bundle runs (bootstrap, `kaizenity up/down`, rotation).

    Stacks bootstrap created use the passphrase secrets provider with the passphrase in PASSPHRASE_FILE; without
    PULUMI_CONFIG_PASSPHRASE(_FILE) Pulumi would prompt, or fail when not on a terminal
    (pulumi/pulumi pkg/secrets/passphrase/manager.go). A passphrase the operator set is never overridden.
    """
    env = dict(os.environ if base is None else base)
    operator_set = env.get("PULUMI_CONFIG_PASSPHRASE") or env.get("PULUMI_CONFIG_PASSPHRASE_FILE")
    if not operator_set and PASSPHRASE_FILE.is_file():
        env["PULUMI_CONFIG_PASSPHRASE_FILE"] = str(PASSPHRASE_FILE.resolve())
    return env


def destroy_hint(stack: str, protect_volumes: bool) -> str | None:
    """What to tell the operator before `pulumi destroy` of a stack whose data volumes are protected."""
    if not protect_volumes:
        return None
    return (
        f"Stack '{stack}' protects its data volumes (protectVolumes: true): `pulumi destroy` fails "
        "at them. To remove everything but the data, run "
        f"`kaizenity down --stack {stack} --keep-data` (pulumi destroy --exclude-protected). To remove the stack "
        f"entirely: `pulumi state unprotect --all --stack {stack}`, then `kaizenity down`; the volumes are retained "
        "on the host (retainOnDelete) until you remove them with `docker volume rm` - back them up first."
    )


def ensure_backend(say: Callable[[str], None]) -> None:
    """Logged in somewhere already: keep it. Otherwise a file backend under .kaizenity/pulumi/state."""
    if run(["whoami"], say, check=False).returncode == 0:
        return
    state = (STATE_DIR / "state").resolve()
    state.mkdir(parents=True, exist_ok=True)
    run(["login", f"file://{state}"], say)
    say(f"Pulumi backend: local files in {state} (no Pulumi Cloud account needed)")
    if not PASSPHRASE_FILE.exists() and not os.environ.get("PULUMI_CONFIG_PASSPHRASE"):
        PASSPHRASE_FILE.touch(mode=0o600)
        PASSPHRASE_FILE.write_text(secrets.token_urlsafe(32), encoding="utf-8")
        say(f"secrets passphrase generated in {PASSPHRASE_FILE} (0600): back it up, it decrypts the stack's secrets")


def ensure_stack(stack: str, say: Callable[[str], None]) -> None:
    run(["stack", "select", "--create", stack], say)


def ensure_secrets(stack: str, say: Callable[[str], None]) -> None:
    from infra.local_engine import required_secret_keys
    from infra.secret_generation import generate_secrets

    for key, value in generate_secrets(required_secret_keys(stack)).items():
        if run(["config", "get", f"kaizenity:{key}", "--stack", stack], say, check=False).returncode == 0:
            continue  # never overwrite an existing secret
        # The value goes through stdin: never on a command line other users' `ps` can read.
        run(["config", "set", "--secret", f"kaizenity:{key}", "--stack", stack], say, stdin=value)
        say(f"generated secret kaizenity:{key}")
