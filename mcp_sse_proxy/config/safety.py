"""Checks the schema cannot express, run on every merged profile (they are cheap and never remembered).

A JSON Schema `pattern` ending in `$` accepts a value ending in a newline, and a URL can match the schema yet
have no valid port or host. Each problem names the profile, the setting and its source, never a secret value.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from mcp_sse_proxy.redaction import mask_url

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _control_char(text: str) -> str | None:
    found = _CONTROL.search(text)
    return f"U+{ord(found[0]):04X}" if found else None


def header_problems(values: Mapping[str, Any], sources: Mapping[str, str], *, profile: str) -> list[str]:
    """Header names must be tokens and values one line of text without control characters."""
    headers = values.get("headers")
    if not isinstance(headers, Mapping):
        return []
    problems = []
    for name, value in headers.items():
        source = sources.get(f"headers.{name}") or sources.get("headers", "?")
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            problems.append(
                f"profile {profile!r}: headers (from {source}): {name!r} is not a valid header name "
                "(letters, digits and !#$%&'*+.^_`|~- only; no spaces or control characters)"
            )
            continue
        if isinstance(value, str) and (char := _control_char(value)):
            problems.append(
                f"profile {profile!r}: headers.{name} (from {source}): the value contains a control "
                f"character ({char}); a header value must be one line of printable text"
            )
    return problems


def url_problems(values: Mapping[str, Any], sources: Mapping[str, str], *, profile: str) -> list[str]:
    """The URL must have a host, a valid port and no whitespace or control characters."""
    url = values.get("url")
    if not isinstance(url, str) or not url:
        return []
    where = f"profile {profile!r}: url (from {sources.get('url', '?')})"
    if char := _control_char(url):
        return [f"{where}: contains a control character ({char})"]
    if any(c.isspace() for c in url) or not url.lower().startswith(("http://", "https://")):
        return []  # the schema's pattern reports it
    try:
        parts = urlsplit(url)
        port = parts.port
        host = parts.hostname
    except ValueError as exc:
        return [f"{where}: {_url_reason(exc)}: {mask_url(url)}"]
    if not host:
        return [f"{where}: has no host: {mask_url(url)}"]
    if "[" in parts.netloc.rpartition("@")[2]:
        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            return [f"{where}: {host!r} is not a valid IPv6 address"]
    if port == 0:
        return [f"{where}: port 0 cannot be connected to"]
    return []


def _url_reason(exc: ValueError) -> str:
    text = str(exc)
    if "port" in text.lower():
        return "invalid port (expected a number from 1 to 65535)"
    if "ipv6" in text.lower() or "bracket" in text.lower():
        return "broken IPv6 host (expected [address] with a valid IPv6 address)"
    return f"not a valid URL ({text})"


def problems(values: Mapping[str, Any], sources: Mapping[str, str], *, profile: str) -> list[str]:
    """Every check of this module for one merged profile."""
    return [
        *url_problems(values, sources, profile=profile),
        *header_problems(values, sources, profile=profile),
    ]


# ---- what a careful user wants to hear at start (and from --check) ------------------------------------------

_LOOPBACK_NAMES = ("localhost", "localhost.")


def is_loopback(host: str) -> bool:
    """`localhost` (and names under it), 127.0.0.0/8 and ::1."""
    host = host.strip("[]").lower()
    if host in _LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def credentials_of(profile: Any, environ: Mapping[str, str]) -> list[str]:
    """What secret this profile sends upstream: headers, forwarded variables, OAuth (any `oauth*` setting)."""
    found = []
    if profile.headers:
        found.append("headers " + ", ".join(sorted(profile.headers)))
    prefixes = tuple(p for p in profile.env_prefixes if p)
    forwarded = sorted(name for name in environ if prefixes and name.startswith(prefixes))
    if forwarded:
        found.append("forwarded variables " + ", ".join(forwarded))
    oauth = [name for name in getattr(profile, "__dataclass_fields__", {}) if name.startswith("oauth")]
    if any(getattr(profile, name) for name in oauth):
        found.append("OAuth tokens")
    return found


def cleartext_credentials(profile: Any, environ: Mapping[str, str]) -> str | None:
    """A sentence when credentials would travel over plain http:// to a host that is not loopback."""
    parts = urlsplit(profile.url)
    if parts.scheme.lower() != "http" or is_loopback(parts.hostname or ""):
        return None
    sent = credentials_of(profile, environ)
    if not sent:
        return None
    return (
        f"profile {profile.name!r}: {'; '.join(sent)} would be sent over plain http:// to "
        f"{parts.hostname}, where anyone on the path can read them; use https:// "
        "(cleartext_credentials: error refuses to start)"
    )


def start_warnings(profiles: Any, environ: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """(warnings, errors) to report before relaying: TLS verification off, credentials over plain http."""
    warnings: list[str] = []
    errors: list[str] = []
    for profile in profiles:
        if not profile.tls_verify:
            warnings.append(
                f"profile {profile.name!r}: TLS certificate verification is off (tls_verify: false, from "
                f"{profile.sources.get('tls_verify', '?')}): anyone on the path can pose as the server; "
                "use --ca-file for a private CA instead"
            )
        cleartext = cleartext_credentials(profile, environ)
        if cleartext is not None:
            (errors if profile.cleartext_credentials == "error" else warnings).append(cleartext)
    return warnings, errors
