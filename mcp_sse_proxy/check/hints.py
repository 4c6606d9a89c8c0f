"""The one line a failed step says about what to try next, for failures that need thought to explain."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..config.model import Profile
from ..errors import (
    EndpointRefused,
    SessionExpired,
    SessionLost,
    StreamLost,
    UpstreamError,
    UpstreamHTTPError,
    UpstreamUnavailable,
)
from ..transports.detect import NoTransport


def hint_for(exc: UpstreamError, profile: Profile) -> str:
    """One line on what to try next for an upstream failure."""
    status = exc.status
    text = exc.reason.lower()
    if status in (401, 403):
        challenge = exc.challenge if isinstance(exc, UpstreamHTTPError) else None
        return auth_hint(profile, status, challenge)
    if status == 407:
        return "the HTTP proxy wants credentials: put them in HTTPS_PROXY (http://USER:PASSWORD@HOST:PORT)"
    if status == 404:
        return (
            "nothing answers at this path: check the URL's path (Streamable HTTP servers usually serve "
            "/mcp, legacy SSE servers /sse)"
        )
    if status in (400, 405, 406, 415):
        return (
            "the server does not take this transport at this URL: try --transport auto, or the other "
            "transport (--transport sse with the /sse URL, --transport streamable-http with /mcp)"
        )
    if status in (429, 503) and exc.retry_after is not None:
        return f"the server is busy or rate-limiting: try again in {exc.retry_after:g} s"
    if status is not None and status >= 500:
        return "the server failed: check its logs, or try again later"
    if isinstance(exc, NoTransport):
        return (
            "no MCP transport answered: check the URL's path (Streamable HTTP servers usually serve "
            "/mcp, legacy SSE servers /sse) and that it is an MCP server"
        )
    if isinstance(exc, EndpointRefused):
        return (
            "the legacy SSE server announced a message endpoint on another origin: use the URL on the "
            "origin it announces, or ask its operator to fix the endpoint event"
        )
    if isinstance(exc, (SessionExpired, SessionLost, StreamLost)):
        return (
            "the server ended the session early: check its logs (a restart, a crash, or a load balancer "
            "without session affinity)"
        )
    if isinstance(exc, UpstreamUnavailable):
        return _unavailable_hint(text)
    if "disconnected without sending a response" in text and profile.url.lower().startswith("http://"):
        return (
            "the server closed the connection without an HTTP answer: if it serves HTTPS on this port, "
            "use an https:// URL"
        )
    if "timed out" in text:
        return "the server did not answer in time: check its health; raise --read-timeout if it is just slow"
    return "run the proxy with --log-level debug to see the whole exchange"


def _unavailable_hint(text: str) -> str:
    if "certificate" in text or "ssl" in text:
        return (
            "TLS failed: if the server uses a private CA or a self-signed certificate, pass it with "
            "--ca-file PATH (ST_PROXY_CA_FILE)"
        )
    if "proxy" in text:
        return "the HTTP proxy failed: check HTTPS_PROXY/HTTP_PROXY, or use --no-use-env-proxy"
    if "refused" in text:
        return "nothing listens there: check the host and port in the URL, and that the server is running"
    return "check the host, port and network route (VPN, firewall, HTTPS_PROXY)"


def auth_hint(profile: Profile, status: int, challenge: str | None) -> str:
    """401/403: what is wrong with the credentials configured, or how to configure some."""
    configured = next((name for name in profile.headers if name.lower() == "authorization"), None)
    if configured is not None:
        source = profile.sources.get(f"headers.{configured}") or profile.sources.get("headers")
        where = f" (from {source})" if source else ""
        if status == 401:
            return f"the server refused the Authorization header{where}: the token may be wrong or expired"
        return f"the credentials{where} were accepted but lack permission here: check the token's scopes"
    scheme = (challenge or "").split(" ", 1)[0].strip(",") or "Bearer"
    hint = (
        f"the server wants credentials: add --header 'Authorization: {scheme} …', or set it in "
        "ST_PROXY_HEADERS (or ST_PROXY_HEADER_AUTHORIZATION), or in a header_file"
    )
    if challenge and "resource_metadata" in challenge:
        hint += (
            "; the server uses OAuth: get a token from its authorization server (this proxy runs no "
            "OAuth flow)"
        )
    return hint


def certificate_hint(reason: str, host: str, certificate: Mapping[str, Any], ca_source: str) -> str:
    """A certificate that failed verification: a wrong name, an expired one, or an unknown CA."""
    lower = reason.lower()
    if "hostname mismatch" in lower or "ip address mismatch" in lower:
        names = ", ".join(certificate.get("san") or []) or "other names"
        return f"the certificate is for {names}, not {host}: use a URL with one of those names"
    if "expired" in lower:
        return "the server's certificate has expired: its operator must renew it (the proxy cannot fix this)"
    return (
        f"the certificate is not signed by a CA in {ca_source}: pass the CA certificate (for a "
        "self-signed server, the certificate itself) with --ca-file PATH or ST_PROXY_CA_FILE; "
        "--no-tls-verify only for a test"
    )
