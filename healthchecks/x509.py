"""Just enough X.509 DER parsing to read a certificate's validity and issuer.

``ssl.getpeercert()`` only returns fields for a certificate that passed verification, but the gateway may
use Caddy's internal CA, which this host does not trust: we still need its expiry. ``cryptography`` is not
a dependency, so this walks the DER structure (Certificate > TBSCertificate > issuer, validity) directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

_SEQUENCE, _SET, _OID, _UTC_TIME, _GENERALIZED_TIME = 0x30, 0x31, 0x06, 0x17, 0x18
_VERSION_TAG = 0xA0
_COMMON_NAME = bytes([0x55, 0x04, 0x03])
_ORGANIZATION = bytes([0x55, 0x04, 0x0A])


class CertificateParseError(ValueError):
    """The bytes are not a DER X.509 certificate we can read."""


@dataclass(frozen=True)
class CertificateInfo:
    """Validity window and issuer names of one certificate."""

    not_before: datetime
    not_after: datetime
    issuer: str

    @property
    def lifetime_seconds(self) -> float:
        """Total validity span (Caddy's internal CA issues 12 h leaf certificates)."""
        return (self.not_after - self.not_before).total_seconds()


def parse_certificate(der: bytes) -> CertificateInfo:
    """Issuer and validity of a DER certificate; raises :class:`CertificateParseError` when malformed."""
    try:
        certificate = _children(der, 0, len(der))[0]
        tbs = _children(der, certificate[1], certificate[2])[0]
        fields = _children(der, tbs[1], tbs[2])
        if fields[0][0] == _VERSION_TAG:
            fields = fields[1:]
        issuer, validity = fields[2], fields[3]
        times = _children(der, validity[1], validity[2])
        return CertificateInfo(_time(der, times[0]), _time(der, times[1]), _name(der, issuer))
    except (IndexError, ValueError) as exc:
        raise CertificateParseError(f"not a readable X.509 certificate: {exc}") from exc


_Tlv = tuple[int, int, int]  # tag, value start, value end


def _children(der: bytes, start: int, end: int) -> list[_Tlv]:
    items, pos = [], start
    while pos < end:
        tag = der[pos]
        length, pos = _length(der, pos + 1)
        if pos + length > end:
            raise ValueError("element runs past its parent")
        items.append((tag, pos, pos + length))
        pos += length
    return items


def _length(der: bytes, pos: int) -> tuple[int, int]:
    first = der[pos]
    if first < 0x80:
        return first, pos + 1
    count = first & 0x7F
    if not 1 <= count <= 4:
        raise ValueError("unsupported length encoding")
    return int.from_bytes(der[pos + 1 : pos + 1 + count], "big"), pos + 1 + count


def _time(der: bytes, element: _Tlv) -> datetime:
    tag, start, end = element
    text = der[start:end].decode("ascii")
    if tag == _UTC_TIME:
        parsed = datetime.strptime(text, "%y%m%d%H%M%SZ")
    elif tag == _GENERALIZED_TIME:
        parsed = datetime.strptime(text, "%Y%m%d%H%M%SZ")
    else:
        raise ValueError(f"unexpected time tag {tag:#x}")
    return parsed.replace(tzinfo=UTC)


def _name(der: bytes, element: _Tlv) -> str:
    """``CN=..., O=...`` of an X.501 Name (only the attributes we need to recognise an issuer)."""
    parts = []
    for rdn in _children(der, element[1], element[2]):
        for attribute in _children(der, rdn[1], rdn[2]):
            oid, value = _children(der, attribute[1], attribute[2])[:2]
            label = {_COMMON_NAME: "CN", _ORGANIZATION: "O"}.get(der[oid[1] : oid[2]])
            if label:
                parts.append(f"{label}={der[value[1] : value[2]].decode('utf-8', 'replace')}")
    return ", ".join(parts)
