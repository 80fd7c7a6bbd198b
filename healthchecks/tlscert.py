"""Read the certificate a TLS server presents, trusted or not, and how long it has left."""

from __future__ import annotations

import socket
import ssl

from healthchecks.x509 import CertificateInfo, parse_certificate


def peer_certificate(host: str, port: int, timeout: float, server_name: str | None = None) -> CertificateInfo:
    """Handshake without verification (we want the expiry even of an untrusted internal-CA cert).

    Trust is judged separately by the HTTP checks, which do verify; here only dates and issuer matter.
    """
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection((host, port), timeout=timeout) as sock,
        context.wrap_socket(sock, server_hostname=server_name or host) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    if not der:
        raise ssl.SSLError("the server presented no certificate")
    return parse_certificate(der)
