"""The Pulumi program under `pulumi.runtime.set_mocks`: every registered resource's inputs, per stack.

The Pulumi CLI cannot run here; these tests run the real program against a mocked engine and assert on what
the engine would receive: images, env (and which of it is secret), ports and bind addresses, networks and
aliases, volumes, health checks, dependencies, options, outputs; queue mode on and off.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest

from infra.environment import build_environment
from infra.migrations_resource import SchemaMigrationsProvider, migration_checksums, pending_between
from infra.model import EnvironmentModel, SecretRef, ServiceSpec, internal_route_token
from infra.services import monitoring
from infra.settings_validation import parse_settings
from infra.stack_files import available_stacks
from infra.workflows_resource import SeedWorkflowsProvider, changed_definitions, definition_hashes
from tests.unit.pulumi_harness import (
    TEST_SECRETS,
    Registered,
    Rendered,
    is_secret,
    render,
    stack_config,
    unwrap,
)

STACKS = available_stacks()  # every stack file, including ones `kaizenity bootstrap` adds
CONTAINER = "docker:index/container:Container"


@cache
def rendered(stack: str) -> Rendered:
    return render(stack, stack_config(stack))


@cache
def model(stack: str) -> EnvironmentModel:
    return build_environment(parse_settings(stack, stack_config(stack)))


def env_of(container: Registered) -> dict[str, str]:
    entries = unwrap(container.inputs["envs"])
    return dict(entry.split("=", 1) for entry in (unwrap(e) for e in entries))


def expected_env(spec: ServiceSpec) -> dict[str, str]:
    return {k: "<secret>" if isinstance(v, SecretRef) else v for k, v in spec.env}


@pytest.mark.parametrize("stack", STACKS)
def test_resource_inventory(stack: str) -> None:
    result, env_model = rendered(stack), model(stack)
    types = sorted(r.typ for r in result.resources)
    services = len(env_model.services)
    images = len({s.image for s in env_model.services})
    expected = (
        ["docker:index/container:Container"] * services
        + ["docker:index/network:Network"]
        + ["docker:index/remoteImage:RemoteImage"] * images
        + ["docker:index/volume:Volume"] * len(env_model.volumes)
        + ["kaizenity:index:Environment"]
        + sorted(
            {
                "postgres": "kaizenity:service:PostgreSQL",
                "n8n": "kaizenity:service:N8n",
                "n8n-worker": "kaizenity:service:N8nWorker",
                "redis": "kaizenity:service:Redis",
                "gateway": "kaizenity:service:Gateway",
                "prometheus": "kaizenity:monitoring:Prometheus",
                "alertmanager": "kaizenity:monitoring:Alertmanager",
                "postgres-exporter": "kaizenity:monitoring:PostgresExporter",
                "redis-exporter": "kaizenity:monitoring:RedisExporter",
                "node-exporter": "kaizenity:monitoring:NodeExporter",
                "health-exporter": "kaizenity:monitoring:HealthExporter",
                "backup": "kaizenity:service:Backup",
            }[s.kind]
            for s in env_model.services
        )
        # the role passwords that follow rotated secrets (every stack: through the Docker engine)
        + ["pulumi-python:dynamic:Resource"]
        # the schema migrations, where the database is reachable from the Pulumi host (not prod)
        + (["pulumi-python:dynamic:Resource"] if env_model.endpoints.database_host_port is not None else [])
        # the seed workflows, where n8n is reachable too
        + (
            ["pulumi-python:dynamic:Resource"]
            if env_model.endpoints.database_host_port is not None and env_model.endpoints.n8n_host_url is not None
            else []
        )
    )
    assert types == sorted(expected)


@pytest.mark.parametrize("stack", STACKS)
def test_each_container_renders_its_model_spec_exactly(stack: str) -> None:
    """Renderer fidelity: no container property is added, dropped or changed on the way to Pulumi."""
    containers = rendered(stack).containers()
    specs = {s.container_name: s for s in model(stack).services}
    assert set(containers) == set(specs)
    for name, container in containers.items():
        spec, inputs = specs[name], container.inputs
        env = env_of(container)
        for key, value in expected_env(spec).items():
            assert key in env, (name, key)
            if value != "<secret>":
                assert env[key] == value, (name, key)
        assert set(env) == {k for k, _ in spec.env}
        assert inputs.get("command") == (list(spec.command) if spec.command else None)
        assert inputs.get("entrypoints") == (list(spec.entrypoint) if spec.entrypoint else None)
        assert inputs["memory"] == spec.memory_mb
        assert inputs.get("user") == spec.user
        assert inputs["restart"] == spec.restart
        assert inputs["capabilities"] == {"drops": list(spec.cap_drop), "adds": list(spec.cap_add)}
        assert inputs["securityOpts"] == list(spec.security_opts)
        assert inputs.get("readOnly", False) is spec.read_only_rootfs
        assert inputs.get("tmpfs", {}) == dict(spec.tmpfs)
        assert not any("pid" in key.lower() for key in inputs), "pulumi-docker 5.2 has no pids limit (docs/security.md)"
        assert inputs["logDriver"] == "json-file"
        assert inputs["logOpts"] == dict(spec.log_options)
        assert {(lbl["label"], lbl["value"]) for lbl in inputs["labels"]} == set(spec.labels)
        assert inputs["destroyGraceSeconds"] == spec.stop_grace_s
        assert inputs["mustRun"] is True
        assert [(u["file"], u["content"]) for u in inputs.get("uploads", [])] == [
            (u.target, u.content) for u in spec.uploads
        ]


@pytest.mark.parametrize("stack", STACKS)
def test_containers_use_the_image_id_of_a_kept_remote_image(stack: str) -> None:
    result = rendered(stack)
    images = {r.inputs["name"]: r for r in result.of_type("docker:index/remoteImage:RemoteImage")}
    settings_images = parse_settings(stack, stack_config(stack)).images
    monitoring_images = {s.image for s in model(stack).services if s.kind in monitoring.PORTS}
    assert (
        set(images)
        == {settings_images.postgres, settings_images.n8n, settings_images.gateway}
        | ({settings_images.redis} if any(s.kind == "redis" for s in model(stack).services) else set())
        | monitoring_images
    )
    assert all(image.inputs["keepLocally"] is True for image in images.values())
    for spec in model(stack).services:
        container = result.containers()[spec.container_name]
        assert container.inputs["image"].startswith("sha256:"), "the image id, not the name (forces recreation)"
        assert images[spec.image].urn in container.dependencies


def test_ci_stack_uses_the_offline_images_and_others_the_official_ones() -> None:
    ci = {r.inputs["name"] for r in rendered("ci").of_type("docker:index/remoteImage:RemoteImage")}
    dev = {r.inputs["name"] for r in rendered("dev").of_type("docker:index/remoteImage:RemoteImage")}
    assert all(name.startswith("kaizenity-local/") for name in ci)
    assert dev == {"postgres:17", "n8nio/n8n:2.8.4", "caddy:2.10"}
    n8n_tags = {name.rsplit(":", 1)[1] for name in ci | dev if "n8n" in name}
    assert n8n_tags == {"2.8.4"}, "offline and official n8n must be the same pinned version"


@pytest.mark.parametrize("stack", STACKS)
def test_secrets_are_secret_and_appear_nowhere_else(stack: str) -> None:
    result = rendered(stack)
    for resource in result.resources:
        plain = {k: v for k, v in resource.inputs.items() if not is_secret(v)}
        text = json.dumps(plain, default=str)
        for secret in TEST_SECRETS.values():
            assert secret not in text, (resource.name, secret[:8])
    for container in result.containers().values():
        spec = next(s for s in model(stack).services if s.container_name == container.inputs["name"])
        if spec.secret_keys():
            assert is_secret(container.inputs["envs"]), f"{spec.name}: env carries secrets, must be secret"


def test_secret_values_reach_the_containers_that_need_them() -> None:
    containers = rendered("prod").containers()
    assert env_of(containers["kaizenity-prod-postgres"])["POSTGRES_PASSWORD"] == TEST_SECRETS["postgresPassword"]
    n8n_env = env_of(containers["kaizenity-prod-n8n"])
    assert n8n_env["N8N_ENCRYPTION_KEY"] == TEST_SECRETS["n8nEncryptionKey"]
    assert env_of(containers["kaizenity-prod-n8n-worker-2"])["N8N_ENCRYPTION_KEY"] == TEST_SECRETS["n8nEncryptionKey"]
    gateway_hash = env_of(containers["kaizenity-prod-gateway"])["GATEWAY_EDITOR_PASSWORD_HASH"]
    assert gateway_hash != TEST_SECRETS["gatewayEditorPassword"]
    assert len(gateway_hash) == 80


def ports_of(container: Registered) -> list[tuple[str, int, int]]:
    return sorted((p["ip"], int(p["internal"]), int(p["external"])) for p in container.inputs.get("ports", []))


@pytest.mark.parametrize(
    ("stack", "postgres", "n8n", "gateway"),
    [
        (
            "dev",
            [("127.0.0.1", 5432, 5432)],
            [("127.0.0.1", 5678, 5678)],
            [("127.0.0.1", 80, 8080), ("127.0.0.1", 443, 8443)],
        ),
        (
            "ci",
            [("127.0.0.1", 5432, 15432)],
            [("127.0.0.1", 5678, 15678)],
            [("127.0.0.1", 80, 18080), ("127.0.0.1", 443, 18443)],
        ),
        ("staging", [("127.0.0.1", 5432, 5432)], [], [("0.0.0.0", 80, 80), ("0.0.0.0", 443, 443)]),
        ("prod", [], [], [("0.0.0.0", 80, 80), ("0.0.0.0", 443, 443)]),
    ],
)
def test_ports_and_bind_addresses(stack: str, postgres: Any, n8n: Any, gateway: Any) -> None:
    containers = rendered(stack).containers()
    assert ports_of(containers[f"kaizenity-{stack}-postgres"]) == postgres
    assert ports_of(containers[f"kaizenity-{stack}-n8n"]) == n8n
    assert ports_of(containers[f"kaizenity-{stack}-gateway"]) == gateway
    for name, container in containers.items():
        if not name.endswith(("-postgres", "-n8n", "-gateway")):
            assert ports_of(container) == [], f"{name} must not publish anything"


@pytest.mark.parametrize("stack", STACKS)
def test_one_private_network_with_service_aliases(stack: str) -> None:
    result = rendered(stack)
    (network,) = result.of_type("docker:index/network:Network")
    assert network.inputs["name"] == f"kaizenity-{stack}-net"
    assert network.inputs["driver"] == "bridge"
    for spec in model(stack).services:
        container = result.containers()[spec.container_name]
        assert container.inputs["networksAdvanced"] == [{"name": f"kaizenity-{stack}-net", "aliases": [spec.name]}]
        assert network.urn in container.dependencies


@pytest.mark.parametrize(("stack", "protected"), [("dev", False), ("ci", False), ("staging", True), ("prod", True)])
def test_named_volumes_mounted_and_protected_where_data_matters(stack: str, protected: bool) -> None:
    result = rendered(stack)
    volumes = {r.inputs["name"]: r for r in result.of_type("docker:index/volume:Volume")}
    assert f"kaizenity-{stack}-pgdata" in volumes
    assert f"kaizenity-{stack}-n8n-data" in volumes
    assert all(v.protect is protected for v in volumes.values())
    postgres = result.containers()[f"kaizenity-{stack}-postgres"]
    assert postgres.inputs["volumes"] == [
        {
            "volumeName": f"kaizenity-{stack}-pgdata",
            "containerPath": "/var/lib/postgresql/data",
            "readOnly": False,
        },
        {  # the init scripts (uploads): the root filesystem is read-only
            "volumeName": f"kaizenity-{stack}-pg-init",
            "containerPath": "/docker-entrypoint-initdb.d",
            "readOnly": False,
        },
    ]
    assert volumes[f"kaizenity-{stack}-pgdata"].urn in postgres.dependencies


@pytest.mark.parametrize("stack", STACKS)
def test_health_checks_gate_creation(stack: str) -> None:
    for spec in model(stack).services:
        container = rendered(stack).containers()[spec.container_name]
        check = container.inputs["healthcheck"]
        assert spec.healthcheck is not None
        assert check["tests"] == list(spec.healthcheck.test)
        assert check["interval"] == f"{spec.healthcheck.interval_s}s"
        assert container.inputs["wait"] is True
        assert container.inputs["waitTimeout"] == spec.ready_timeout_s() > 60


def test_n8n_health_check_is_readiness_via_node() -> None:
    check = rendered("dev").containers()["kaizenity-dev-n8n"].inputs["healthcheck"]
    assert check["tests"][:3] == ["CMD", "node", "-e"]
    assert "/healthz/readiness" in check["tests"][3]


@pytest.mark.parametrize("stack", STACKS)
def test_dependencies_follow_the_model(stack: str) -> None:
    result = rendered(stack)
    urn_by_name = {r.inputs["name"]: r.urn for r in result.of_type(CONTAINER)}
    for spec in model(stack).services:
        container = result.containers()[spec.container_name]
        wanted = {urn_by_name[model(stack).service(dep).container_name] for dep in spec.depends_on}
        container_deps = {d for d in container.dependencies if d in urn_by_name.values()}
        assert container_deps == wanted, spec.name
        assert container.delete_before_replace is True


def test_queue_mode_on_in_prod_off_in_dev() -> None:
    prod = rendered("prod").containers()
    assert {"kaizenity-prod-redis", "kaizenity-prod-n8n-worker-1", "kaizenity-prod-n8n-worker-2"} <= set(prod)
    assert prod["kaizenity-prod-n8n-worker-1"].inputs["command"] == ["worker", "--concurrency=10"]
    assert env_of(prod["kaizenity-prod-n8n"])["EXECUTIONS_MODE"] == "queue"
    dev = rendered("dev").containers()
    assert set(dev) == {"kaizenity-dev-postgres", "kaizenity-dev-n8n", "kaizenity-dev-gateway"}
    assert "EXECUTIONS_MODE" not in env_of(dev["kaizenity-dev-n8n"])


def test_components_parent_their_containers() -> None:
    result = rendered("dev")
    (environment,) = result.of_type("kaizenity:index:Environment")
    for component in result.of_type("kaizenity:service:N8n") + result.of_type("kaizenity:service:PostgreSQL"):
        assert component.parent == environment.urn
    n8n_component = result.of_type("kaizenity:service:N8n")[0]
    assert result.containers()["kaizenity-dev-n8n"].parent == n8n_component.urn


@pytest.mark.parametrize("stack", STACKS)
def test_outputs_and_which_are_secret(stack: str) -> None:
    outputs = rendered(stack).outputs
    endpoints = model(stack).endpoints
    assert outputs["gatewayUrl"] == {"value": endpoints.gateway_url, "secret": False}
    assert outputs["webhookBaseUrl"]["value"] == endpoints.gateway_url + "/webhook/"
    assert outputs["n8nInternalUrl"]["value"] == "http://n8n:5678"
    assert outputs["databaseName"]["value"] == "kaizenity"
    assert outputs["gatewayEditorPassword"]["secret"] is True
    if endpoints.database_host_port is None:
        assert "databaseUrl" not in outputs
    else:
        assert outputs["databaseUrl"]["secret"] is True
        assert outputs["databaseUrl"]["value"].startswith("postgresql://postgres:")
        # health reads n8n's workflows and executions as the read-only login, from n8n's database
        assert outputs["n8nReaderDatabaseUrl"]["secret"] is True
        reader = outputs["n8nReaderDatabaseUrl"]["value"]
        assert reader.startswith("postgresql://kaizenity_n8n_reader:"), reader
        assert reader.endswith("/n8n"), reader
        assert TEST_SECRETS["n8nReaderDbPassword"] in reader
    for key, output in outputs.items():
        if not output["secret"]:
            assert all(secret not in json.dumps(output["value"]) for secret in TEST_SECRETS.values()), key


def test_invalid_settings_fail_before_any_resource_is_created() -> None:
    from infra.settings_problems import SettingsError

    with pytest.raises(SettingsError, match="problem"):
        render("dev", stack_config("dev", {"gateway": {"tlsMode": "bogus"}}))


@pytest.mark.parametrize("stack", ["dev", "ci", "staging"])
def test_schema_migrations_run_after_postgres_with_a_secret_url(stack: str) -> None:
    result = rendered(stack)
    (migrations,) = [r for r in result.of_type("pulumi-python:dynamic:Resource") if r.name == "schema-migrations"]
    assert is_secret(migrations.inputs["databaseUrl"])
    assert unwrap(migrations.inputs["databaseUrl"]).startswith("postgresql://postgres:")
    assert TEST_SECRETS["postgresPassword"] in unwrap(migrations.inputs["databaseUrl"])
    assert migrations.inputs["checksums"] == migration_checksums()
    postgres = result.containers()[f"kaizenity-{stack}-postgres"]
    assert postgres.urn in migrations.dependencies


def test_schema_migrations_make_monitorings_login_with_its_secret_where_monitoring_is_on() -> None:
    """Staging (monitoring on): postgres_exporter's login is made after the migrations, its password a secret
    input; dev (off): none. A changed password or a login turned on is a change of the resource."""
    for stack, expected in (
        ("staging", {"kaizenity_monitor": TEST_SECRETS["monitoringDatabasePassword"]}),
        ("dev", {}),
    ):
        dynamic = {r.name: r for r in rendered(stack).of_type("pulumi-python:dynamic:Resource")}
        logins = dynamic["schema-migrations"].inputs["logins"]
        assert is_secret(logins), stack
        assert unwrap(logins) == expected, stack
        assert "logins" in dynamic["schema-migrations"].additional_secret_outputs
    provider = SchemaMigrationsProvider()
    current = {"checksums": {"0001_roles.sql": "a"}, "logins": {"kaizenity_monitor": "one"}}
    assert not provider.diff("id", current, current).changes
    assert provider.diff("id", current, {**current, "logins": {"kaizenity_monitor": "two"}}).changes
    assert provider.diff("id", {"checksums": current["checksums"]}, current).changes, "monitoring turned on"
    assert not provider.diff("id", {"checksums": current["checksums"]}, {**current, "logins": {}}).changes


def test_prod_registers_no_migrations_resource_when_the_database_is_unpublished() -> None:
    names = [r.name for r in rendered("prod").of_type("pulumi-python:dynamic:Resource")]
    assert names == ["database-role-passwords"]


def test_migrations_diff_is_the_set_of_new_or_changed_files() -> None:
    provider = SchemaMigrationsProvider()
    current = {"checksums": {"0001_roles.sql": "a", "0002_core.sql": "b"}}
    assert not provider.diff("id", current, current).changes, "nothing new: `pulumi up` changes nothing"
    added = {"checksums": {**current["checksums"], "0003_client.sql": "c"}}
    assert provider.diff("id", current, added).changes
    assert pending_between(current, added) == ["0003_client.sql"]
    edited = {"checksums": {"0001_roles.sql": "a", "0002_core.sql": "B"}}
    assert pending_between(current, edited) == ["0002_core.sql"]
    assert provider.diff("id", current, added).replaces == []


@pytest.mark.parametrize("stack", ["dev", "ci"])
def test_seed_workflows_after_migrations_and_n8n_with_secret_inputs(stack: str) -> None:
    result = rendered(stack)
    dynamic = {r.name: r for r in result.of_type("pulumi-python:dynamic:Resource")}
    seed = dynamic["seed-workflows"]
    assert dynamic["schema-migrations"].urn in seed.dependencies
    assert result.containers()[f"kaizenity-{stack}-n8n"].urn in seed.dependencies
    for key in ("values", "ownerPassword", "databaseUrl"):
        assert is_secret(seed.inputs[key]), key
    values = unwrap(seed.inputs["values"])
    assert values["appDatabasePassword"] == TEST_SECRETS["appDatabasePassword"]
    # n8n registers the one-way internal route; the gateway maps the public token to it (docs/security.md)
    assert values["telegramWebhookPathToken"] == internal_route_token(TEST_SECRETS["telegramWebhookPathToken"])
    assert values["databaseName"] == "kaizenity"
    assert unwrap(seed.inputs["ownerPassword"]) == TEST_SECRETS["n8nOwnerPassword"]
    assert seed.inputs["definitions"] == definition_hashes()
    assert seed.inputs["n8nUrl"].startswith("http://127.0.0.1:")
    assert TEST_SECRETS["appDatabasePassword"] not in json.dumps(seed.inputs["valuesHash"])
    # health's read-only login: its password (secret) and n8n's database, for the seeder's grants
    assert is_secret(seed.inputs["readerPassword"])
    assert unwrap(seed.inputs["readerPassword"]) == TEST_SECRETS["n8nReaderDbPassword"]
    assert seed.inputs["n8nDatabase"] == "n8n"
    assert "apiKey" not in seed.inputs


def test_seed_provider_keeps_no_api_key_and_reseeds_states_that_hold_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """States written before the seeder deleted its key hold `apiKey`: the diff asks for an update, and the update's
    outputs (what the engine stores) no longer carry it."""
    import infra.seeding
    import infra.workflows_resource as resource
    from workflows.seed import SeedReport

    calls: list[dict[str, Any]] = []

    def fake_seed(**kwargs: Any) -> SeedReport:
        calls.append(kwargs)
        return SeedReport(credential_fingerprints={"Kaizenity app database": "f"})

    monkeypatch.setattr(infra.seeding, "seed_environment", fake_seed)
    monkeypatch.setattr(resource, "system_identifier", lambda _url: "sys-1")
    provider = SeedWorkflowsProvider()
    news = {
        "n8nUrl": "http://127.0.0.1:5678", "databaseUrl": "postgresql://x", "ownerPassword": "Owner-1",
        "values": {"appDatabasePassword": "a"}, "valuesHash": "v", "definitions": {"heartbeat.json": "a"},
        "n8nDatabase": "n8n", "readerPassword": "reader-secret",
    }  # fmt: skip
    old_state = {**news, "apiKey": "n8n-api-key-of-an-older-version", "credentialFingerprints": {}}
    assert provider.diff("seed-workflows", old_state, news).changes
    outs = provider.update("seed-workflows", old_state, news).outs
    assert outs is not None
    assert "apiKey" not in outs
    assert "api_key" not in calls[0], "the seeder is given no key to reuse"
    assert (calls[0]["n8n_database"], calls[0]["reader_password"]) == ("n8n", "reader-secret")
    current = {**news, "credentialFingerprints": {}}
    assert not provider.diff("seed-workflows", current, news).changes
    assert provider.diff("seed-workflows", current, {**news, "readerPassword": "rotated"}).changes


def test_seed_diff_names_the_changed_workflow_files() -> None:
    provider = SeedWorkflowsProvider()
    base = {"definitions": {"heartbeat.json": "a", "messenger-inbound.json": "b"}, "valuesHash": "v", "n8nUrl": "u"}
    assert not provider.diff("id", base, base).changes
    edited = {**base, "definitions": {"heartbeat.json": "A", "messenger-inbound.json": "b"}}
    assert provider.diff("id", base, edited).changes
    assert changed_definitions(base, edited) == ["heartbeat.json"]
    assert provider.diff("id", base, {**base, "valuesHash": "rotated"}).changes
    assert provider.diff("id", {**base, "ownerPassword": "a"}, {**base, "ownerPassword": "b"}).changes


# ---- issue 10: resource options the engine acts on, asserted on the registration requests ----------------------


@pytest.mark.parametrize("stack", ["dev", "ci", "staging"])
def test_dynamic_resources_register_every_secret_output(stack: str) -> None:
    """Defect 3: the dynamic provider answers acceptSecrets=False, so only same-named secret inputs are re-marked
    (pulumi/pulumi pkg/resource/plugin/provider_plugin.go `annotateSecrets`); outputs like
    credentialFingerprints need the option."""
    dynamic = {r.name: r for r in rendered(stack).of_type("pulumi-python:dynamic:Resource")}
    assert "databaseUrl" in dynamic["schema-migrations"].additional_secret_outputs
    if "seed-workflows" in dynamic:
        seed = dynamic["seed-workflows"]
        assert {
            "credentialFingerprints", "values", "valuesHash", "ownerPassword", "databaseUrl", "readerPassword"
        } <= set(seed.additional_secret_outputs)  # fmt: skip
        assert "apiKey" not in seed.inputs, "no n8n API key is kept in the state any more"
        assert is_secret(seed.inputs["valuesHash"]), "a digest of the secrets is kept encrypted too"


@pytest.mark.parametrize("stack", STACKS)
def test_containers_replace_on_health_check_edits_and_ignore_read_back_noise(stack: str) -> None:
    """Defect 4 (terraform-provider-docker v4.5.0): healthcheck is not applied by Update -> replace on change;
    log_opts is read back merged with the daemon's defaults (ForceNew) and memory_swap as 2x memory -> ignored."""
    for container in rendered(stack).containers().values():
        assert container.replace_on_changes == ["healthcheck"], container.name
        assert set(container.ignore_changes) == {"logOpts", "memorySwap"}, container.name
        assert container.delete_before_replace is True


@pytest.mark.parametrize(("stack", "protected"), [("dev", False), ("staging", True), ("prod", True)])
def test_fixed_name_network_and_volumes_are_deleted_before_replacement(stack: str, protected: bool) -> None:
    result = rendered(stack)
    (network,) = result.of_type("docker:index/network:Network")
    assert network.delete_before_replace is True
    assert network.ignore_changes == ["ipv6"]
    for volume in result.of_type("docker:index/volume:Volume"):
        assert volume.delete_before_replace is True, volume.name
        assert volume.protect is protected
        assert volume.retain_on_delete is protected, "protected data volumes also outlive a destroy"


@pytest.mark.parametrize("stack", ["dev", "ci"])
def test_migrations_and_seeding_are_bound_to_the_postgres_container(stack: str) -> None:
    """Defect 6: an input tied to the PostgreSQL container's id, so a recreated database re-runs both."""
    result = rendered(stack)
    postgres = result.containers()[f"kaizenity-{stack}-postgres"]
    for resource in result.of_type("pulumi-python:dynamic:Resource"):
        if resource.name == "database-role-passwords":
            continue
        assert resource.inputs["databaseInstance"] == f"{postgres.name}-id", resource.name


def test_a_recreated_database_is_a_change_for_migrations_and_seeding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Defect 6: same files and values, but another PostgreSQL container or another system_identifier."""
    import infra.database_identity as identity

    migrations = {"checksums": {"0001_roles.sql": "a"}, "databaseInstance": "c1", "databaseUrl": "postgresql://x"}
    seed = {"definitions": {"h.json": "a"}, "valuesHash": "v", "n8nUrl": "u", "databaseInstance": "c1"}
    seed["databaseUrl"] = "postgresql://x"
    monkeypatch.setattr(identity, "system_identifier", lambda _url: "111")
    for provider, props in ((SchemaMigrationsProvider(), migrations), (SeedWorkflowsProvider(), seed)):
        olds = {**props, "systemIdentifier": "111"}
        assert not provider.diff("id", olds, props).changes
        assert provider.diff("id", olds, {**props, "databaseInstance": "c2"}).changes, "container replaced"
        assert provider.diff("id", {**olds, "systemIdentifier": "999"}, props).changes, "initdb ran again"
    monkeypatch.setattr(identity, "system_identifier", lambda _url: None)
    assert not SchemaMigrationsProvider().diff("id", {**migrations, "systemIdentifier": "999"}, migrations).changes


@pytest.mark.parametrize("stack", STACKS)
def test_role_passwords_are_changed_before_postgres_is_replaced(stack: str) -> None:
    """Defect 5: the PostgreSQL container depends on the role-password resource, so the engine runs its Update
    (ALTER ROLE with the old secret) before it replaces the container that carries the new one."""
    result = rendered(stack)
    (roles,) = [r for r in result.of_type("pulumi-python:dynamic:Resource") if r.name == "database-role-passwords"]
    postgres = result.containers()[f"kaizenity-{stack}-postgres"]
    assert roles.urn in postgres.dependencies
    assert roles.inputs["containerName"] == f"kaizenity-{stack}-postgres"
    monitored = parse_settings(stack, stack_config(stack)).monitoring.enabled
    assert roles.inputs["roles"] == {
        "n8nDbPassword": "n8n",
        "appDatabasePassword": "kaizenity_n8n",
        **({"monitoringDatabasePassword": "kaizenity_monitor"} if monitored else {}),
        "postgresPassword": "postgres",
    }
    assert is_secret(roles.inputs["passwords"])
    assert unwrap(roles.inputs["passwords"])["n8nDbPassword"] == TEST_SECRETS["n8nDbPassword"]
    assert roles.additional_secret_outputs == ["passwords"]


def test_role_password_diff_orders_the_superuser_last() -> None:
    from infra.rotation_resource import DatabaseRolePasswordsProvider, rotated_keys

    olds = {"passwords": {"postgresPassword": "a", "n8nDbPassword": "b", "appDatabasePassword": "c"}, "roles": {}}
    assert not DatabaseRolePasswordsProvider().diff("id", olds, olds).changes
    news = {**olds, "passwords": {"postgresPassword": "A", "n8nDbPassword": "B", "appDatabasePassword": "c"}}
    assert DatabaseRolePasswordsProvider().diff("id", olds, news).changes
    assert rotated_keys(olds, news) == ["n8nDbPassword", "postgresPassword"]
