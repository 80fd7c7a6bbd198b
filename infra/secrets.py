"""The secret registry: every secret of an environment, written once.

Each entry says how long a generated value is, what the value must satisfy, what it is for, and when it is
required. The settings schema (`infra.settings.SecretSettings`), the problem messages, the local engine's
generator and the seeder's values are all derived from this table, so adding a secret is one line here.

*When* a secret is required is not a rule written here: a container secret is required exactly when the
environment model refers to it (a :class:`~infra.model.SecretRef`, see `infra.settings_validation`); the seed
workflows' secrets are required whenever the workflows are seeded (every environment) and the external tokens
never (a workflow that needs one reports it at run time).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Needed(StrEnum):
    """When a secret must be set."""

    BY_MODEL = "by_model"  # when a container of the environment model refers to it
    BY_SEEDING = "by_seeding"  # always: the seed workflows use it
    OPTIONAL = "optional"  # an external service's token; the workflow that needs it reports its absence


class Rule(StrEnum):
    """A value rule beyond length (checked by `infra.settings.SecretSettings`)."""

    NONE = "none"
    URL_SAFE = "url_safe"  # Telegram's secret token alphabet; the path token goes into a URL
    N8N_PASSWORD = "n8n_password"  # noqa: S105 - a rule's name, not a password. n8n's password policy: a digit and an upper-case letter


@dataclass(frozen=True)
class SecretSpec:
    """One secret setting (`kaizenity:<key>` in the stack file)."""

    key: str
    purpose: str
    needed: Needed
    min_length: int
    generated_length: int | None = None  # None: never generated (a token issued by someone else)
    max_length: int | None = None
    rule: Rule = Rule.NONE
    seed_value: str | None = None  # the workflow parameter this secret feeds (workflows/parameters.yaml)
    seed_format: str = "{}"  # how the secret becomes that parameter's value
    example: str = "<32 random characters>"


SECRETS: tuple[SecretSpec, ...] = (
    SecretSpec("postgresPassword", "the PostgreSQL superuser password", Needed.BY_MODEL, 16, 32),
    SecretSpec("n8nDbPassword", "the password of n8n's own database role", Needed.BY_MODEL, 16, 32),
    SecretSpec(
        "n8nEncryptionKey",
        "n8n's credential encryption key. Losing it makes every credential stored in n8n unreadable: "
        "back it up with the database",
        Needed.BY_MODEL,
        24,
        48,
        example="<48 random characters>",
    ),
    SecretSpec(
        "gatewayEditorPassword",
        "the basic-auth password that protects the n8n editor behind the gateway",
        Needed.BY_MODEL,
        12,
        24,
        example="<24 random characters>",
    ),
    SecretSpec(
        "gatewayEditorPasswordSalt",
        "random salt input of the gateway's bcrypt hash of gatewayEditorPassword",
        Needed.BY_MODEL,
        16,
        32,
    ),
    SecretSpec("redisPassword", "the Redis password used by n8n queue mode", Needed.BY_MODEL, 16, 32),
    SecretSpec(
        "n8nOwnerPassword",
        "the password of n8n's owner account (8-64 characters with a digit and an upper-case letter)",
        Needed.BY_SEEDING,
        8,
        24,
        max_length=64,
        rule=Rule.N8N_PASSWORD,
        example="<24 characters, with A-Z and 0-9>",
    ),
    # `kaizenity health`'s read-only login to n8n's database (bootstrap/app_login.py N8N_READER_USER): the seeder
    # makes it and grants it a few columns of n8n's workflow and execution tables, nothing else.
    SecretSpec(
        "n8nReaderDbPassword",
        "the password of the read-only login health reads n8n's workflows and executions with (kaizenity_n8n_reader)",
        Needed.BY_SEEDING,
        16,
        32,
        rule=Rule.URL_SAFE,  # it goes into the health exporter's database URL unencoded
        example="<32 characters A-Z a-z 0-9 _ ->",
    ),
    SecretSpec(
        "appDatabasePassword",
        "the password of the login role the workflows use (kaizenity_n8n, in kaizenity_app)",
        Needed.BY_SEEDING,
        16,
        32,
        seed_value="appDatabasePassword",
    ),
    SecretSpec(
        "telegramWebhookSecret",
        "the secret token Telegram sends in X-Telegram-Bot-Api-Secret-Token",
        Needed.BY_SEEDING,
        16,
        32,
        max_length=256,
        rule=Rule.URL_SAFE,
        seed_value="telegramWebhookSecret",
        example="<32 characters A-Z a-z 0-9 _ ->",
    ),
    SecretSpec(
        "telegramWebhookPathToken",
        "the secret part of the Telegram webhook's URL path",
        Needed.BY_SEEDING,
        16,
        32,
        rule=Rule.URL_SAFE,
        seed_value="telegramWebhookPathToken",
        example="<32 characters A-Z a-z 0-9 _ ->",
    ),
    SecretSpec(
        "telegramBotToken",
        "the Telegram bot token (from @BotFather)",
        Needed.OPTIONAL,
        8,
        seed_value="telegramBotToken",
        example="123456:ABC-DEF",
    ),
    # The Coda credential's `Authorization` header value (https://coda.io/developers/apis/v1#section/Authentication).
    SecretSpec(
        "codaApiToken",
        "the Coda API token",
        Needed.OPTIONAL,
        8,
        seed_value="codaAuthorization",
        seed_format="Bearer {}",
        example="<the Coda API token>",
    ),
    # postgres_exporter's login (kaizenity_monitor in kaizenity_monitoring, pg_monitor: migration 0013): required
    # exactly when monitoring is enabled (the exporter's container refers to it).
    SecretSpec(
        "monitoringDatabasePassword",
        "the password of monitoring's database login (kaizenity_monitor, pg_monitor; read-only)",
        Needed.BY_MODEL,
        16,
        32,
    ),
    # Alertmanager's Telegram receiver (monitoring.telegramChatId): required exactly when a chat is set. A local
    # run gets a generated stand-in (Telegram refuses it: set the real one to receive pages).
    SecretSpec(
        "monitoringTelegramBotToken",
        "the bot Alertmanager pages on-call with (monitoring.telegramChatId)",
        Needed.BY_MODEL,
        8,
        46,
        example="123456:ABC-DEF",
    ),
)

BY_KEY: dict[str, SecretSpec] = {spec.key: spec for spec in SECRETS}
SECRET_KEYS: tuple[str, ...] = tuple(BY_KEY)


def keys_needed(needed: Needed) -> tuple[str, ...]:
    """The keys of every secret with this requirement, in registry order."""
    return tuple(spec.key for spec in SECRETS if spec.needed is needed)


def seed_secret_keys() -> tuple[str, ...]:
    """Secrets the seed workflows receive as parameter values."""
    return tuple(spec.key for spec in SECRETS if spec.seed_value)


def generated_keys() -> tuple[str, ...]:
    """Secrets a machine may generate (all but the tokens other services issue)."""
    return tuple(spec.key for spec in SECRETS if spec.generated_length)
