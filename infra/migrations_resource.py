"""`kaizenity:schema:Migrations`: the schema migrations as a Pulumi resource (a dynamic provider).

Its inputs are the migration files' checksums and the database URL (secret). Its diff is the set of migrations
that are new or changed since the last `pulumi up`, so an `up` with no new file changes nothing; create and
update run the same runner as `kaizenity db apply` and CI (advisory lock, one transaction per file, drift
refused). Deleting the resource never drops the schema: it is the platform's data. A recreated database (new
PostgreSQL container, or a different `system_identifier`) is a change too, so it gets migrated
(infra/database_identity.py).

The runner connects from the machine that runs Pulumi, so the database must be published there (loopback).
With `postgres.publish: none` (prod) the program registers no such resource and warns: run `kaizenity db apply`
through a tunnel or from a host on the environment's network instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider, UpdateResult

from infra.database_identity import IDENTITY_OUTPUT, INSTANCE_INPUT, database_was_recreated, system_identifier

RESOURCE_TYPE = "kaizenity:schema:Migrations"
# Outputs holding a secret. The dynamic provider answers Configure with acceptSecrets=False, so the engine gets
# plain outputs and re-marks only those whose same-named input was secret (pulumi/pulumi
# pkg/resource/plugin/provider_plugin.go `annotateSecrets`); naming them here keeps them encrypted in state even
# if an input stops being secret.
SECRET_OUTPUTS = ["databaseUrl", "logins"]


def migration_checksums() -> dict[str, str]:
    """`{"0001_roles.sql": "<sha256>", ...}` for the files in this checkout."""
    from bootstrap.catalog import load_migrations

    return {m.label: m.checksum for m in load_migrations()}


def pending_between(olds: dict[str, Any], news: dict[str, Any]) -> list[str]:
    """Files new or changed in `news` compared with what the last update applied."""
    before: dict[str, str] = olds.get("checksums") or {}
    after: dict[str, str] = news.get("checksums") or {}
    return sorted(label for label, checksum in after.items() if before.get(label) != checksum)


class SchemaMigrationsProvider(ResourceProvider):
    """Applies pending migrations on create/update; its diff is the pending set."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_="schema-migrations", outs=self._apply(props))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = bool(pending_between(olds, news)) or database_was_recreated(olds, news)
        # A login added (monitoring turned on) or its password changed: made or set again after the migrations.
        changed = changed or (olds.get("logins") or {}) != (news.get("logins") or {})
        return DiffResult(changes=changed, replaces=[], stables=["databaseUrl"], delete_before_replace=False)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=self._apply(news))

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Nothing: removing the resource from the stack must not remove the schema and its data."""

    @staticmethod
    def _apply(props: dict[str, Any]) -> dict[str, Any]:
        from bootstrap.app_login import ensure_logins
        from bootstrap.runner import apply_migrations

        applied = apply_migrations(props["databaseUrl"])
        ensure_logins(props["databaseUrl"], props.get("logins") or {})
        identity = system_identifier(props["databaseUrl"])
        return {**props, "applied": [m.label for m in applied], IDENTITY_OUTPUT: identity}


class SchemaMigrations(pulumi.dynamic.Resource):
    """The platform schema at the version of this checkout's migration files."""

    applied: pulumi.Output[list[str]]

    def __init__(
        self,
        name: str,
        database_url: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
        database_instance: pulumi.Input[str] | None = None,
        logins: Mapping[str, pulumi.Input[str]] | None = None,
    ) -> None:
        props = {
            "databaseUrl": pulumi.Output.secret(database_url),
            # Per-environment logins (user -> password) in the migrations' group roles (bootstrap/app_login.py).
            "logins": pulumi.Output.secret(logins or {}),
            "checksums": migration_checksums(),
            # The PostgreSQL container's id: a replaced container (and volume) re-runs the migrations.
            INSTANCE_INPUT: database_instance,
            "applied": None,
            IDENTITY_OUTPUT: None,
        }
        secret_opts = pulumi.ResourceOptions(additional_secret_outputs=SECRET_OUTPUTS)
        super().__init__(SchemaMigrationsProvider(), name, props, pulumi.ResourceOptions.merge(opts, secret_opts))
