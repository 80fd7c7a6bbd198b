"""`kaizenity:secrets:DatabaseRolePasswords`: PostgreSQL role passwords follow their secrets on `pulumi up`.

The PostgreSQL container depends on this resource, so on an `up` that rotates `postgresPassword`,
`n8nDbPassword` or `appDatabasePassword` the engine first runs this resource's Update, which changes the stored role
passwords inside the *running* PostgreSQL container with ALTER ROLE (infra/rotation.py, the same code as
`kaizenity rotate --local`), and only then replaces the containers whose environment carries the new value (their
env changed, and env is ForceNew in terraform-provider-docker). The superuser password used for that is the one the
server knows now: the old one, from this resource's previous state (`olds`).

Create records the passwords and changes nothing: on a new environment the roles get them from initdb, the init
script and the seeder. Delete changes nothing. It runs through the Docker engine (`docker exec` on the local
socket), so it works in stacks that do not publish PostgreSQL (prod) too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider, UpdateResult

from infra.model import EnvironmentModel, SecretRef, ServiceSpec
from infra.rotation import ROLE_SECRETS, ROTATIONS, alter_role_password, role_of
from infra.secrets import Needed, keys_needed

SECRET_OUTPUTS = ["passwords"]


def rotated_keys(olds: dict[str, Any], news: dict[str, Any]) -> list[str]:
    """The role secrets whose value differs, in the order they must be applied (the superuser's own last)."""
    before: dict[str, str] = olds.get("passwords") or {}
    after: dict[str, str] = news.get("passwords") or {}
    return [key for key in ROLE_SECRETS if key in after and before.get(key) != after[key]]


class DatabaseRolePasswordsProvider(ResourceProvider):
    """Update = ALTER ROLE for each rotated role secret, with the superuser password the server has now."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_="database-role-passwords", outs=props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = bool(rotated_keys(olds, news)) or olds.get("roles") != news.get("roles")
        return DiffResult(changes=changed, replaces=[], delete_before_replace=False)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        import docker

        container = docker.from_env().containers.get(news["containerName"])
        superuser_password = (olds.get("passwords") or {}).get("postgresPassword") or news["passwords"][
            "postgresPassword"
        ]
        for key in rotated_keys(olds, news):
            role = news["roles"][key]
            alter_role_password(
                container, news["superuser"], superuser_password, role, news["passwords"][key], secret_key=key
            )
            if key == "postgresPassword":
                superuser_password = news["passwords"][key]
        return UpdateResult(outs=news)

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Nothing: the roles belong to the database."""


class DatabaseRolePasswords(pulumi.dynamic.Resource):
    """The role passwords stored in PostgreSQL, kept equal to the stack's secrets."""

    def __init__(
        self,
        name: str,
        *,
        container_name: str,
        superuser: str,
        roles: dict[str, str],
        passwords: dict[str, pulumi.Input[str]],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {
            "containerName": container_name,
            "superuser": superuser,
            "roles": roles,
            "passwords": pulumi.Output.secret(passwords),
        }
        secret_opts = pulumi.ResourceOptions(additional_secret_outputs=SECRET_OUTPUTS)
        super().__init__(DatabaseRolePasswordsProvider(), name, props, pulumi.ResourceOptions.merge(opts, secret_opts))


def role_passwords_for(
    model: EnvironmentModel, resolve: Callable[[SecretRef], pulumi.Output[str]], parent: pulumi.Resource
) -> DatabaseRolePasswords | None:
    """The resource for this environment's PostgreSQL (None without one); its container must depend on it."""
    postgres: ServiceSpec | None = next((s for s in model.services if s.kind == "postgres"), None)
    if postgres is None:
        return None
    env = {k: v for k, v in postgres.env if isinstance(v, str)}
    # Only the secrets this environment has (monitoringDatabasePassword exists where monitoring is on).
    present = model.secret_keys() | set(keys_needed(Needed.BY_SEEDING))
    roles = {key: role for key in ROLE_SECRETS if key in present and (role := role_of(ROTATIONS[key], env))}
    return DatabaseRolePasswords(
        "database-role-passwords",
        container_name=postgres.container_name,
        superuser=env["POSTGRES_USER"],
        roles=roles,
        passwords={key: resolve(SecretRef(key)) for key in roles},
        opts=pulumi.ResourceOptions(parent=parent),
    )
