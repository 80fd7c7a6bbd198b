"""The environment model: topology, hardening defaults and the rendered gateway configuration."""

from __future__ import annotations

import base64
import dataclasses
import ipaddress
from typing import Any

import bcrypt
import pytest

from infra.environment import build_environment
from infra.model import EnvironmentModel, SecretRef, caddy_bcrypt
from infra.services import monitoring
from infra.services.gateway import render_caddyfile
from infra.settings import Settings
from infra.settings_validation import parse_settings
from infra.stack_files import available_stacks
from tests.unit.pulumi_harness import TEST_SECRETS, stack_config

STACKS = available_stacks()  # every stack file, including ones `kaizenity bootstrap` adds


def model_for(stack: str, **overrides: Any) -> EnvironmentModel:
    return build_environment(settings_for(stack, **overrides))


def settings_for(stack: str, **overrides: Any) -> Settings:
    return parse_settings(stack, stack_config(stack, overrides))


def all_strings(value: Any) -> list[str]:
    """Every string anywhere inside a (nested) dataclass/tuple structure."""
    if isinstance(value, str):
        return [value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [s for f in dataclasses.fields(value) for s in all_strings(getattr(value, f.name))]
    if isinstance(value, tuple | list):
        return [s for item in value for s in all_strings(item)]
    return []


@pytest.mark.parametrize("stack", STACKS)
def test_no_secret_value_enters_the_model(stack: str) -> None:
    strings = "\n".join(all_strings(model_for(stack)))
    for secret in TEST_SECRETS.values():
        assert secret not in strings


@pytest.mark.parametrize("stack", STACKS)
def test_only_the_gateway_may_listen_beyond_loopback(stack: str) -> None:
    for service in model_for(stack).services:
        for port in service.ports:
            if service.name != "gateway":
                assert ipaddress.ip_address(port.host_ip).is_loopback, (service.name, port)


def test_postgres_publish_none_publishes_nothing() -> None:
    model = model_for("dev", postgres={"publish": "none"})
    assert model.service("postgres").ports == ()
    assert model.endpoints.database_host_port is None


def test_single_process_topology_and_start_waves() -> None:
    model = model_for("dev")
    assert [s.name for s in model.services] == ["postgres", "n8n", "gateway"]
    assert [[s.name for s in wave] for wave in model.start_order()] == [["postgres", "gateway"], ["n8n"]]


def test_queue_mode_adds_redis_and_workers_that_start_after_n8n() -> None:
    model = model_for("prod")
    platform = {s.name for s in model.services if s.kind not in monitoring.PORTS}  # monitoring: test_monitoring_model
    assert [s.name for s in model.services if s.name in platform] == [
        "postgres",
        "redis",
        "n8n",
        "n8n-worker-1",
        "n8n-worker-2",
        "gateway",
        "backup",
    ]
    waves = [[s.name for s in wave if s.name in platform] for wave in model.start_order()]
    # Workers one after the other: Pulumi then replaces them one at a time too (infra/scaling.py).
    assert [w for w in waves if w] == [
        ["postgres", "redis", "gateway"],
        ["n8n", "backup"],
        ["n8n-worker-1"],
        ["n8n-worker-2"],
    ]
    worker = model.service("n8n-worker-1")
    assert worker.command == ("worker", "--concurrency=10")
    env = worker.env_dict()
    assert env["EXECUTIONS_MODE"] == "queue"
    assert env["QUEUE_BULL_REDIS_HOST"] == "redis"
    # Workers and the main process must share the encryption key and database.
    main_env = model.service("n8n").env_dict()
    for key in (
        "N8N_ENCRYPTION_KEY",
        "DB_POSTGRESDB_PASSWORD",
        "DB_POSTGRESDB_DATABASE",
        "QUEUE_BULL_REDIS_PASSWORD",
        "QUEUE_BULL_REDIS_TIMEOUT_THRESHOLD",
    ):
        assert env[key] == main_env[key]
    # n8n exits after this long without Redis; its 10 s default is shorter than a Redis restart under load.
    assert int(str(env["QUEUE_BULL_REDIS_TIMEOUT_THRESHOLD"])) >= 120_000
    assert "redis-data" in [v.name for v in model.volumes]


def test_no_redis_without_queue_mode() -> None:
    model = model_for("dev")
    assert "redis" not in [s.name for s in model.services]
    assert "QUEUE_BULL_REDIS_HOST" not in model.service("n8n").env_dict()


def test_n8n_environment_for_running_behind_the_gateway() -> None:
    env = model_for("dev").service("n8n").env_dict()
    assert env["WEBHOOK_URL"] == "https://localhost:8443/"
    assert env["N8N_PROXY_HOPS"] == "1"
    assert env["N8N_DIAGNOSTICS_ENABLED"] == "false"
    assert env["N8N_VERSION_NOTIFICATIONS_ENABLED"] == "false"
    assert env["N8N_TEMPLATES_ENABLED"] == "false"
    assert env["N8N_COMMUNITY_PACKAGES_ENABLED"] == "false"
    assert env["N8N_METRICS"] == "true"
    assert env["DB_POSTGRESDB_HOST"] == "postgres"
    assert env["DB_POSTGRESDB_DATABASE"] == "n8n"
    assert env["N8N_ENCRYPTION_KEY"] == SecretRef("n8nEncryptionKey")
    assert env["N8N_SECURE_COOKIE"] == "true"


def test_templates_can_be_switched_on() -> None:
    env = model_for("dev", n8n={"templatesEnabled": True, "publish": "loopback"}).service("n8n").env_dict()
    assert env["N8N_TEMPLATES_ENABLED"] == "true"


def test_plain_http_gateway_turns_secure_cookies_off() -> None:
    env = model_for("dev", gateway={"tlsMode": "off", "httpPort": 8080}).service("n8n").env_dict()
    assert env["WEBHOOK_URL"] == "http://localhost:8080/"
    assert env["N8N_SECURE_COOKIE"] == "false"


@pytest.mark.parametrize("stack", STACKS)
def test_every_service_is_hardened(stack: str) -> None:
    for service in model_for(stack).services:
        assert service.healthcheck is not None, service.name
        assert service.memory_mb >= 64
        assert service.cap_drop == ("ALL",)
        assert "no-new-privileges:true" in service.security_opts
        assert service.restart in {"unless-stopped", "no"}
        assert dict(service.log_options)["max-size"] == "10m"
    model = model_for(stack)
    assert model.service("n8n").user == "node"


def test_every_mount_names_a_declared_volume() -> None:
    model = model_for("prod")
    declared = {v.name for v in model.volumes}
    for service in model.services:
        assert {m.volume for m in service.mounts} <= declared


def test_postgres_creates_n8n_role_and_database_without_secret_in_script() -> None:
    postgres = model_for("dev").service("postgres")
    (upload,) = postgres.uploads
    assert upload.target.startswith("/docker-entrypoint-initdb.d/")
    assert "CREATE ROLE :\"n8n_user\" LOGIN PASSWORD :'n8n_password'" in upload.content
    assert postgres.env_dict()["N8N_DB_PASSWORD"] == SecretRef("n8nDbPassword")
    assert "pg_isready -h 127.0.0.1" in postgres.healthcheck.test[1]  # type: ignore[union-attr]


class TestCaddyfile:
    def test_webhooks_public_editor_behind_basic_auth(self) -> None:
        text = render_caddyfile(settings_for("dev"))
        assert "@public expression `{http.request.orig_uri}.matches(" in text
        assert "basicauth bcrypt" in text
        assert "{$GATEWAY_EDITOR_PASSWORD_HASH}" in text
        assert "tls internal" in text
        assert "skip_install_trust" in text
        assert "max_size 16MiB" in text
        assert "int({http.request.header.Content-Length}) > 16777216" in text
        assert "remote_ip" not in text

    def test_allow_list_guards_the_editor(self) -> None:
        text = render_caddyfile(settings_for("prod"))
        assert "@outside not remote_ip 10.0.0.0/8 192.168.0.0/16" in text
        assert text.index("respond @outside") < text.index("basicauth")
        assert "email ops@kaizenity.example.com" in text
        assert "tls internal" not in text
        assert "\nhttps://ops.kaizenity.example.com {" in text

    def test_tls_off_serves_plain_http(self) -> None:
        text = render_caddyfile(settings_for("dev", gateway={"tlsMode": "off", "httpPort": 8080}))
        assert "auto_https off" in text
        assert "\n:80 {" in text

    def test_no_secret_in_the_file(self) -> None:
        text = render_caddyfile(settings_for("prod"))
        assert all(secret not in text for secret in TEST_SECRETS.values())


def test_caddy_hash_is_deterministic_given_the_salt_secret_and_verifies() -> None:
    first, second = caddy_bcrypt("correct horse", "salt-secret-1"), caddy_bcrypt("correct horse", "salt-secret-1")
    assert first == second
    raw = base64.b64decode(first)
    assert raw.startswith(b"$2a$12$")
    assert bcrypt.checkpw(b"correct horse", raw)
    assert not bcrypt.checkpw(b"wrong", raw)
    assert caddy_bcrypt("other password", "salt-secret-1") != first


def test_caddy_hash_salt_comes_from_the_salt_secret_not_the_password() -> None:
    """The former salt was sha256(password): the same password gave the same hash in every environment."""
    one, other = caddy_bcrypt("correct horse", "salt-secret-1"), caddy_bcrypt("correct horse", "salt-secret-2")
    assert base64.b64decode(one)[7:29] != base64.b64decode(other)[7:29]  # $2a$12$<22 salt chars><hash>


def test_gateway_hash_names_its_salt_secret() -> None:
    model = model_for("dev")
    ref = model.service("gateway").env_dict()["GATEWAY_EDITOR_PASSWORD_HASH"]
    assert isinstance(ref, SecretRef)
    assert ref.salt_key == "gatewayEditorPasswordSalt"
    assert "gatewayEditorPasswordSalt" in model.service("gateway").secret_keys()


@pytest.mark.parametrize("stack", ["dev", "ci", "prod"])
def test_gateway_root_filesystem_is_read_only_and_its_upload_lands_in_a_volume(stack: str) -> None:
    """Docker refuses copies into a read-only root unless the target directory is a volume mount."""
    gateway = model_for(stack).service("gateway")
    assert gateway.read_only_rootfs
    assert dict(gateway.tmpfs) == {"/tmp": "size=16m,mode=1777"}  # noqa: S108
    mount_points = {m.target for m in gateway.mounts}
    for upload in gateway.uploads:
        assert upload.target.rsplit("/", 1)[0] in mount_points, upload.target


# Services whose root filesystem stays writable, each with the reason (docs/security.md, "Exceptions").
WRITABLE_ROOT_EXCEPTIONS = {
    "backup",  # the agent script is an upload into /usr/local/bin, outside any volume
    "postgres-exporter",  # its queries file is an upload into /etc
    "alertmanager",  # its configuration is an upload into /etc
    "prometheus",  # its configuration and rules are uploads into /etc
    "node-exporter",
    "health-exporter",
    "redis-exporter",
}


@pytest.mark.parametrize("stack", ["dev", "ci", "ci-queue", "staging", "prod"])
def test_platform_services_run_on_a_read_only_root_and_every_upload_lands_in_a_volume(stack: str) -> None:
    """PostgreSQL, Redis, n8n (main, workers, webhook processors) and the gateway write only to volumes and
    tmpfs mounts; Docker refuses copies into a read-only root unless the target directory is a volume mount."""
    for service in model_for(stack).services:
        if service.kind in WRITABLE_ROOT_EXCEPTIONS:
            continue
        assert service.read_only_rootfs, f"{stack}: {service.name} has a writable root filesystem"
        assert dict(service.tmpfs).get("/tmp"), f"{stack}: {service.name} has no private /tmp"  # noqa: S108
        mount_points = {m.target for m in service.mounts}
        for upload in service.uploads:
            assert upload.target.rsplit("/", 1)[0] in mount_points, f"{stack}: {service.name}: {upload.target}"
