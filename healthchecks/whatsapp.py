"""WhatsApp Business Cloud API: the token works and the business phone number is usable.

Graph API errors carry their meaning in ``error.code`` rather than the HTTP status (Meta recommends
handling by code): 190 is an expired or invalid token, 130429/80007/4 are throughput and rate limits
(WARNING: we were throttled, nothing is known to be down).
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
FIELDS = "display_phone_number,verified_name,quality_rating"
SERVICE = Service(
    "WhatsApp Cloud API", "WHATSAPP_TOKEN", "WHATSAPP_API_BASE_URL", "https://metastatus.com/whatsapp-business-api"
)
RATE_LIMIT_CODES = frozenset({4, 80007, 130429})


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
    if rating == "RED":
        builder.add(
            "quality",
            Status.WARNING,
            f"{text}: Meta may lower the messaging limit",
            "Recipients are blocking or reporting messages: review templates and opt-in in WhatsApp Manager.",
        )
    else:
        builder.add("quality", Status.OK, text)
