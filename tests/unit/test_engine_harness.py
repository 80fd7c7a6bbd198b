"""The program and its dynamic providers, started the way the Pulumi engine starts them (see engine_harness.py).

Each test names the engine/SDK source it reproduces. These are the checks `set_mocks` alone cannot make: which
directory and virtualenv the plugin gets, whether the pickled providers unpickle there, whether the program's
imports work on a host where nothing ran `pip install -e .`.
"""

from __future__ import annotations

import dataclasses
import json
import sysconfig
from pathlib import Path

import pytest

from infra.migrations_resource import SchemaMigrationsProvider, migration_checksums
from infra.workflows_resource import SeedWorkflowsProvider, definition_hashes
from tests.unit.engine_harness import (
    DYNAMIC_TYPE,
    REPO_ROOT,
    ShimError,
    bare_venv,
    dynamic_provider,
    load_project,
    plugin_env,
    run_program,
    shim_python,
    with_provider,
)
from tests.unit.pulumi_harness import TEST_SECRETS, stack_config


def test_the_plugin_shim_finds_the_projects_virtualenv_from_the_main_directory() -> None:
    """Defect 1. pkg/engine/project.go `getPwdMain` gives the plugin's cwd; provider_plugin.go passes
    `PULUMI_RUNTIME_VIRTUALENV` verbatim; sdk/python/dist/pulumi-resource-pulumi-python resolves it against $PWD.
    With `main: infra/` that is infra/.venv, which nothing creates (pulumi/pulumi issue 7061)."""
    project = load_project()
    env = plugin_env(project, {"PATH": "/usr/bin"})
    assert env["PULUMI_RUNTIME_VIRTUALENV"] == ".venv"
    assert env["PULUMI_RUNTIME_TOOLCHAIN"] == "pip"
    python, shimmed = shim_python(project.pwd, env)
    assert Path(python) == REPO_ROOT / ".venv" / "bin" / "python", "the venv `make setup` and `pulumi install` create"
    assert shimmed["PATH"].startswith(str(REPO_ROOT / ".venv" / "bin"))


def test_the_shim_refuses_a_virtualenv_that_does_not_exist(tmp_path: Path) -> None:
    """The harness reproduces the shim's failure (what the old `main: infra/` layout ran into)."""
    with pytest.raises(ShimError, match=r"infra/\.venv\" doesn't exist"):
        shim_python(tmp_path / "infra", {"PULUMI_RUNTIME_VIRTUALENV": ".venv/"})


def test_dynamic_providers_unpickle_and_answer_over_grpc_in_the_main_directory() -> None:
    """`python -m pulumi.dynamic` (pulumi/dynamic/__main__.py) started with the engine's cwd and env, driven over
    gRPC with `__provider` serialised by pulumi/dynamic/dynamic.py `serialize_provider`."""
    with dynamic_provider(load_project()) as plugin:
        assert plugin.plugin_info()
        assert plugin.configure() is False, "the dynamic provider does not accept secrets: see additional outputs"
        migrations = with_provider(
            SchemaMigrationsProvider(),
            {"databaseUrl": "postgresql://u:p@127.0.0.1:1/db", "checksums": migration_checksums()},
        )
        checked = plugin.check({}, migrations)
        assert checked["checksums"] == migration_checksums()
        olds = {**checked, "applied": [], "systemIdentifier": "7000"}
        assert plugin.diff("schema-migrations", olds, checked).changes == 1  # DIFF_NONE
        edited = {**checked, "checksums": {**migration_checksums(), "0001_roles.sql": "edited"}}
        assert plugin.diff("schema-migrations", olds, edited).changes == 2  # DIFF_SOME
        seed = with_provider(SeedWorkflowsProvider(), {"definitions": definition_hashes(), "valuesHash": "v"})
        seed_checked = plugin.check({}, seed)
        assert plugin.diff("seed-workflows", seed_checked, seed_checked).changes == 1


def _program_config(stack: str) -> tuple[dict[str, str], list[str]]:
    config = stack_config(stack)
    flat = {f"kaizenity:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    return flat, [f"kaizenity:{k}" for k in config if k in TEST_SECRETS]


def test_program_and_plugin_run_where_the_bundle_is_not_installed(tmp_path: Path) -> None:
    """Defect 2. The language host runs `runpy.run_path(<main>)` after chdir to the main directory
    (sdk/python/cmd/pulumi-language-python-exec); the plugin imports the providers' module to unpickle them. Neither
    may depend on an editable install: a virtualenv with only the third-party packages must run both."""
    python = bare_venv(tmp_path / "venv", Path(sysconfig.get_paths()["purelib"]))
    project = load_project()
    config, secret_keys = _program_config("dev")
    completed, records = run_program(project, python, "dev", config, secret_keys)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert {r["name"] for r in records if r["type"] == DYNAMIC_TYPE} == {
        "database-role-passwords",
        "schema-migrations",
        "seed-workflows",
    }
    bare = dataclasses.replace(
        project, runtime_options={**project.runtime_options, "virtualenv": str(tmp_path / "venv")}
    )
    with dynamic_provider(bare) as plugin:
        props = with_provider(SchemaMigrationsProvider(), {"databaseUrl": "x", "checksums": {}})
        assert plugin.check({}, props)["checksums"] == {}, "the pickled provider unpickles in the plugin"


def test_program_registrations_carry_the_secret_outputs(tmp_path: Path) -> None:
    """Defect 3, as the program itself (run from its main directory) registers the dynamic resources."""
    config, secret_keys = _program_config("ci")
    completed, records = run_program(
        load_project(), str(REPO_ROOT / ".venv" / "bin" / "python"), "ci", config, secret_keys
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    dynamic = {r["name"]: r for r in records if r["type"] == DYNAMIC_TYPE}
    seed_secrets = set(dynamic["seed-workflows"]["additionalSecretOutputs"])
    assert {"credentialFingerprints", "readerPassword"} <= seed_secrets
    assert "apiKey" not in seed_secrets, "no n8n API key is kept in the state any more"
    assert "databaseUrl" in dynamic["schema-migrations"]["additionalSecretOutputs"]
