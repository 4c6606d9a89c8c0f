"""Driving the SDK's auth flow by hand, without ever sending the request that needed a token.

The flow is an `httpx2.Auth` generator: it yields requests and expects their responses. `drive` answers
the first yield of the original request with the challenge the server already gave, sends every other
request (discovery, registration, token), and stops at the original's next yield, when the flow would
retry it. Two additions on the way: the served authorization-server metadata is kept whole (the SDK's model
drops members such as `device_authorization_endpoint`), and a registration guessed at the MCP server's
origin (the server advertises none) stops with an error that says what to pre-register.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import anyio
import httpx2

from .errors import SignInError
from .provider import Provider
from .record import TokenRecord

if TYPE_CHECKING:
    from .bearer import Job

#: Bound for one discovery, registration, refresh or token exchange.
EXCHANGE_TIMEOUT = 30.0


def job_request(job: Job) -> httpx2.Request:
    """The request that needed a token, rebuilt in this thread (its body is not needed: it is not re-sent)."""
    trigger = job.trigger
    return httpx2.Request(trigger.method, trigger.url, headers=list(trigger.request_headers))


def job_response(job: Job, request: httpx2.Request, record: TokenRecord | None) -> httpx2.Response:
    """The server's challenge to that request; a stored one (or a bare 401) when the job has none."""
    trigger = job.trigger
    if trigger.status is not None:
        return httpx2.Response(
            trigger.status, headers=list(trigger.response_headers), content=trigger.body, request=request
        )
    challenge = (record.challenge if record is not None else None) or "Bearer"
    return httpx2.Response(401, headers={"WWW-Authenticate": challenge}, request=request)


async def drive(
    provider: Provider,
    request: httpx2.Request,
    answer: httpx2.Response | None,
    client: httpx2.AsyncClient,
    job: Job,
) -> None:
    """Run the SDK flow for `request` without ever sending `request` itself.

    The flow yields `request` (with a token) where it would send it: the first time it gets `answer`,
    the challenge the server already gave; the next time (or the first, without `answer`) the flow is
    done. Every other request it yields (discovery, registration, token) goes to the server.
    """
    flow = provider.async_auth_flow(request)
    answered = False
    try:
        outgoing = await flow.__anext__()
        while True:
            if outgoing is request:
                if answered or answer is None:
                    return
                answered = True
                response = answer
            else:
                _check_registration(provider, outgoing, job)
                with anyio.fail_after(EXCHANGE_TIMEOUT):
                    response = await client.send(outgoing, auth=None)
                    await response.aread()
                _remember_metadata(provider, outgoing, response)
            outgoing = await flow.asend(response)
    except StopAsyncIteration:
        return
    finally:
        await flow.aclose()


def _remember_metadata(provider: Provider, request: httpx2.Request, response: httpx2.Response) -> None:
    path = request.url.path
    if response.status_code != 200 or not (
        "/.well-known/oauth-authorization-server" in path or "/.well-known/openid-configuration" in path
    ):
        return
    try:
        body = response.json()
    except ValueError:
        return
    if isinstance(body, dict) and provider.raw_metadata is None:
        provider.raw_metadata = body


def _check_registration(provider: Provider, outgoing: httpx2.Request, job: Job) -> None:
    """Stop before the SDK's guess of a registration endpoint on a server that advertises none."""
    context = provider.context
    metadata = context.oauth_metadata
    if context.client_info is not None or outgoing.method != "POST" or metadata is None:
        return
    if metadata.registration_endpoint is not None or not outgoing.url.path.endswith("/register"):
        return
    port = urlsplit(str(context.client_metadata.redirect_uris[0])).port  # type: ignore[index]
    raise SignInError(
        f"the authorization server {metadata.issuer} does not offer client registration: register a client "
        f"there (public, authorization code with PKCE) with the redirect URI http://127.0.0.1:{port}/callback, "
        f"then set --oauth-client-id (ST_PROXY_OAUTH_CLIENT_ID, or oauth_client_id in the profile), "
        f"--oauth-callback-port {port}, and --oauth-client-secret if the client has a secret"
    )
