"""Run a Pulumi program's entry point as `pulumi-language-python-exec` does, with mocks in place of the engine.

Started by tests/unit/engine_harness.py `run_program` in a subprocess, with the interpreter of the virtualenv under
test. Mirrors pulumi/pulumi sdk/python/cmd/pulumi-language-python-exec: config from PULUMI_CONFIG and
PULUMI_CONFIG_SECRET_KEYS (`set_all_config`), chdir to `--pwd`, then
`runpy.run_path(<entry point>, run_name="__main__")` awaited until every registration is done. Only the engine is
replaced: `set_mocks` (which creates the root stack itself) instead of `configure(Settings(monitor=...))`, and the
SDK's `run_pulumi_func` (what `run_in_stack` runs inside the stack, and what `pulumi.runtime.test` uses) instead of
`run_in_stack`. Writes every registration (type, name and resource options) as JSON to KZ_DRIVER_OUT.
Deliberately imports nothing from this repository: the program must find its own modules.
"""

from __future__ import annotations

import asyncio
import json
import os
import runpy
import sys
from typing import Any

import pulumi
import pulumi.runtime
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.stack import run_pulumi_func


class _Mocks(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        outputs = dict(args.inputs)
        if args.typ == "docker:index/remoteImage:RemoteImage":
            outputs["imageId"] = "sha256:" + "0" * 64
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


class _Recorder(MockMonitor):
    records: list[dict[str, Any]]

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.records = []

    def RegisterResource(self, request: Any) -> Any:
        self.records.append(
            {
                "type": request.type,
                "name": request.name,
                "additionalSecretOutputs": list(request.additionalSecretOutputs),
                "replaceOnChanges": list(request.replaceOnChanges),
                "ignoreChanges": list(request.ignoreChanges),
                "retainOnDelete": request.retainOnDelete,
                "deleteBeforeReplace": request.deleteBeforeReplace,
                "protect": request.protect,
            }
        )
        return super().RegisterResource(request)  # type: ignore[no-untyped-call]


def main() -> int:
    pulumi.runtime.set_all_config(pulumi.runtime.get_config_env(), pulumi.runtime.get_config_secret_keys_env())
    project, stack = os.environ["KZ_DRIVER_PROJECT"], os.environ["KZ_DRIVER_STACK"]
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)  # before set_mocks: the root stack's registration is scheduled on this loop
    mocks = _Mocks()
    monitor = _Recorder(mocks)
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False, monitor=monitor)
    os.chdir(os.environ["KZ_DRIVER_PWD"])
    program = os.environ["KZ_DRIVER_PROGRAM"]

    def run() -> None:
        runpy.run_path(program, run_name="__main__")

    try:
        loop.run_until_complete(run_pulumi_func(run))
    finally:
        with open(os.environ["KZ_DRIVER_OUT"], "w", encoding="utf-8") as out:
            json.dump(monitor.records, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
