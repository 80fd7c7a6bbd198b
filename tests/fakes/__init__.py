"""Contract fakes of the SaaS and service HTTP APIs the health probes talk to.

Real sockets on 127.0.0.1 (ephemeral ports), stdlib ``http.server`` in a thread, responses shaped as the
APIs document them (bodies, status codes, headers), and a switch into every fault a probe must survive:
hang, refused connection, 401/403/404, 429 with Retry-After, 500/502, malformed JSON, wrong content type.
"""

from tests.fakes.server import FakeApi, Fault, Response

__all__ = ["FakeApi", "Fault", "Response"]
