"""`kaizenity:n8n:SeedWorkflows`: the seed workflows as a Pulumi resource (a dynamic provider).

Its `definitions` input maps each workflow file to the hash of its content, so `pulumi preview` shows exactly
which workflow files changed, and an `up` with no changed file (and unchanged values) changes nothing. Create
and update run the same seeder (`infra.seeding.seed_environment`) as `kaizenity workflows seed` and the local
engine: the app login role, then owner, a short-lived API key (deleted when the run ends), credentials, workflows
(validated first: one invalid file, nothing deployed), then health's read-only login to n8n's database. The
credential fingerprints are kept in the resource's state (secret), so later runs reuse them; no API key is kept
(states written by older versions hold an `apiKey` output: the next update drops it).

Like the migrations, it runs from the Pulumi host and needs n8n and PostgreSQL published on loopback there.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider, UpdateResult

from infra.database_identity import IDENTITY_OUTPUT, INSTANCE_INPUT, database_was_recreated, system_identifier
from workflows.definitions import DEFINITIONS_DIR, ROOT

# Every output that holds a secret or is derived from one. The dynamic provider does not accept secrets, so the
# engine re-marks outputs secret only where a same-named *input* was secret (pulumi/pulumi
# pkg/resource/plugin/provider_plugin.go `annotateSecrets`): `credentialFingerprints` is an output only and would
# land in state in plain text without this list (issue 10, defect 3).
SECRET_OUTPUTS = ["credentialFingerprints", "values", "valuesHash", "ownerPassword", "databaseUrl", "readerPassword"]


def definition_hashes() -> dict[str, str]:
    """`{"heartbeat.json": "<sha256>", ...}` plus the parameter and credential declarations they use."""
    files = [*sorted(DEFINITIONS_DIR.glob("*.json")), ROOT / "parameters.yaml", ROOT / "credentials.yaml"]
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in files}


def changed_definitions(olds: dict[str, Any], news: dict[str, Any]) -> list[str]:
    """Workflow files (and declarations) whose content differs from what the last update deployed."""
    before: dict[str, str] = olds.get("definitions") or {}
    after: dict[str, str] = news.get("definitions") or {}
    return sorted(name for name in set(before) | set(after) if before.get(name) != after.get(name))


class SeedWorkflowsProvider(ResourceProvider):
    """Seeds n8n on create/update; its diff is the set of changed workflow files (or changed values)."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_="seed-workflows", outs=self._seed(props, {}))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        values_changed = olds.get("valuesHash") != news.get("valuesHash")
        changed = bool(changed_definitions(olds, news)) or values_changed or olds.get("n8nUrl") != news.get("n8nUrl")
        # A rotated n8nOwnerPassword must reach n8n (update sets it there with the old one).
        changed = changed or olds.get("ownerPassword") != news.get("ownerPassword")
        # Health's reader login: a new or rotated password is set by the seeder (an old state has none: seed again).
        changed = changed or olds.get("readerPassword") != news.get("readerPassword")
        changed = changed or olds.get("n8nDatabase") != news.get("n8nDatabase")
        # A state written by an older version keeps an n8n API key: seed again, which deletes it in n8n and here.
        changed = changed or bool(olds.get("apiKey"))
        # n8n's own database and the app login live on the same PostgreSQL: recreated means seed again.
        changed = changed or database_was_recreated(olds, news)
        return DiffResult(changes=changed, replaces=[], delete_before_replace=False)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=self._seed(news, olds))

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Nothing: the workflows stay in n8n (and in its database) when the resource leaves the stack."""

    @staticmethod
    def _seed(props: dict[str, Any], olds: dict[str, Any]) -> dict[str, Any]:
        from infra.seeding import seed_environment

        old_owner_password = olds.get("ownerPassword")
        if old_owner_password and old_owner_password != props["ownerPassword"]:
            from infra.rotation import change_owner_password

            # n8n stores the owner's password hash: a rotated n8nOwnerPassword is set there with the old one first.
            change_owner_password(props["n8nUrl"], old_owner_password, props["ownerPassword"])
        report = seed_environment(
            n8n_url=props["n8nUrl"],
            database_url=props["databaseUrl"],
            owner_password=props["ownerPassword"],
            values=dict(props["values"]),
            n8n_database=props.get("n8nDatabase"),
            reader_password=props.get("readerPassword"),
            known_fingerprints=olds.get("credentialFingerprints"),
        )
        return {
            **props,
            "credentialFingerprints": report.credential_fingerprints,
            IDENTITY_OUTPUT: system_identifier(props["databaseUrl"]),
        }


class SeedWorkflows(pulumi.dynamic.Resource):
    """The platform's n8n workflows, as in this checkout's workflows/ directory."""

    def __init__(
        self,
        name: str,
        *,
        n8n_url: str,
        database_url: pulumi.Input[str],
        owner_password: pulumi.Input[str],
        values: pulumi.Input[dict[str, str]],
        opts: pulumi.ResourceOptions | None = None,
        database_instance: pulumi.Input[str] | None = None,
        n8n_database: str | None = None,
        reader_password: pulumi.Input[str] | None = None,
    ) -> None:
        values_output = pulumi.Output.from_input(values)
        super().__init__(
            SeedWorkflowsProvider(),
            name,
            {
                "n8nUrl": n8n_url,
                "databaseUrl": pulumi.Output.secret(database_url),
                "ownerPassword": pulumi.Output.secret(owner_password),
                "values": pulumi.Output.secret(values_output),
                "valuesHash": pulumi.Output.secret(values_output.apply(_values_hash)),
                "definitions": definition_hashes(),
                # The PostgreSQL container's id: a replaced database server is seeded again.
                INSTANCE_INPUT: database_instance,
                # Health's read-only login to n8n's database (bootstrap/app_login.py ensure_n8n_reader).
                "n8nDatabase": n8n_database,
                "readerPassword": pulumi.Output.secret(reader_password) if reader_password is not None else None,
                "credentialFingerprints": None,
                IDENTITY_OUTPUT: None,
            },
            pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=SECRET_OUTPUTS)),
        )


def _values_hash(values: dict[str, str]) -> str:
    """A digest of the seed values (secrets included), so a rotated secret re-seeds without revealing it."""
    return hashlib.sha256(repr(sorted(values.items())).encode()).hexdigest()
