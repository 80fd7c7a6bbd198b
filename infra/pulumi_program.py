"""The Pulumi renderer: turns the environment model into pulumi-docker resources.

One :class:`ServiceComponent` per service (a ComponentResource with typed args and explicit outputs) under one
:class:`KaizenityEnvironment`. Every container property comes from the model (`infra.model`); this module only
translates it into pulumi-docker's vocabulary and wires secrets as Pulumi secrets.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_docker as docker

from infra.environment import build_environment, loopback_database_url, loopback_n8n_reader_url
from infra.model import EnvironmentModel, SecretRef, ServiceSpec, resolve_secret
from infra.rotation_resource import role_passwords_for
from infra.secrets import seed_secret_keys
from infra.services import monitoring
from infra.settings import CONFIG_NAMESPACE, Settings
from infra.settings_validation import parse_settings

SecretResolver = Callable[[SecretRef], pulumi.Output[str]]

COMPONENT_TYPES = {
    "postgres": "kaizenity:service:PostgreSQL",
    "n8n": "kaizenity:service:N8n",
    "n8n-worker": "kaizenity:service:N8nWorker",
    "n8n-webhook": "kaizenity:service:N8nWebhook",
    "redis": "kaizenity:service:Redis",
    "gateway": "kaizenity:service:Gateway",
    "backup": "kaizenity:service:Backup",
    "prometheus": "kaizenity:monitoring:Prometheus",
    "alertmanager": "kaizenity:monitoring:Alertmanager",
    "postgres-exporter": "kaizenity:monitoring:PostgresExporter",
    "redis-exporter": "kaizenity:monitoring:RedisExporter",
    "node-exporter": "kaizenity:monitoring:NodeExporter",
    "health-exporter": "kaizenity:monitoring:HealthExporter",
}


@dataclass(frozen=True)
class ServiceComponentArgs:
    """What a service component needs: its spec and the shared resources it attaches to."""

    spec: ServiceSpec
    image: docker.RemoteImage
    network: docker.Network
    volumes: Mapping[str, docker.Volume]
    resolve: SecretResolver
    depends_on: Sequence[pulumi.Resource] = ()


# What terraform-provider-docker v4.5.0 (pinned by pulumi-docker 5.2) does with these inputs, and the options that
# make `pulumi up` do what the diff shows (kreuzwerker/terraform-provider-docker internal/provider/
# resource_docker_container.go for ForceNew, resource_docker_container_funcs.go for Update and Read):
CONTAINER_PROVIDER_OPTIONS: dict[str, Any] = {
    # `healthcheck` is neither ForceNew nor among the attributes Update applies (restart, memory, CPU, blkio): an
    # edited health check would show as an update and never reach the container. Replacing it is the only way.
    "replace_on_changes": ["healthcheck"],
    "ignore_changes": [
        # Read stores the daemon's merged log config (`containerLogOptsForState`), so daemon-wide defaults
        # (daemon.json log-opts) differ from ours and, log_opts being ForceNew, would replace the container on every
        # up. Changing log rotation therefore needs `pulumi up --replace <container urn>`.
        "logOpts",
        # Not set by us; Read reports Docker's default (twice `memory`), which would show a spurious update.
        "memorySwap",
    ],
}
# Network: `ipv6` is ForceNew and only sent when true; Read stores what the daemon chose, so a daemon that enables
# IPv6 by default would replace the network on every up. The fixed name means the old network must go first.
NETWORK_PROVIDER_OPTIONS: dict[str, Any] = {"ignore_changes": ["ipv6"], "delete_before_replace": True}


def volume_provider_options(protect: bool) -> dict[str, Any]:
    """Options of a named volume. Its name is fixed and Docker's volume create returns an existing volume of that
    name, so create-before-delete would hand the replacement the old volume and then delete it: delete first.
    Where volumes are protected (staging, prod) they are also retained: after `pulumi state unprotect` a
    `pulumi destroy` removes them from the stack but leaves the data on the host (remove it with
    `docker volume rm` deliberately)."""
    return {"protect": protect, "retain_on_delete": protect, "delete_before_replace": True}


class ServiceComponent(pulumi.ComponentResource):
    """One service: its container, named after the model, health-checked before dependents are created."""

    container: docker.Container
    container_name: pulumi.Output[str]
    container_id: pulumi.Output[str]

    def __init__(self, name: str, args: ServiceComponentArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(COMPONENT_TYPES[args.spec.kind], name, None, opts)
        spec = args.spec
        self.container = docker.Container(
            name,
            _container_args(args),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[*args.depends_on, *args.volumes.values()],
                # Fixed container names: the old container must go before its replacement can take the name.
                delete_before_replace=True,
                **CONTAINER_PROVIDER_OPTIONS,
            ),
        )
        self.container_name = self.container.name
        self.container_id = self.container.id
        self.register_outputs(
            {"containerName": self.container_name, "containerId": self.container_id, "kind": spec.kind}
        )


def _container_args(args: ServiceComponentArgs) -> docker.ContainerArgs:
    spec = args.spec
    return docker.ContainerArgs(
        name=spec.container_name,
        # The image *id*, not its name: a name would make every `pulumi up` see a change and recreate.
        image=args.image.image_id,
        command=list(spec.command) if spec.command else None,
        entrypoints=list(spec.entrypoint) if spec.entrypoint else None,
        envs=[_env_entry(key, value, args.resolve) for key, value in spec.env],
        ports=[
            docker.ContainerPortArgs(internal=p.container_port, external=p.host_port, ip=p.host_ip, protocol=p.protocol)
            for p in spec.ports
        ],
        volumes=[
            docker.ContainerVolumeArgs(
                volume_name=args.volumes[m.volume].name, container_path=m.target, read_only=m.read_only
            )
            for m in spec.mounts
        ],
        uploads=[
            docker.ContainerUploadArgs(file=u.target, content=u.content, executable=u.executable) for u in spec.uploads
        ],
        healthcheck=_healthcheck(spec),
        restart=spec.restart,
        memory=spec.memory_mb,
        user=spec.user,
        read_only=spec.read_only_rootfs or None,
        tmpfs=dict(spec.tmpfs) or None,
        networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=args.network.name, aliases=list(spec.aliases))],
        capabilities=docker.ContainerCapabilitiesArgs(drops=list(spec.cap_drop), adds=list(spec.cap_add)),
        security_opts=list(spec.security_opts),
        labels=[docker.ContainerLabelArgs(label=k, value=v) for k, v in spec.labels],
        log_driver="json-file",
        log_opts=dict(spec.log_options),
        # The container's own stop timeout (`docker stop`, restarts, daemon shutdown) and the one `pulumi destroy`
        # allows: both the model's grace, as the local renderer sets it.
        stop_timeout=spec.stop_grace_s,
        destroy_grace_seconds=spec.stop_grace_s,
        must_run=True,
        wait=spec.healthcheck is not None,
        wait_timeout=spec.ready_timeout_s(),
    )


def _env_entry(key: str, value: str | SecretRef, resolve: SecretResolver) -> pulumi.Input[str]:
    if isinstance(value, SecretRef):
        return resolve(value).apply(lambda secret: f"{key}={secret}")
    return f"{key}={value}"


def _healthcheck(spec: ServiceSpec) -> docker.ContainerHealthcheckArgs | None:
    check = spec.healthcheck
    if check is None:
        return None
    return docker.ContainerHealthcheckArgs(
        tests=list(check.test),
        interval=f"{check.interval_s}s",
        timeout=f"{check.timeout_s}s",
        retries=check.retries,
        start_period=f"{check.start_period_s}s",
    )


class KaizenityEnvironment(pulumi.ComponentResource):
    """A whole Kaizenity TTA environment on one Docker host, rendered from the environment model."""

    network: docker.Network
    volumes: dict[str, docker.Volume]
    services: dict[str, ServiceComponent]

    def __init__(
        self,
        name: str,
        model: EnvironmentModel,
        resolve: SecretResolver,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("kaizenity:index:Environment", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.network = docker.Network(
            "network",
            name=model.network.docker_name,
            driver="bridge",
            internal=model.network.internal,
            labels=[docker.NetworkLabelArgs(label=k, value=v) for k, v in model.labels],
            opts=pulumi.ResourceOptions(parent=self, **NETWORK_PROVIDER_OPTIONS),
        )
        self.volumes = {
            volume.name: docker.Volume(
                volume.name,
                name=volume.docker_name,
                labels=[docker.VolumeLabelArgs(label=k, value=v) for k, v in model.labels],
                opts=pulumi.ResourceOptions(parent=self, **volume_provider_options(model.protect_volumes)),
            )
            for volume in model.volumes
        }
        images = {
            ref: docker.RemoteImage(
                _image_resource_name(ref),
                name=ref,
                # Keep the image: offline hosts and `kaizenity-local/*` images cannot pull it again.
                keep_locally=True,
                opts=child,
            )
            for ref in sorted({service.image for service in model.services})
        }
        # Rotated role passwords are changed in the running PostgreSQL before its container is replaced.
        role_passwords = role_passwords_for(model, resolve, parent=self)
        rotation_first = {"postgres": [role_passwords] if role_passwords else []}
        self.services = {}
        for service in model.services:
            self.services[service.name] = ServiceComponent(
                service.name,
                ServiceComponentArgs(
                    spec=service,
                    image=images[service.image],
                    network=self.network,
                    volumes={m.volume: self.volumes[m.volume] for m in service.mounts},
                    resolve=resolve,
                    depends_on=[
                        self.network,
                        *(self.services[d].container for d in service.depends_on),
                        *rotation_first.get(service.kind, []),
                    ],
                ),
                opts=child,
            )
        self.register_outputs({"network": self.network.name, "services": list(self.services)})


def _image_resource_name(ref: str) -> str:
    return "image-" + ref.replace("/", "-").replace(":", "-").replace("@", "-")


# ----------------------------------------------------------------------------------------------------------
# Program entry
# ----------------------------------------------------------------------------------------------------------


def settings_from_pulumi_config() -> Settings:
    """Validated settings from this stack's `kaizenity:*` config (structured values arrive as JSON)."""
    raw: dict[str, Any] = {}
    config = {**pulumi.runtime.get_config_env(), **pulumi.runtime.config.CONFIG.get()}
    for full_key, value in config.items():
        namespace, _, key = full_key.partition(":")
        if namespace == CONFIG_NAMESPACE:
            raw[key] = _decode(value)
    return parse_settings(pulumi.get_stack(), raw, source=f"Pulumi stack '{pulumi.get_stack()}'")


def _decode(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def secret_resolver(settings: Settings) -> SecretResolver:
    """Resolve model secret references to Pulumi *secret* outputs (encrypted in state, masked in logs)."""

    def resolve(ref: SecretRef) -> pulumi.Output[str]:
        secret = settings.secrets.reveal(ref.key)
        if secret is None:  # parse_settings guarantees the secrets a model refers to
            raise KeyError(f"secret {ref.key} is not set")
        salt = settings.secrets.reveal(ref.salt_key) if ref.salt_key else None
        return pulumi.Output.secret(secret).apply(lambda value: resolve_secret(ref, value, salt))

    return resolve


def deploy() -> KaizenityEnvironment:
    """The Pulumi program: validate settings, build the model, render it, export the outputs."""
    settings = settings_from_pulumi_config()
    model = build_environment(settings)
    environment = KaizenityEnvironment(settings.prefix, model, secret_resolver(settings))
    export_outputs(settings, model, environment)
    migrations = migrate_schema(settings, model, environment)
    seed_workflows(settings, model, environment, migrations)
    return environment


def superuser_url(settings: Settings, model: EnvironmentModel) -> pulumi.Output[str] | None:
    """The PostgreSQL superuser's URL on the Pulumi host's loopback (secret); None when not published there."""
    if model.endpoints.database_host_port is None:
        return None
    password = secret_resolver(settings)(SecretRef("postgresPassword"))
    return password.apply(lambda pw: loopback_database_url(model, pw) or "")


def migrate_schema(
    settings: Settings, model: EnvironmentModel, environment: KaizenityEnvironment
) -> pulumi.Resource | None:
    """Apply the schema migrations once PostgreSQL is healthy (its container is created with wait=True)."""
    from infra.migrations_resource import SchemaMigrations

    database_url = superuser_url(settings, model)
    if database_url is None:
        pulumi.log.warn(
            "postgres.publish is 'none': schema migrations are not applied by `pulumi up` (the database is not "
            "reachable from this machine). Run `kaizenity db apply --database-url ...` from a host on the "
            f"network {model.network.docker_name} or through a tunnel"
            + (
                " with KAIZENITY_MONITORING_DATABASE_PASSWORD=$(pulumi config get kaizenity:monitoringDatabasePassword)"
                " set, so postgres_exporter's login is made too."
                if monitoring.database_logins(settings)
                else "."
            )
        )
        return None
    postgres = environment.services["postgres"]
    resolve = secret_resolver(settings)
    logins = {user: resolve(SecretRef(key)) for user, key in monitoring.database_logins(settings).items()}
    return SchemaMigrations(
        "schema-migrations",
        database_url,
        pulumi.ResourceOptions(parent=environment, depends_on=[postgres.container]),
        database_instance=postgres.container_id,
        logins=logins or None,
    )


def export_outputs(settings: Settings, model: EnvironmentModel, environment: KaizenityEnvironment) -> None:
    """Stack outputs read by the health checks and bootstrap; every credential-bearing one is secret."""
    ep = model.endpoints
    pulumi.export("gatewayUrl", ep.gateway_url)
    pulumi.export("webhookBaseUrl", ep.webhook_base_url)
    pulumi.export("n8nInternalUrl", ep.n8n_internal_url)
    pulumi.export("n8nHostUrl", ep.n8n_host_url)
    pulumi.export("databaseHost", ep.database_host)
    pulumi.export("databasePort", ep.database_port)
    pulumi.export("databaseName", ep.database_name)
    pulumi.export("databaseHostPort", ep.database_host_port)
    pulumi.export("networkName", environment.network.name)
    pulumi.export("containers", {name: svc.container_name for name, svc in environment.services.items()})
    pulumi.export("gatewayEditorUser", settings.gateway.editor_user)
    resolve = secret_resolver(settings)
    pulumi.export("gatewayEditorPassword", resolve(SecretRef("gatewayEditorPassword")))
    database_url = superuser_url(settings, model)
    if database_url is not None:
        pulumi.export("databaseUrl", database_url)
        # What `kaizenity health --stack` reads n8n's workflows and executions with: the read-only login (secret).
        reader = resolve(SecretRef("n8nReaderDbPassword")).apply(lambda pw: loopback_n8n_reader_url(model, pw) or "")
        pulumi.export("n8nReaderDatabaseUrl", reader)


def seed_workflows(
    settings: Settings, model: EnvironmentModel, environment: KaizenityEnvironment, migrations: pulumi.Resource | None
) -> None:
    """Seed n8n's workflows once the schema is migrated and n8n is ready (needs both published on loopback)."""
    from infra.workflows_resource import SeedWorkflows
    from workflows.definitions import values_from_secrets

    ep = model.endpoints
    database_url = superuser_url(settings, model)
    if migrations is None or ep.n8n_host_url is None or database_url is None:
        pulumi.log.warn(
            "n8n or PostgreSQL is not published on this host: the seed workflows are not deployed by `pulumi up`. "
            "Run `kaizenity workflows seed` from a host that reaches them."
        )
        return
    resolve = secret_resolver(settings)
    keys = [k for k in seed_secret_keys() if settings.secrets.reveal(k)]  # the optional tokens only when set
    secrets = pulumi.Output.all(*(resolve(SecretRef(k)) for k in keys))
    parameters, name = dict(settings.workflows.parameters), ep.database_name

    def values(plain: list[str]) -> dict[str, str]:
        return values_from_secrets(dict(zip(keys, plain, strict=True)), name, parameters)

    SeedWorkflows(
        "seed-workflows",
        n8n_url=ep.n8n_host_url,
        database_url=database_url,
        owner_password=resolve(SecretRef("n8nOwnerPassword")),
        values=secrets.apply(values),
        opts=pulumi.ResourceOptions(parent=environment, depends_on=[migrations, environment.services["n8n"].container]),
        database_instance=environment.services["postgres"].container_id,
        n8n_database=ep.n8n_database_name,
        reader_password=resolve(SecretRef("n8nReaderDbPassword")),
    )
