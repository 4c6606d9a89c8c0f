"""Builds the one `httpx2.AsyncClient` a relay uses, from a profile's TLS, proxy and timeout settings."""

from __future__ import annotations

import ssl

import httpx2

from .config.model import Profile

USER_AGENT = "mcp-sse-proxy"


def ssl_context(profile: Profile) -> ssl.SSLContext | bool:
    """The TLS settings: the OS trust store by default (httpx2's default), or the configured CA bundle."""
    if not profile.tls_verify:
        return False
    if profile.ca_file is None and profile.client_cert is None:
        return True
    if profile.ca_file is not None:
        ctx = ssl.create_default_context(cafile=str(profile.ca_file))
    else:
        ctx = httpx2.create_ssl_context(trust_env=True)
    if profile.client_cert is not None:
        ctx.load_cert_chain(
            str(profile.client_cert), str(profile.client_key) if profile.client_key is not None else None
        )
    return ctx


def build_client(profile: Profile) -> httpx2.AsyncClient:
    from . import __version__

    headers = {"User-Agent": f"{USER_AGENT}/{__version__}", **profile.headers}
    # Streams stay open for minutes (SSE, long tool calls): only connects and short exchanges time out,
    # and those limits are applied per request by the transports.
    timeout = httpx2.Timeout(connect=profile.connect_timeout, read=None, write=None, pool=None)
    # Every in-flight request may hold a response stream open, plus the GET stream and a spare.
    limits = httpx2.Limits(
        max_connections=profile.max_concurrency + 4,
        max_keepalive_connections=min(profile.max_concurrency + 4, 64),
    )
    return httpx2.AsyncClient(
        headers=headers,
        timeout=timeout,
        limits=limits,
        verify=ssl_context(profile),
        trust_env=profile.use_env_proxy,
        follow_redirects=True,
    )
