"""Run the Pulumi program under `pulumi.runtime.set_mocks` and record every registered resource.

The Pulumi CLI and provider plugins cannot run here, so this is how the program is tested (as Pulumi
documents): the engine is mocked, the program is real, and tests assert on each resource's inputs, options and
dependencies as the engine would receive them.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import rpc

from infra.stack_files import load_stack_config

# Test values for the secrets the stack files leave to `pulumi config set --secret`.
TEST_SECRETS = {
    "postgresPassword": "pg-superuser-secret-value-0001",
    "n8nDbPassword": "n8n-db-role-secret-value-0002",
    "n8nEncryptionKey": "n8n-encryption-key-secret-value-0003",
    "gatewayEditorPassword": "gateway-editor-secret-0004",
    "gatewayEditorPasswordSalt": "gateway-editor-salt-secret-0010",
    "redisPassword": "redis-queue-secret-value-0005",
    "n8nOwnerPassword": "Owner-password-0006",
    "appDatabasePassword": "app-db-login-secret-value-0007",
    "telegramWebhookSecret": "telegram-webhook-secret-0008",
    "telegramWebhookPathToken": "telegram-path-token-value-0009",
    "monitoringDatabasePassword": "monitoring-db-login-secret-0011",
    "n8nReaderDbPassword": "n8n-reader-login-secret-0012",
}


@dataclass
class Registered:
    """One resource as the engine received it."""

    typ: str
    name: str
    inputs: dict[str, Any]
    parent: str = ""
    dependencies: list[str] = field(default_factory=list)
    protect: bool = False
    delete_before_replace: bool = False
    urn: str = ""
    additional_secret_outputs: list[str] = field(default_factory=list)
    replace_on_changes: list[str] = field(default_factory=list)
    ignore_changes: list[str] = field(default_factory=list)
    retain_on_delete: bool = False


@dataclass
class Rendered:
    """Everything one program run registered, with lookups for tests."""

    resources: list[Registered]
    outputs: dict[str, Any]

    def of_type(self, typ: str) -> list[Registered]:
        return [r for r in self.resources if r.typ == typ]

    def containers(self) -> dict[str, Registered]:
        return {r.inputs["name"]: r for r in self.of_type("docker:index/container:Container")}

    def by_urn(self, urn: str) -> Registered:
        return next(r for r in self.resources if r.urn == urn)

    def image_names(self) -> dict[str, str]:
        """Image id (what a container's `image` input holds) -> the image reference it was pulled by."""
        return {
            mock_image_id(r.inputs["name"]): r.inputs["name"]
            for r in self.of_type("docker:index/remoteImage:RemoteImage")
        }


def mock_image_id(name: str) -> str:
    """The image id the mocked engine gives a `RemoteImage` of this name (stable within one test run)."""
    return f"sha256:{abs(hash(name)):064x}"[:71]


class _Mocks(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        outputs = dict(args.inputs)
        if args.typ == "docker:index/remoteImage:RemoteImage":
            outputs["imageId"] = mock_image_id(args.inputs["name"])
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


class _RecordingMonitor(pulumi.runtime.mocks.MockMonitor):
    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.records: list[Registered] = []

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != "pulumi:pulumi:Stack":
            self.records.append(
                Registered(
                    typ=request.type,
                    name=request.name,
                    inputs=rpc.deserialize_properties(request.object),
                    parent=request.parent,
                    dependencies=list(request.dependencies),
                    protect=bool(request.protect),
                    delete_before_replace=bool(request.deleteBeforeReplace),
                    urn=response.urn,
                    additional_secret_outputs=list(request.additionalSecretOutputs),
                    replace_on_changes=list(request.replaceOnChanges),
                    ignore_changes=list(request.ignoreChanges),
                    retain_on_delete=bool(request.retainOnDelete),
                )
            )
        return response


def stack_config(stack: str, overrides: dict[str, Any] | None = None, with_secrets: bool = True) -> dict[str, Any]:
    """A stack file's `kaizenity:` config plus test secrets (what `pulumi config set --secret` would add)."""
    config = dict(load_stack_config(stack).values)
    if with_secrets:
        config.update(TEST_SECRETS)
    config.update(overrides or {})
    return config


def render(stack: str, config: dict[str, Any]) -> Rendered:
    """Run `infra.pulumi_program.deploy()` against mocks with this config; return what was registered."""
    from infra.pulumi_program import deploy

    asyncio.set_event_loop(asyncio.new_event_loop())
    pulumi.runtime.settings.reset_options(project="kaizenity", stack=stack, preview=False)
    flat = {f"kaizenity:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    secret_keys = [f"kaizenity:{k}" for k in config if k in TEST_SECRETS]
    pulumi.runtime.set_all_config(flat, secret_keys)
    mocks = _Mocks()
    monitor = _RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="kaizenity", stack=stack, preview=False, monitor=monitor)

    outputs: dict[str, Any] = {}

    async def collect(values: dict[str, pulumi.Output[Any]]) -> None:
        for key, output in values.items():
            value = await output.future()
            outputs[key] = {"value": value, "secret": await output.is_secret()}

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def program() -> Any:
        deploy()
        stack = pulumi.runtime.settings.get_root_resource()
        exported = {k: pulumi.Output.from_input(v) for k, v in stack.outputs.items()}  # type: ignore[union-attr]
        return asyncio.ensure_future(collect(exported))

    program()
    return Rendered(monitor.records, outputs)


def is_secret(value: Any) -> bool:
    """True when a deserialized input carries Pulumi's secret signature."""
    return isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig


def unwrap(value: Any) -> Any:
    """The plain value of a possibly-secret input."""
    return value["value"] if is_secret(value) else value
