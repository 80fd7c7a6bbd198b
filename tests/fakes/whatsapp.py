"""WhatsApp Business Cloud API (Graph API): GET /v{N}/{PHONE_NUMBER_ID}?fields=... with Graph error bodies.

Contract rules and their sources:
- Phone number fields ``status``, ``quality_rating``, ``name_status``, ``code_verification_status``,
  ``throughput`` and ``health_status``: Graph API reference, WhatsApp Business Phone Number
  (https://developers.facebook.com/docs/graph-api/reference/whats-app-business-account-to-number-current-status/)
  and Health Status (https://developers.facebook.com/docs/whatsapp/cloud-api/health-status): ``health_status`` is
  ``{"can_send_message": "AVAILABLE"|"LIMITED"|"BLOCKED", "entities": [{entity_type, id, can_send_message,
  errors: [{error_code, error_description, possible_solution}]}]}``.
- Error envelope ``{"error": {message, type, code, error_subcode, fbtrace_id}}`` and codes: 190 expired token,
  4 application request limit, 17 user request limit, 341 application limit, 80007 WABA rate limit, 130429
  throughput, 131031 account locked (https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes,
  https://developers.facebook.com/docs/graph-api/overview/rate-limiting).
"""

from __future__ import annotations

from typing import Any

from tests.fakes.server import FakeApi, Request, Response

GRAPH_ERRORS: dict[int, tuple[int, str]] = {
    401: (190, "Error validating access token: Session has expired on Tuesday, 01-Jul-25 10:00:00 PDT."),
    403: (10, "(#10) Application does not have permission for this action"),
    404: (2500, "Unknown path components"),
    429: (4, "(#4) Application request limit reached"),
    500: (1, "An unknown error has occurred."),
    502: (2, "Service temporarily unavailable"),
}
CODE_MESSAGES = {
    4: "(#4) Application request limit reached",
    17: "(#17) User request limit reached",
    341: "(#341) Application limit reached",
    80007: "(#80007) Rate limit issues",
    130429: "(#130429) Rate limit hit",
    131031: "(#131031) Business Account locked",
    190: "Error validating access token: Session has expired",
}


def graph_error(status: int, code: int, message: str) -> Response:
    """Meta's error envelope."""
    body = {"error": {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbCdEfGh123"}}
    return Response(status, body, headers={"WWW-Authenticate": 'OAuth "Facebook Platform" "invalid_token"'})


class WhatsAppFake(FakeApi):
    """One business phone number; its attributes switch its state.

    ``quality``, ``status`` (CONNECTED, FLAGGED, RESTRICTED, BANNED, ...), ``can_send_message`` (health status),
    ``error_code`` (answer every request with that Graph error code, HTTP 400 as Meta does for most of them).
    """

    def __init__(self, token: str, phone_number_id: str = "106540352242922", version: str = "v21.0") -> None:
        super().__init__()
        self.token = token
        self.phone_number_id = phone_number_id
        self.version = version
        self.quality = "GREEN"
        self.status = "CONNECTED"
        self.name_status = "APPROVED"
        self.code_verification_status = "VERIFIED"
        self.can_send_message = "AVAILABLE"
        self.health_errors: list[dict[str, Any]] = []
        self.throughput_limited = False
        self.error_code: int | None = None

    def error(self, status: int, message: str) -> Response:
        code, text = GRAPH_ERRORS.get(status, (1, "An unknown error has occurred."))
        return graph_error(status, code, text)

    def route(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return graph_error(401, 190, "Invalid OAuth access token - Cannot parse access token")
        if self.throughput_limited:
            return graph_error(400, 130429, CODE_MESSAGES[130429])
        if self.error_code is not None:
            return graph_error(400, self.error_code, CODE_MESSAGES.get(self.error_code, "error"))
        if request.path != f"/{self.version}/{self.phone_number_id}":
            message = f"Unsupported get request. Object with ID '{request.path.rsplit('/', 1)[-1]}' does not exist"
            return graph_error(400, 100, message)
        fields = (request.query.get("fields") or ["id"])[0].split(",")
        return Response(200, {key: value for key, value in self._number().items() if key in [*fields, "id"]})

    def _number(self) -> dict[str, Any]:
        entity: dict[str, Any] = {
            "entity_type": "PHONE_NUMBER",
            "id": self.phone_number_id,
            "can_send_message": self.can_send_message,
        }
        if self.health_errors:
            entity["errors"] = self.health_errors
        return {
            "display_phone_number": "+1 555-0100",
            "verified_name": "Kaizenity",
            "quality_rating": self.quality,
            "status": self.status,
            "name_status": self.name_status,
            "code_verification_status": self.code_verification_status,
            "throughput": {"level": "STANDARD"},
            "health_status": {"can_send_message": self.can_send_message, "entities": [entity]},
            "id": self.phone_number_id,
        }
