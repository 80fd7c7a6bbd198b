"""Start the program and the Python dynamic-provider plugin the way the Pulumi engine does, without the CLI.

The CLI (engine, language host, plugin shim) cannot be installed here; the pip package ships the provider server
(`python -m pulumi.dynamic`) and the gRPC protobufs. This module reproduces, from the engine's source, what
happens around them, so tests catch the layout and packaging faults `set_mocks` cannot see:

- Working directory: the engine resolves `main` with `getPwdMain` (pulumi/pulumi pkg/engine/project.go): for a
  directory `main`, pwd = <root>/<main>; without `main`, pwd = root. The plugin context's Pwd is that directory
  (pkg/engine/deployment.go `ProjectInfoContext` -> `plugin.NewContextWithRoot(..., pwd, projinfo.Root, ...)`), and
  plugins are exec'd there (pkg/resource/plugin/plugin.go `ExecPlugin`: `cmd.Dir = pwd`).
- Environment of a resource plugin (pkg/resource/plugin/provider_plugin.go `NewProvider`): every runtime option of
  Pulumi.yaml as `PULUMI_RUNTIME_<OPTION>=<value>` (so `PULUMI_RUNTIME_VIRTUALENV=.venv`, verbatim, relative),
  `PULUMI_PROJECT=<project>`, and `PULUMI_CONFIG=<JSON of the config in the plugin's namespace>`; the plugin's only
  argument is the engine's address.
- The plugin binary is the CLI's shim `pulumi-resource-pulumi-python` (sdk/python/dist/): it falls back to `.venv`
  for toolchain uv, strips a trailing slash, makes the virtualenv absolute against **$PWD** (the main directory,
  pulumi/pulumi issue 7061), and runs `$VENV/bin/python -u -m pulumi.dynamic "$@"` with `$VENV/bin` first on PATH
  and PYTHONHOME unset; if `$VENV/bin/python` is missing it prints "... doesn't exist" and exits 1.
  :func:`shim_python` is that logic in Python.
- The provider prints its port on stdout's first line (pulumi/dynamic/__main__.py `main`); the engine dials it,
  calls Configure (the dynamic provider answers acceptSecrets=False, so the engine sends secrets as plain values and
  re-marks outputs secret only where a same-named input was secret: provider_plugin.go `annotateSecrets`), then
  Check/Diff/Create/Update/Delete with the `__provider` property the SDK serialised
  (pulumi/dynamic/dynamic.py `serialize_provider`: dill, base64).
- The program: the language host runs `python -u pulumi-language-python-exec --pwd <pwd> ... <entry point>` from the
  virtualenv; that script chdirs to pwd and calls `runpy.run_path(<entry point>, run_name="__main__")` inside
  `pulumi.runtime.run_in_stack` (sdk/python/cmd/pulumi-language-python-exec). `program_driver.py` does the same
  with `set_mocks` in place of the engine's monitor.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc  # type: ignore[import-untyped]
import yaml
from google.protobuf import empty_pb2, struct_pb2  # type: ignore[import-untyped]
from pulumi.dynamic.dynamic import PROVIDER_KEY, ResourceProvider, serialize_provider
from pulumi.runtime import rpc
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

REPO_ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("program_driver.py")
DYNAMIC_TYPE = "pulumi-python:dynamic:Resource"


class ShimError(RuntimeError):
    """The plugin shim refused to start: the resolved virtualenv has no bin/python (what it prints, exit 1)."""


@dataclass(frozen=True)
class Project:
    """What the engine reads from Pulumi.yaml to start the program and its plugins."""

    root: Path
    name: str
    main: str | None
    runtime_options: dict[str, Any]

    @property
    def pwd(self) -> Path:
        """`getPwdMain`: the main directory (or the root without `main`); programs and plugins run there."""
        if not self.main:
            return self.root
        main = (self.root / self.main).resolve()
        return main if main.is_dir() else main.parent

    @property
    def entry_point(self) -> str:
        """`getPwdMain`'s second value: "." for a directory main (run_path then runs its __main__.py)."""
        if not self.main:
            return "."
        main = (self.root / self.main).resolve()
        return "." if main.is_dir() else main.name


def load_project(root: Path = REPO_ROOT) -> Project:
    raw = yaml.safe_load((root / "Pulumi.yaml").read_text(encoding="utf-8"))
    runtime = raw.get("runtime")
    options = dict(runtime.get("options") or {}) if isinstance(runtime, dict) else {}
    return Project(root=root, name=str(raw["name"]), main=raw.get("main"), runtime_options=options)


def plugin_env(project: Project, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The resource plugin's environment (provider_plugin.go `NewProvider`): ambient env + runtime options,
    project name and the plugin namespace's config (none for `pulumi-python`: "{}")."""
    env = dict(os.environ if base is None else base)
    for key, value in project.runtime_options.items():
        env[f"PULUMI_RUNTIME_{key.upper()}"] = str(value)
    env["PULUMI_PROJECT"] = project.name
    env["PULUMI_CONFIG"] = "{}"
    return env


def shim_python(pwd: Path, env: dict[str, str]) -> tuple[str, dict[str, str]]:
    """The interpreter `pulumi-resource-pulumi-python` would exec, and its environment (see module docstring)."""
    venv = env.get("PULUMI_RUNTIME_VIRTUALENV", "")
    if not venv and env.get("PULUMI_RUNTIME_TOOLCHAIN") == "uv":
        venv = ".venv"
    if not venv:
        return env.get("PULUMI_PYTHON_CMD", "python3"), env
    venv = venv.rstrip("/")
    path = venv if venv.startswith("/") else f"{pwd}/{venv}"
    python = Path(path) / "bin" / "python"
    if not python.is_file():
        state = "doesn't appear to be a virtual environment" if Path(path).is_dir() else "doesn't exist"
        raise ShimError(f'The \'virtualenv\' option in Pulumi.yaml is set to "{path}", but "{path}" {state}.')
    shimmed = {k: v for k, v in env.items() if k != "PYTHONHOME"}
    shimmed["PATH"] = f"{path}/bin:{env.get('PATH', '')}"
    return str(python), shimmed


def to_struct(props: Mapping[str, Any]) -> struct_pb2.Struct:
    """Properties as the engine sends them to a provider that does not accept secrets: plain values."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(rpc.serialize_properties(dict(props), {}))
    finally:
        loop.close()


def from_struct(struct: struct_pb2.Struct) -> dict[str, Any]:
    return dict(rpc.deserialize_properties(struct, keep_unknowns=True))


def with_provider(provider: ResourceProvider, props: Mapping[str, Any]) -> dict[str, Any]:
    """`props` plus `__provider` exactly as `pulumi.dynamic.Resource.__init__` serialises it."""
    return {**props, PROVIDER_KEY: serialize_provider(provider)}


@dataclass
class ProviderClient:
    """A running dynamic-provider plugin and a gRPC stub to it, with the engine's request shapes."""

    process: subprocess.Popen[bytes]
    stub: provider_pb2_grpc.ResourceProviderStub
    urn: str = "urn:pulumi:test::kaizenity::pulumi-python:dynamic:Resource::test"

    def plugin_info(self) -> str:
        return str(self.stub.GetPluginInfo(empty_pb2.Empty()).version)

    def configure(self) -> bool:
        """Configure as the engine does; returns the provider's acceptSecrets."""
        response = self.stub.Configure(
            provider_pb2.ConfigureRequest(args=to_struct({}), acceptSecrets=True, acceptResources=True)
        )
        return bool(response.acceptSecrets)

    def check(self, olds: Mapping[str, Any], news: Mapping[str, Any]) -> dict[str, Any]:
        response = self.stub.Check(provider_pb2.CheckRequest(urn=self.urn, olds=to_struct(olds), news=to_struct(news)))
        assert not response.failures, response.failures
        return from_struct(response.inputs)

    def diff(self, id_: str, olds: Mapping[str, Any], news: Mapping[str, Any]) -> Any:
        """The DiffResponse: `.changes` is 1 (DIFF_NONE) or 2 (DIFF_SOME), `.replaces` the replaced keys."""
        return self.stub.Diff(
            provider_pb2.DiffRequest(id=id_, urn=self.urn, olds=to_struct(olds), news=to_struct(news))
        )

    def create(self, props: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        response = self.stub.Create(provider_pb2.CreateRequest(urn=self.urn, properties=to_struct(props)))
        return str(response.id), from_struct(response.properties)

    def update(self, id_: str, olds: Mapping[str, Any], news: Mapping[str, Any]) -> dict[str, Any]:
        request = provider_pb2.UpdateRequest(id=id_, urn=self.urn, olds=to_struct(olds), news=to_struct(news))
        return from_struct(self.stub.Update(request).properties)

    def delete(self, id_: str, props: Mapping[str, Any]) -> None:
        self.stub.Delete(provider_pb2.DeleteRequest(id=id_, urn=self.urn, properties=to_struct(props)))


@contextmanager
def dynamic_provider(
    project: Project, *, env: Mapping[str, str] | None = None, timeout: float = 60
) -> Iterator[ProviderClient]:
    """Start the plugin as the engine would (cwd = main directory, engine env, shim's interpreter) and dial it."""
    python, shim_env = shim_python(project.pwd, plugin_env(project, env))
    process = subprocess.Popen(
        [python, "-u", "-m", "pulumi.dynamic", "127.0.0.1:1"],  # the engine's address: unused by this server
        cwd=project.pwd,
        env=shim_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        port = process.stdout.readline().decode().strip()
        if not port.isdigit():
            process.kill()
            stderr = process.communicate(timeout=10)[1].decode(errors="replace")
            raise RuntimeError(f"the dynamic provider did not print its port (got {port!r}): {stderr[-2000:]}")
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=timeout)
        try:
            yield ProviderClient(process, provider_pb2_grpc.ResourceProviderStub(channel))
        finally:
            channel.close()
    finally:
        process.kill()
        process.wait(timeout=10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def run_program(
    project: Project,
    python: str,
    stack: str,
    config: Mapping[str, str],
    secret_keys: list[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 180,
) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
    """Run the program's entry point as pulumi-language-python-exec does, under mocks, with `python`.

    Returns the process and the registrations the mock monitor received (type, name, additionalSecretOutputs ...).
    """
    out = project.root / ".pytest-registrations.json"
    run_env = dict(os.environ if env is None else env)
    run_env.update(
        {
            "KZ_DRIVER_PWD": str(project.pwd),
            "KZ_DRIVER_PROGRAM": project.entry_point,
            "KZ_DRIVER_PROJECT": project.name,
            "KZ_DRIVER_STACK": stack,
            "KZ_DRIVER_OUT": str(out),
            "PULUMI_CONFIG": json.dumps(dict(config)),
            "PULUMI_CONFIG_SECRET_KEYS": json.dumps(secret_keys),
        }
    )
    run_env.pop("PYTHONPATH", None)
    try:
        # The exec script runs as `python -u <its path>`: sys.path[0] is the script's own directory, not the project.
        completed = subprocess.run(
            [python, "-u", str(DRIVER)],
            cwd=project.root,
            env=run_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        records = json.loads(out.read_text(encoding="utf-8")) if out.is_file() else []
    finally:
        out.unlink(missing_ok=True)
    return completed, records


def secret_in_state(outs: Mapping[str, Any], secret_inputs: set[str], additional: list[str]) -> set[str]:
    """Which top-level outputs the engine stores encrypted, for a provider that does not accept secrets.

    pkg/resource/plugin/provider_plugin.go `annotateSecrets` re-marks an output secret where the same-named input
    held a secret; pkg/resource/deploy/source_eval.go (RegisterResource) marks the `additionalSecretOutputs` too.
    Everything else lands in the state file in plain text.
    """
    return {key for key in outs if key in secret_inputs or key in additional}


def bare_venv(target: Path, site_packages: Path) -> str:
    """A virtualenv that sees the installed third-party packages but NOT this bundle's editable install.

    `python -m venv --without-pip` plus a .pth line naming `site_packages`: a directory added by a .pth line is put on
    sys.path, but its own .pth files (the editable install's finder) are not processed, so `infra` is importable only
    from the working directory / program directory, as on a host where nothing ran `pip install -e .`.
    """
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(target)], check=True)
    python = target / "bin" / "python"
    own = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(own, "kaizenity-test-deps.pth").write_text(f"{site_packages}\n", encoding="utf-8")
    return str(python)
