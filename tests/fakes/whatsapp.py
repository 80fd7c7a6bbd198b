"""WhatsApp Business Cloud API (Graph API): GET /v{N}/{PHONE_NUMBER_ID}?fields=... with Graph error bodies."""

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


def graph_error(status: int, code: int, message: str) -> Response:
    """Meta's error envelope."""
    body = {"error": {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbCdEfGh123"}}
    return Response(status, body, headers={"WWW-Authenticate": 'OAuth "Facebook Platform" "invalid_token"'})


class WhatsAppFake(FakeApi):
    """One business phone number; ``quality`` and ``throughput_limited`` switch its state."""

    def __init__(self, token: str, phone_number_id: str = "106540352242922", version: str = "v21.0") -> None:
        super().__init__()
        self.token = token
        self.phone_number_id = phone_number_id
        self.version = version
        self.quality = "GREEN"
        self.throughput_limited = False

    def error(self, status: int, message: str) -> Response:
        code, text = GRAPH_ERRORS.get(status, (1, "An unknown error has occurred."))
        return graph_error(status, code, text)

    def route(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return graph_error(401, 190, "Invalid OAuth access token - Cannot parse access token")
        if self.throughput_limited:
            return graph_error(400, 130429, "(#130429) Rate limit hit")
        if request.path != f"/{self.version}/{self.phone_number_id}":
            message = f"Unsupported get request. Object with ID '{request.path.rsplit('/', 1)[-1]}' does not exist"
            return graph_error(400, 100, message)
        fields = (request.query.get("fields") or ["id"])[0].split(",")
        number: dict[str, Any] = {
            "display_phone_number": "+1 555-0100",
            "verified_name": "Kaizenity",
            "quality_rating": self.quality,
            "id": self.phone_number_id,
        }
        return Response(200, {key: number[key] for key in [*fields, "id"] if key in number})
