"""Builds the one `httpx2.AsyncClient` a relay uses, from a profile's TLS, proxy, timeout and redirect settings.

Every client the proxy makes (relay, `--check`, OAuth) comes from `build_client`, so the redirect policy
(`protocol/redirects.py`) holds for all of them: a redirect it does not allow ends the request with
`RedirectRefused` before anything is sent to the new location.
"""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from typing import Literal

import httpx2

from .config.model import Profile
from .errors import RedirectRefused
from .protocol.redirects import redirect_refusal

log = logging.getLogger("mcp_sse_proxy.http")

USER_AGENT = "mcp-sse-proxy"
SignIn = Literal["interactive", "stored", "off"]


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


def tls_context(profile: Profile) -> ssl.SSLContext:
    """The TLS context every https connection of the relay uses, and the one `--check` shakes hands with.

    httpx2 honours SSL_CERT_FILE and SSL_CERT_DIR for the default trust (`trust_env`), whatever
    `use_env_proxy` says: that setting is about proxies only.
    """
    return httpx2.create_ssl_context(ssl_context(profile), trust_env=True)


_PROXY_VARIABLES = frozenset({"http_proxy", "https_proxy", "all_proxy"})

#: Set by the relay around one upstream send: called once that send's first request body is on the wire,
#: so the next message may start (client→server order survives concurrent POSTs on pooled connections).
REQUEST_WRITTEN: ContextVar[Callable[[], None] | None] = ContextVar("request_written", default=None)


async def _trace_writes(request: httpx2.Request) -> None:
    written = REQUEST_WRITTEN.get()
    if written is None:
        return

    async def trace(name: str, info: object) -> None:
        if name.endswith("send_request_body.complete"):
            written()

    request.extensions["trace"] = trace


_CARRIED_AUTHORIZATION = "mcp_sse_proxy.carried_authorization"


async def _carry_authorization(request: httpx2.Request) -> None:
    """Put back the Authorization header httpx2 took off a redirect the policy allowed (same-site)."""
    value = request.extensions.pop(_CARRIED_AUTHORIZATION, None)
    if isinstance(value, str) and "authorization" not in request.headers:
        request.headers["Authorization"] = value


def _redirect_guard(profile: Profile) -> Callable[[httpx2.Response], Awaitable[None]]:
    """A response hook refusing, before httpx2 follows it, any redirect the profile's policy does not allow."""
    policy = "same-site" if profile.redirects == "same-site" else "same-origin"

    async def guard(response: httpx2.Response) -> None:
        if not response.has_redirect_location:
            return
        source = response.request.url
        try:
            target = source.join(response.headers["location"])
        except httpx2.InvalidURL:
            return  # httpx2 refuses to follow it and raises RemoteProtocolError
        refusal = redirect_refusal(str(source), str(target), policy)
        if refusal is None:
            authorization = response.request.headers.get("authorization")
            if authorization is not None and source.origin != target.origin:
                # httpx2 drops Authorization on another origin; `redirects: same-site` trusts this one.
                response.request.extensions[_CARRIED_AUTHORIZATION] = authorization
            return
        log.warning("%s", refusal)
        raise RedirectRefused(refusal, status=response.status_code)

    return guard


class _TlsOnDemand(httpx2.AsyncBaseTransport):
    """Builds the TLS transport on the first https:// request.

    Loading a CA bundle costs tens of milliseconds at every start; a proxy talking to an http:// server
    (the common local set-up) never needs it, and one that is redirected to https still verifies.
    """

    def __init__(self, profile: Profile, limits: httpx2.Limits) -> None:
        self._profile = profile
        self._limits = limits
        self._plain: httpx2.AsyncHTTPTransport | None = None
        self._tls: httpx2.AsyncHTTPTransport | None = None

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if request.url.scheme == "https":
            if self._tls is None:
                self._tls = httpx2.AsyncHTTPTransport(verify=tls_context(self._profile), limits=self._limits)
            return await self._tls.handle_async_request(request)
        if self._plain is None:
            self._plain = _plain_transport(self._limits)
        return await self._plain.handle_async_request(request)

    async def aclose(self) -> None:
        for transport in (self._plain, self._tls):
            if transport is not None:
                await transport.aclose()


def _plain_transport(limits: httpx2.Limits) -> httpx2.AsyncHTTPTransport:
    """httpx2's transport for http://; its connection pool runs on `netbackend.AsyncioBackend` (measured with
    benchmarks/run.py: about 1.5x the requests per second with 32 in flight and 30 % less CPU per call than
    httpcore2's anyio backend). MCP_SSE_PROXY_ASYNCIO_NETWORK=0 keeps httpcore2's own (anyio) backend."""
    import httpcore2

    from .netbackend import AsyncioBackend

    transport = httpx2.AsyncHTTPTransport(verify=False, limits=limits)
    if os.environ.get("MCP_SSE_PROXY_ASYNCIO_NETWORK") != "0":
        transport._pool = httpcore2.AsyncConnectionPool(
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=AsyncioBackend(),
        )
    return transport


def _proxy_configured(environ: Mapping[str, str]) -> bool:
    return any(name.lower() in _PROXY_VARIABLES and value for name, value in environ.items())


def _sign_in_auth(profile: Profile, sign_in: SignIn) -> httpx2.Auth | None:
    """The OAuth hook: the profile's sign-in `httpx2.Auth` (a stored-token fast path), or None."""
    if sign_in == "off":
        return None
    from .auth import auth_for

    return auth_for(profile, interactive=sign_in == "interactive")


def build_client(profile: Profile, *, sign_in: SignIn = "interactive") -> httpx2.AsyncClient:
    """The client for `profile`. `sign_in`: "interactive" (the relay: may open a browser), "stored" (use
    and refresh stored tokens only, e.g. for --check) or "off" (the sign-in's own exchanges)."""
    from . import __version__

    headers = {"User-Agent": f"{USER_AGENT}/{__version__}", **profile.headers}
    # Streams stay open for minutes (SSE, long tool calls): only connects and short exchanges time out,
    # and those limits are applied per request by the transports.
    timeout = httpx2.Timeout(profile.connect_timeout, read=None, write=None, pool=profile.queue_timeout)
    # Every in-flight request may hold a response stream open, plus the GET stream and a spare.
    limits = httpx2.Limits(
        max_connections=profile.max_concurrency + 4,
        max_keepalive_connections=min(profile.max_concurrency + 4, 64),
    )
    hooks: dict[str, list[Callable[..., Awaitable[None]]]] = {
        "request": [_trace_writes, _carry_authorization],
        "response": [_redirect_guard(profile)],
    }
    if profile.use_env_proxy and _proxy_configured(os.environ):
        # httpx2 mounts the environment's proxies only around its own default transports.
        return httpx2.AsyncClient(
            headers=headers,
            timeout=timeout,
            limits=limits,
            verify=tls_context(profile),
            trust_env=True,
            follow_redirects=True,
            event_hooks=hooks,
            auth=_sign_in_auth(profile, sign_in),
        )
    return httpx2.AsyncClient(
        headers=headers,
        timeout=timeout,
        transport=_TlsOnDemand(profile, limits),
        trust_env=False,
        follow_redirects=True,
        event_hooks=hooks,
        auth=_sign_in_auth(profile, sign_in),
    )
