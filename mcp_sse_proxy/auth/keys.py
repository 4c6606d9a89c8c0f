"""Pure naming rules for sign-in: the resource a profile signs in to, its store key, callback ports.

No I/O here: the same profile gives the same key and ports in every process, which is what lets several
instances share one sign-in (one lock file, one stored record) and one registered set of redirect URIs.
"""

from __future__ import annotations

import hashlib
from urllib.parse import urlsplit, urlunsplit

#: Derived callback ports fall in [PORT_BASE, PORT_BASE + PORT_SPAN): below Linux's ephemeral range
#: (32768+), so an outgoing connection rarely holds one.
PORT_BASE = 28000
PORT_SPAN = 4000
#: How many derived ports a sign-in tries (and registers as redirect URIs) before giving up.
PORT_FALLBACKS = 3
CALLBACK_PATH = "/callback"


def canonical_resource(url: str) -> str:
    """The server URL as an RFC 8707 resource: lower-case scheme and host, no fragment, no query."""
    parts = urlsplit(url.strip())
    netloc = parts.netloc.rpartition("@")[2].lower()  # userinfo never names the resource
    scheme = parts.scheme.lower()
    for default in ((":80", "http"), (":443", "https")):
        if netloc.endswith(default[0]) and scheme == default[1]:
            netloc = netloc[: -len(default[0])]
    return urlunsplit((scheme, netloc, parts.path, "", ""))


def store_key(resource: str, client_id: str | None) -> str:
    """The name of one sign-in (resource + client) in the store, the lock directory and the keyring."""
    digest = hashlib.sha256(f"{resource}\n{client_id or ''}".encode()).hexdigest()
    return digest[:32]


def callback_ports(resource: str, fixed: int | None) -> list[int]:
    """Ports to try for the loopback redirect: the configured one alone, else a few derived from the URL."""
    if fixed is not None:
        return [fixed]
    start = int(hashlib.sha256(resource.encode()).hexdigest()[:8], 16) % PORT_SPAN
    return [PORT_BASE + (start + step * 997) % PORT_SPAN for step in range(PORT_FALLBACKS)]


def redirect_uri(port: int) -> str:
    """The loopback redirect URI for `port` (RFC 8252 §7.3: the IP literal, not `localhost`)."""
    return f"http://127.0.0.1:{port}{CALLBACK_PATH}"


def authorize_params(entries: tuple[str, ...]) -> dict[str, str]:
    """`name=value` entries of the `oauth_authorize_params` setting as a mapping (later entries win)."""
    params: dict[str, str] = {}
    for entry in entries:
        name, _, value = entry.partition("=")
        if name.strip():
            params[name.strip()] = value
    return params
