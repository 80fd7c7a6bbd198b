"""WhatsApp Business Cloud API: the token works and the business phone number is usable.

Graph API errors carry their meaning in ``error.code`` rather than the HTTP status (Meta recommends
handling by code): 190 is an expired or invalid token, 131031 a locked account (CRITICAL); 4, 17, 341, 80007
and 130429 are throughput and rate limits (WARNING: we were throttled, nothing is known to be down).
Sources: https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes and
https://developers.facebook.com/docs/graph-api/overview/rate-limiting.

A GREEN quality rating says nothing about whether the number may send: Meta restricts, flags or bans a number
(``status``) and reports whether messages can go out at all (``health_status.can_send_message``: AVAILABLE,
LIMITED, BLOCKED; https://developers.facebook.com/docs/whatsapp/cloud-api/health-status). Both are asked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from healthchecks.context import ProbeContext
from healthchecks.httpclient import Reply, Service, fetch, generic_problem, json_object, make_client
from healthchecks.problems import Problem
from healthchecks.result import Measurement, ProbeResult, ResultBuilder, Status, Unit

DEFAULT_BASE_URL = "https://graph.facebook.com"
DEFAULT_API_VERSION = "v21.0"
FIELDS = "display_phone_number,verified_name,quality_rating,status,name_status,code_verification_status,health_status"
SERVICE = Service(
    "WhatsApp Cloud API", "WHATSAPP_TOKEN", "WHATSAPP_API_BASE_URL", "https://metastatus.com/whatsapp-business-api"
)
RATE_LIMIT_CODES = frozenset({4, 17, 341, 80007, 130429})
ACCOUNT_LOCKED = 131031
# Phone number ``status`` values (Graph API WhatsAppBusinessPhoneNumber): these mean no or few messages go out.
BLOCKING_STATUSES = frozenset({"BANNED", "RESTRICTED", "BLOCKED", "DELETED", "DISCONNECTED", "MIGRATED", "UNVERIFIED"})
DEGRADED_STATUSES = frozenset({"FLAGGED", "RATE_LIMITED", "PENDING"})


@dataclass(frozen=True)
class WhatsAppTarget:
    """The WhatsApp business phone number the workflows send from."""

    token: str
    phone_number_id: str
    base_url: str = DEFAULT_BASE_URL
    api_version: str = DEFAULT_API_VERSION


def probe(target: WhatsAppTarget, ctx: ProbeContext) -> ProbeResult:
    """GET the phone number's display number, verified name and quality rating."""
    builder = ResultBuilder("whatsapp")
    version = target.api_version if target.api_version.startswith("v") else f"v{target.api_version}"
    url = f"{target.base_url}/{version}/{quote(target.phone_number_id, safe='')}"
    headers = {"Authorization": f"Bearer {target.token}", "Accept": "application/json"}
    with make_client(headers) as client:
        try:
            reply = fetch(client, "GET", url, ctx, SERVICE, params={"fields": FIELDS})
            _raise_graph_error(reply)
            not_found = f"phone number {target.phone_number_id} not found (WHATSAPP_PHONE_NUMBER_ID)"
            problem = generic_problem(reply, SERVICE, "phone_number", not_found)
            if problem is not None:
                raise problem
            builder.measure(Measurement("latency", round(reply.latency, 4), Unit.SECONDS, minimum=0))
            _judge_number(json_object(reply, SERVICE, "phone_number"), builder)
        except Problem as problem:
            problem.record(builder)
    return builder.build()


def _raise_graph_error(reply: Reply) -> None:
    error = reply.body.get("error") if isinstance(reply.body, dict) else None
    if not isinstance(error, dict):
        return
    code = error.get("code")
    message = str(error.get("message") or "no message")
    if code == 190:
        raise Problem(
            "token",
            Status.CRITICAL,
            f"WhatsApp token expired or invalid (code 190: {message})",
            "Generate a new System User access token in Meta Business Manager (a permanent one, not the 24 h "
            "test token) and update WHATSAPP_TOKEN and the n8n WhatsApp credential.",
        )
    if code == ACCOUNT_LOCKED:
        raise Problem(
            "phone_number",
            Status.CRITICAL,
            f"WhatsApp Business Account locked (code 131031: {message}); nothing can be sent",
            "Open WhatsApp Manager > Account tools > Account quality for the reason and request a review; messages "
            "queue in ops.notifications until the account is unlocked.",
        )
    if code in RATE_LIMIT_CODES:
        raise Problem(
            "phone_number",
            Status.WARNING,
            f"WhatsApp throttled the check (code {code}: {message}); state not verified",
            "Throughput or rate limit reached: check for a workflow sending in a loop; messages may be delayed.",
        )
    if code == 100 and reply.status_code in (400, 404):
        raise Problem(
            "phone_number",
            Status.CRITICAL,
            f"WhatsApp does not know this phone number ID (code 100: {message})",
            "Check WHATSAPP_PHONE_NUMBER_ID (the numeric ID from the WhatsApp Manager, not the phone number) and "
            "that the token's app has access to the WhatsApp Business Account.",
        )


def _judge_number(body: dict[str, Any], builder: ResultBuilder) -> None:
    number = body.get("display_phone_number", "?")
    rating = str(body.get("quality_rating") or "UNKNOWN").upper()
    text = f"{number} ({body.get('verified_name', '?')}), quality {rating}"
    _judge_sending(body, text, builder)
    if rating == "RED":
        builder.add(
            "quality",
            Status.WARNING,
            f"{text}: Meta may lower the messaging limit",
            "Recipients are blocking or reporting messages: review templates and opt-in in WhatsApp Manager.",
        )
    else:
        builder.add("quality", Status.OK, text)


def _judge_sending(body: dict[str, Any], text: str, builder: ResultBuilder) -> None:
    """The number's ``status`` and ``health_status.can_send_message``: can messages go out at all?"""
    status = str(body.get("status") or "UNKNOWN").upper()
    raw_health = body.get("health_status")
    health: dict[str, Any] = raw_health if isinstance(raw_health, dict) else {}
    can_send = str(health.get("can_send_message") or "UNKNOWN").upper()
    reasons = _health_errors(health)
    detail = f"{text}, status {status}, can_send_message {can_send}" + (f" ({reasons})" if reasons else "")
    fix = (
        "Open WhatsApp Manager > Phone numbers for the reason (policy violation, display name, verification) and "
        "resolve it or appeal; until then notifications to WhatsApp fail or are limited."
    )
    if status in BLOCKING_STATUSES or can_send == "BLOCKED":
        builder.add("sending", Status.CRITICAL, f"{detail}: the number cannot send", fix)
    elif status in DEGRADED_STATUSES or can_send == "LIMITED":
        builder.add("sending", Status.WARNING, f"{detail}: sending is limited or at risk", fix)
    else:
        builder.add("sending", Status.OK, f"status {status}, can_send_message {can_send}")


def _health_errors(health: dict[str, Any]) -> str:
    """Meta's own reasons from health_status.entities[].errors[] (error_code: error_description)."""
    found: list[str] = []
    for entity in health.get("entities") or []:
        for error in (entity.get("errors") or []) if isinstance(entity, dict) else []:
            if isinstance(error, dict):
                found.append(f"{error.get('error_code', '?')}: {error.get('error_description', '?')}")
    return "; ".join(found[:3])
