"""What a server's certificate says (subject, issuer, names, expiry), from the ssl module or from DER bytes."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

_RDN_SHORT = {
    "commonName": "CN",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "countryName": "C",
    "localityName": "L",
    "stateOrProvinceName": "ST",
}


def _rdn_text(rdns: Any) -> str | None:
    parts = [f"{_RDN_SHORT.get(key, key)}={value}" for rdn in rdns or () for key, value in rdn]
    return ",".join(parts) or None


def _expiry(not_after: datetime | None) -> dict[str, Any]:
    if not_after is None:
        return {"not_after": None, "days_left": None}
    days_left = (not_after - datetime.now(UTC)).days
    return {"not_after": not_after.isoformat(), "days_left": days_left}


def certificate_from_dict(decoded: Mapping[str, Any]) -> dict[str, Any]:
    """Subject, issuer, expiry and names of a certificate as `ssl.SSLSocket.getpeercert()` decodes it."""
    not_after = None
    if decoded.get("notAfter"):
        not_after = datetime.fromtimestamp(ssl.cert_time_to_seconds(decoded["notAfter"]), UTC)
    return {
        "subject": _rdn_text(decoded.get("subject")),
        "issuer": _rdn_text(decoded.get("issuer")),
        "san": [str(value) for _kind, value in decoded.get("subjectAltName", ())],
        **_expiry(not_after),
    }


def certificate_from_der(der: bytes | None) -> dict[str, Any]:
    """The same for a certificate the ssl module would not decode (not verified), with `cryptography`."""
    # Imported here: only a TLS failure or an unverified connection needs it, and it costs start-up time.
    from cryptography import x509

    empty = {"subject": None, "issuer": None, "san": [], **_expiry(None)}
    if not der:
        return empty
    try:
        certificate = x509.load_der_x509_certificate(der)
    except ValueError:
        return empty
    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        san = [str(name.value) for name in extension.value]
    except x509.ExtensionNotFound:
        san = []
    return {
        "subject": certificate.subject.rfc4514_string() or None,
        "issuer": certificate.issuer.rfc4514_string() or None,
        "san": san,
        **_expiry(certificate.not_valid_after_utc),
    }
