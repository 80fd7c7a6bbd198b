"""The CI stack for real: PostgreSQL, n8n and the Caddy gateway in containers, rendered from the model."""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Iterator
from pathlib import Path

import docker
import httpx
import psycopg
import pytest

from infra.environment import build_environment
from infra.local_endpoints import LocalEndpoints
from infra.local_overrides import local_settings
from kaizenity.pytest_plugin import KaizenityStackHandle

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def gateway(kaizenity_stack: LocalEndpoints) -> Iterator[httpx.Client]:
    assert kaizenity_stack.ca_file, "tls internal: the local CA must have been exported"
    context = ssl.create_default_context(cafile=kaizenity_stack.ca_file)
    with httpx.Client(base_url=kaizenity_stack.gateway_url, verify=context, timeout=15) as client:
        yield client


def test_n8n_role_connects_to_its_own_migrated_database(kaizenity_stack: LocalEndpoints) -> None:
    assert kaizenity_stack.n8n_database_url
    with psycopg.connect(kaizenity_stack.n8n_database_url, connect_timeout=5) as conn:
        user, database = conn.execute("SELECT current_user, current_database()").fetchone()  # type: ignore[misc]
        (tables,) = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()  # type: ignore[misc]
    assert (user, database) == ("n8n", "n8n")
    assert tables > 20, "n8n created and migrated its schema in its own database"


def test_wrong_database_password_is_refused(kaizenity_stack: LocalEndpoints) -> None:
    assert kaizenity_stack.n8n_database_url
    scheme, rest = kaizenity_stack.n8n_database_url.split("://", 1)
    host = rest.split("@", 1)[1]
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(f"{scheme}://n8n:wrong-password@{host}", connect_timeout=5)


def test_n8n_health_answers_through_the_gateway(gateway: httpx.Client) -> None:
    response = gateway.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert gateway.get("/healthz/readiness").status_code == 200


def test_gateway_has_its_own_health_route(gateway: httpx.Client) -> None:
    response = gateway.get("/_gateway/healthz")
    assert (response.status_code, response.text) == (200, "OK")


def test_editor_is_refused_without_credentials(gateway: httpx.Client, kaizenity_stack: LocalEndpoints) -> None:
    response = gateway.get("/")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic")
    assert gateway.get("/rest/settings").status_code == 401
    wrong = gateway.get("/", auth=(kaizenity_stack.editor_user, "not-the-password"))
    assert wrong.status_code == 401


def test_editor_is_served_with_credentials(gateway: httpx.Client, kaizenity_stack: LocalEndpoints) -> None:
    auth = (kaizenity_stack.editor_user, kaizenity_stack.editor_password)
    page = gateway.get("/", auth=auth)
    assert page.status_code == 200
    assert "n8n" in page.text.lower()
    settings = gateway.get("/rest/settings", auth=auth)
    assert settings.status_code == 200
    assert "data" in settings.json()


def test_webhook_route_is_public_and_reaches_n8n(gateway: httpx.Client) -> None:
    response = gateway.post("/webhook/no-such-hook", json={"hello": "world"})
    # 404 from n8n itself (not 401 from the gateway): the route is public and proxied.
    assert response.status_code == 404
    assert "webhook" in response.json()["message"].lower()


def test_request_body_limit_is_enforced(gateway: httpx.Client) -> None:
    too_big = b"x" * (17 * 1024 * 1024)  # the ci stack keeps the default 16 MB limit
    response = gateway.post("/webhook/no-such-hook", content=too_big)
    assert response.status_code == 413


def test_certificate_comes_from_the_gateway_local_ca(kaizenity_stack: LocalEndpoints) -> None:
    with httpx.Client(timeout=10) as untrusting, pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        untrusting.get(f"{kaizenity_stack.gateway_url}/_gateway/healthz")


def _listening_addresses(port: int) -> list[str]:
    """Local addresses of LISTEN sockets on `port`, from the kernel's own tables (no traffic sent)."""
    found = []
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].split(":")
            if fields[3] == "0A" and int(hex_port, 16) == port:
                raw = bytes.fromhex(address)
                if width == 8:
                    found.append(str(ipaddress.IPv4Address(raw[::-1])))
                else:
                    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
                    found.append(str(ipaddress.IPv6Address(words)))
    return found


def _host_bindings(container_name: str) -> list[tuple[str, str]]:
    client = docker.from_env()
    ports = client.api.inspect_container(container_name)["HostConfig"]["PortBindings"] or {}
    return [(binding["HostIp"], binding["HostPort"]) for bindings in ports.values() for binding in bindings]


@pytest.mark.parametrize("service", ["postgres", "n8n", "gateway"])
def test_published_only_on_loopback(kaizenity_stack: LocalEndpoints, service: str) -> None:
    bindings = _host_bindings(kaizenity_stack.containers[service])
    assert bindings, f"{service} publishes something in the ci stack"
    for host_ip, host_port in bindings:
        assert host_ip == "127.0.0.1"
        listeners = _listening_addresses(int(host_port))
        assert listeners, f"nothing listens on {host_port}"
        assert all(ipaddress.ip_address(a).is_loopback for a in listeners), listeners


def test_postgres_is_not_reachable_beyond_loopback(kaizenity_stack: LocalEndpoints) -> None:
    assert kaizenity_stack.database_url
    port = int(kaizenity_stack.database_url.rsplit(":", 1)[1].split("/")[0])
    assert _listening_addresses(port) == ["127.0.0.1"]


def test_running_containers_are_exactly_the_model(kaizenity_stack: LocalEndpoints) -> None:
    """What the engine runs matches the model that `pulumi up` renders (same settings, same prefix)."""
    client = docker.from_env()
    settings = local_settings(
        "ci", prefix=kaizenity_stack.prefix, offline=True, secrets=kaizenity_stack.stack_secrets(), free_ports=False
    )
    model = build_environment(settings)
    assert sorted(kaizenity_stack.containers) == sorted(s.name for s in model.services)
    for spec in model.services:
        attrs = client.api.inspect_container(spec.container_name)
        config, host = attrs["Config"], attrs["HostConfig"]
        assert config["Image"] == spec.image
        env_keys = {entry.split("=", 1)[0] for entry in config["Env"]}
        assert {key for key, _ in spec.env} <= env_keys
        assert host["Memory"] == spec.memory_mb * 1024 * 1024
        assert host["CapDrop"] == list(spec.cap_drop)
        assert sorted(host["CapAdd"] or []) == sorted(spec.cap_add)
        assert host["SecurityOpt"] == list(spec.security_opts)
        assert host["RestartPolicy"]["Name"] == spec.restart
        assert host["LogConfig"] == {"Type": "json-file", "Config": dict(spec.log_options)}
        assert config["Healthcheck"]["Test"] == list(spec.healthcheck.test)  # type: ignore[union-attr]
        # no user in the model: the image's own USER (the offline gateway image runs as `caddy`)
        image_user = client.images.get(spec.image).attrs["Config"].get("User") or None
        assert (config["User"] or None) == (spec.user or image_user)
        assert host["ReadonlyRootfs"] is spec.read_only_rootfs
        assert (host.get("Tmpfs") or {}) == dict(spec.tmpfs)
        network = attrs["NetworkSettings"]["Networks"][model.network.docker_name]
        assert set(spec.aliases) <= set(network["Aliases"] or [])
        mounts = {(m["Name"], m["Destination"]) for m in attrs["Mounts"] if m["Type"] == "volume"}
        assert {(model.volume(m.volume).docker_name, m.target) for m in spec.mounts} <= mounts
        assert attrs["State"]["Health"]["Status"] == "healthy"


@pytest.mark.kaizenity_teardown
def test_teardown_leaves_no_containers_networks_or_volumes(kaizenity_stack_handle: KaizenityStackHandle) -> None:
    prefix = kaizenity_stack_handle.endpoints.prefix
    client = docker.from_env()
    before = [c for c in client.containers.list(all=True) if c.name.startswith(prefix)]
    assert len(before) == 3
    # Every volume the containers use, anonymous ones (an image's VOLUME not covered by a mount) included.
    used = {m["Name"] for c in before for m in c.attrs["Mounts"] if m["Type"] == "volume"}
    assert len(used) >= 4, used
    kaizenity_stack_handle.stack.down()
    assert used.isdisjoint(v.name for v in client.volumes.list())
    assert [c.name for c in client.containers.list(all=True) if c.name.startswith(prefix)] == []
    assert [n.name for n in client.networks.list() if n.name.startswith(prefix)] == []
    assert [v.name for v in client.volumes.list() if v.name.startswith(prefix)] == []
    assert client.containers.list(all=True, filters={"label": f"io.kaizenity.prefix={prefix}"}) == []
