"""The TLS step: a handshake with the relay's own TLS context, and what the certificate says when it fails."""

from __future__ import annotations

import os
import ssl
import sys
from typing import Any

import anyio
from anyio.abc import ByteStream
from anyio.streams.tls import TLSAttribute, TLSStream

from ..config.model import Profile
from ..httpclient import tls_context
from .certificates import certificate_from_der, certificate_from_dict
from .hints import certificate_hint
from .report import CheckReport, now

EXPIRY_WARNING_DAYS = 14


async def handshake(
    profile: Profile, report: CheckReport, stream: ByteStream, host: str, port: int
) -> ByteStream:
    """Wrap `stream` in TLS as the relay would; records the certificate, fails the step if untrusted."""
    started = now()
    source = ca_source(profile)
    try:
        context = tls_context(profile)
    except (OSError, ssl.SSLError) as exc:
        report.fail(
            "tls",
            f"cannot load the TLS settings: {exc}",
            "check the paths and contents of ca_file, client_cert and client_key (PEM files)",
            started,
        )
    try:
        with anyio.fail_after(profile.connect_timeout):
            tls = await _wrap(stream, host, context)
    except ssl.SSLCertVerificationError as exc:
        certificate = await _unverified_certificate(profile, host, port)
        report.data["tls"] = {
            **certificate,
            "version": None,
            "cipher": None,
            "ca_source": source,
            "verified": False,
        }
        reason = exc.verify_message or exc.reason or str(exc)
        report.fail(
            "tls",
            f"the server's certificate is not trusted: {reason}",
            certificate_hint(reason, host, certificate, source),
            started,
        )
    except ssl.SSLError as exc:
        reason = exc.reason or str(exc)
        if "WRONG_VERSION_NUMBER" in str(exc) or "record layer failure" in str(exc).lower():
            hint = f"{host}:{port} does not speak TLS: try the URL with http:// instead of https://"
        else:
            hint = (
                "the TLS handshake failed: check the port, and whether the server wants a client "
                "certificate (--client-cert/--client-key)"
            )
        report.fail("tls", f"TLS handshake with {host}:{port} failed: {reason}", hint, started)
    except TimeoutError:
        report.fail(
            "tls",
            f"no TLS handshake with {host}:{port} within {profile.connect_timeout:g} s",
            "the port may not be a TLS port: check the URL's scheme and port",
            started,
        )
    except (OSError, anyio.BrokenResourceError, anyio.EndOfStream) as exc:
        report.fail(
            "tls",
            f"the connection closed during the TLS handshake ({type(exc).__name__})",
            "the port may not be a TLS port, or a middlebox interferes: check the URL's scheme and port",
            started,
        )
    _record_certificate(profile, report, tls, source, started)
    return tls


def _record_certificate(
    profile: Profile, report: CheckReport, tls: TLSStream, source: str, started: float
) -> None:
    details = certificate_from_dict(tls.extra(TLSAttribute.peer_certificate, None) or {})
    if details["subject"] is None:  # verification off: the ssl module does not decode the certificate
        details = certificate_from_der(tls.extra(TLSAttribute.peer_certificate_binary, None))
    cipher = tls.extra(TLSAttribute.cipher, None)
    entry = report.data["tls"] = {
        **details,
        "version": tls.extra(TLSAttribute.tls_version, None),
        "cipher": cipher[0] if cipher else None,
        "ca_source": source,
        "verified": profile.tls_verify,
    }
    parts = [entry["version"] or "TLS"]
    if details["subject"]:
        parts.append(f"subject {details['subject']}")
    if details["issuer"]:
        parts.append(f"issuer {details['issuer']}")
    if details["not_after"]:
        parts.append(f"expires {details['not_after'][:10]} ({details['days_left']} days)")
    parts.append(f"CA: {source}")
    days_left = details["days_left"]
    hint = None
    if not profile.tls_verify:
        hint = "certificate verification is off (tls_verify: false): use --ca-file instead"
    elif days_left is not None and days_left < EXPIRY_WARNING_DAYS:
        hint = f"the certificate expires in {days_left} days: tell the server's operator"
    report.record("tls", "ok" if hint is None else "warning", "; ".join(parts), started, hint=hint)


async def _unverified_certificate(profile: Profile, host: str, port: int) -> dict[str, Any]:
    """The certificate a server presents, read without verifying it, to explain a verification failure."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with anyio.fail_after(profile.connect_timeout):
            tls = await _wrap(await anyio.connect_tcp(host, port), host, context)
    except (TimeoutError, OSError, ssl.SSLError, anyio.BrokenResourceError, anyio.EndOfStream):
        return certificate_from_der(None)
    try:
        return certificate_from_der(tls.extra(TLSAttribute.peer_certificate_binary, None))
    finally:
        with anyio.CancelScope(shield=True):
            await tls.aclose()


async def _wrap(stream: ByteStream, host: str, context: ssl.SSLContext) -> TLSStream:
    return await TLSStream.wrap(stream, hostname=host, ssl_context=context, standard_compatible=False)


def ca_source(profile: Profile) -> str:
    """Which certificates the relay trusts, in words (what `httpclient.tls_context` loads)."""
    if not profile.tls_verify:
        return "none: verification is off (tls_verify: false)"
    if profile.ca_file is not None:
        source = profile.sources.get("ca_file")
        return f"ca_file {profile.ca_file}" + (f" (from {source})" if source else "")
    if os.environ.get("SSL_CERT_FILE"):
        return f"SSL_CERT_FILE {os.environ['SSL_CERT_FILE']}"
    if os.environ.get("SSL_CERT_DIR"):
        return f"SSL_CERT_DIR {os.environ['SSL_CERT_DIR']}"
    if sys.platform in ("win32", "darwin"):
        return "the operating system's trust store"
    paths = ssl.get_default_verify_paths()
    return f"the system CA bundle ({paths.openssl_cafile})"
