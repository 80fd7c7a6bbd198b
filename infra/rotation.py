"""Rotating an environment's secrets without breaking it (issue 10, defect 5).

A secret that only reaches containers through their environment (the gateway's editor password, Redis's password)
rotates by recreating those containers. A secret that is also *stored* somewhere does not: PostgreSQL keeps role
passwords in its data directory and `POSTGRES_PASSWORD` / the n8n-database init script act only on an empty one
(docker-library postgres entrypoint contract), and n8n keeps its owner's password hash in its database. Those must
be changed in place, with the old secret, *before* the containers that carry the new one are recreated, or n8n
cannot log in and the rollout times out. This module is that "change in place" step, shared by the Pulumi path
(`infra/rotation_resource.py`, run by the engine before the PostgreSQL container) and the local engine
(`kaizenity rotate --local`, `infra/rotation_local.py`).

Not rotatable here, and why:
- n8nEncryptionKey: n8n encrypts every stored credential with it and writes it to its user folder; a new key makes
  them undecryptable ("Mismatching encryption keys") and n8n 2.8 has no re-encryption command.
- telegramWebhookSecret, telegramWebhookPathToken: Telegram must be told the new secret/URL (`setWebhook`) at the
  same moment n8n starts expecting it; that is a messenger cut-over, not a restart.
- telegramBotToken, codaApiToken: issued by Telegram/Coda; revoke and reissue there, then set the new value and run
  `pulumi up` (or seed again): the seeder rewrites the n8n credential.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Runs inside the PostgreSQL container over its local socket (works whether or not the port is published, e.g. in
# prod). The new password travels in the exec's environment and reaches SQL through psql variables (never in the
# command line or the SQL text); a role that does not exist yet (the app login before the first seeding) is skipped.
ALTER_ROLE_SCRIPT = """\
psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$KZ_SUPERUSER" --dbname postgres \\
  --set=role="$KZ_ROLE" --set=pw="$KZ_PASSWORD" <<'SQL'
SELECT format('ALTER ROLE %I PASSWORD %L', :'role', :'pw') FROM pg_roles WHERE rolname = :'role' \\gexec
SQL
"""


@dataclass(frozen=True)
class Rotation:
    """How one secret is rotated: which role's stored password follows it (if any), and whether n8n's owner does."""

    key: str
    role_env: str | None = None  # the PostgreSQL container env var naming the role whose password this is
    role_name: str | None = None  # or the role's fixed name
    n8n_owner: bool = False
    reseed: bool = False  # the seeder rewrites the n8n credential that carries it


ROTATIONS: dict[str, Rotation] = {
    "postgresPassword": Rotation("postgresPassword", role_env="POSTGRES_USER"),
    "n8nDbPassword": Rotation("n8nDbPassword", role_env="N8N_DB_USER"),
    "appDatabasePassword": Rotation("appDatabasePassword", role_name="kaizenity_n8n", reseed=True),
    # postgres_exporter's login (bootstrap/app_login.py MONITORING_USER); skipped where monitoring is off (no role)
    "monitoringDatabasePassword": Rotation("monitoringDatabasePassword", role_name="kaizenity_monitor"),
    # health's read-only login to n8n's database (bootstrap/app_login.py N8N_READER_USER): the seed sets it too, and
    # with Pulumi the seed-workflows resource re-runs on a new value; locally the re-seed records the new URL.
    "n8nReaderDbPassword": Rotation("n8nReaderDbPassword", role_name="kaizenity_n8n_reader", reseed=True),
    "n8nOwnerPassword": Rotation("n8nOwnerPassword", n8n_owner=True),
    "gatewayEditorPassword": Rotation("gatewayEditorPassword"),
    "redisPassword": Rotation("redisPassword"),
}
NOT_ROTATABLE: dict[str, str] = {
    "n8nEncryptionKey": "it encrypts every credential stored in n8n, and n8n 2.8 cannot re-encrypt them",
    "telegramWebhookSecret": "Telegram must get the new value through setWebhook at the same moment (a cut-over)",
    "telegramWebhookPathToken": "Telegram must get the new URL through setWebhook at the same moment (a cut-over)",
    "telegramBotToken": "it is issued by Telegram: reissue it at @BotFather, set it, then seed again",
    "codaApiToken": "it is issued by Coda: reissue it there, set it, then seed again",
}
# What the Pulumi resource changes in place (the others need no in-place step, or have their own: the seeder).
ROLE_SECRETS = (
    "n8nDbPassword",
    "appDatabasePassword",
    "monitoringDatabasePassword",
    "postgresPassword",
)  # the superuser's own password last


class RotationError(RuntimeError):
    """A rotation step failed; the message names the secret, the cause and what to do."""


def rotation_for(key: str) -> Rotation:
    """The rotation of `key`, or an error saying why it cannot be rotated."""
    if key in ROTATIONS:
        return ROTATIONS[key]
    reason = NOT_ROTATABLE.get(key, "it is not a secret of this bundle")
    raise RotationError(f"{key} cannot be rotated by kaizenity: {reason}. Rotatable: {', '.join(ROTATIONS)}.")


def role_of(rotation: Rotation, postgres_env: Mapping[str, str]) -> str | None:
    """The PostgreSQL role whose password `rotation` changes, read from the PostgreSQL container's settings."""
    if rotation.role_name:
        return rotation.role_name
    return postgres_env.get(rotation.role_env) if rotation.role_env else None


def alter_role_password(
    container: Any, superuser: str, superuser_password: str, role: str, new_password: str, *, secret_key: str
) -> None:
    """ALTER ROLE `role` PASSWORD `new_password` inside the running PostgreSQL `container` (a docker-py Container).

    `superuser_password` is the one the server knows *now* (the old one when the superuser's own password is being
    rotated); it is only needed where the image's local socket is not `trust` (docker-library's default is trust).
    """
    environment = {
        "KZ_SUPERUSER": superuser,
        "KZ_ROLE": role,
        "KZ_PASSWORD": new_password,
        "PGPASSWORD": superuser_password,
    }
    code, output = container.exec_run(["sh", "-c", ALTER_ROLE_SCRIPT], environment=environment, user="postgres")
    if code != 0:
        text = output.decode(errors="replace") if isinstance(output, bytes) else str(output)
        for secret in (new_password, superuser_password):
            text = text.replace(secret, "***")
        raise RotationError(
            f"rotating {secret_key}: ALTER ROLE {role} in container {container.name} failed (exit {code}): "
            f"{text.strip()[-400:]}. Nothing was recreated; the old secret still works. Fix the cause (is the "
            "container running and healthy?) and run the rotation again."
        )


def change_owner_password(
    n8n_url: str, old_password: str, new_password: str, *, max_login_wait_s: float | None = None
) -> None:
    """Log in to n8n as its owner with the old password and set the new one (no-op if the new one works).

    One login in the usual case, and one session for the login and the change: n8n counts every login attempt
    against a limit of 5 per minute per e-mail (workflows/n8n_api.py, LOGIN_ATTEMPTS_PER_WINDOW), and a rotation
    follows other logins (the seeding, the previous rotation). A 429 is waited out (N8nSession.login, bounded);
    a longer one fails with the cause and the fix, before anything was changed.
    """
    from workflows.deploy import OWNER_EMAIL
    from workflows.n8n_api import LOGIN_MAX_WAIT_S, N8nApiError, N8nRateLimited, N8nSession

    max_wait_s = LOGIN_MAX_WAIT_S if max_login_wait_s is None else max_login_wait_s
    session = N8nSession(n8n_url)
    try:
        try:
            session.login(OWNER_EMAIL, old_password, max_wait_s=max_wait_s)
        except N8nRateLimited as exc:
            raise _rate_limited(exc) from None
        except N8nApiError as refused:
            if refused.status != 401:
                raise RotationError(
                    f"rotating n8nOwnerPassword: n8n at {n8n_url} failed the login ({refused})."
                ) from None
            try:
                session.login(OWNER_EMAIL, new_password, max_wait_s=max_wait_s)
                return  # already rotated (a re-run after a failure further on)
            except N8nRateLimited as exc:
                raise _rate_limited(exc) from None
            except N8nApiError as exc:
                raise RotationError(
                    f"rotating n8nOwnerPassword: n8n at {n8n_url} accepts neither the old nor the new owner "
                    f"password ({exc}). Reset it with `n8n user-management:reset` in the n8n container, then set "
                    "the secret."
                ) from None
        session.change_password(old_password, new_password)
    finally:
        session.close()


def _rate_limited(exc: Exception) -> RotationError:
    return RotationError(f"rotating n8nOwnerPassword: {exc} Nothing was changed by this run.")
