"""Refresh and browser sign-in, built on the official SDK's `OAuthClientProvider`.

The SDK does the protocol: protected-resource and authorization-server discovery, issuer checks,
registration (CIMD or RFC 7591), PKCE, the `resource` parameter, refresh and the step-up scope union. We
drive its auth flow by hand (`_drive`) and supply what it lacks:

- the cross-process lock and the re-read of the store under it (another instance may have signed in or
  rotated the refresh token meanwhile);
- the discovered metadata, restored into the provider from the store, so a restarted proxy refreshes at
  the authorization server's token endpoint (the SDK alone forgets it and uses the MCP server's origin) and
  knows when the stored token expires (the SDK alone does not, after a restart);
- the loopback callback with port fallbacks, the browser, configured scopes and authorize parameters,
  and a clear error when the server offers no registration.

Runs in a job thread with its own event loop (see `bearer.Job`); it never touches the relay's loop.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import anyio
import anyio.to_thread
import httpx2
from mcp.client.auth import OAuthClientProvider
from mcp.client.auth.utils import union_scopes
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthMetadata,
    OAuthToken,
    ProtectedResourceMetadata,
)

from ..protocol.urls import display
from ..redaction import add_secret
from . import device_login
from .bearer import single_error
from .browser import open_browser
from .callback import CallbackServer, PortsInUse
from .errors import SignInError
from .keys import authorize_params, callback_ports, redirect_uri
from .lock import FileLock
from .record import TokenRecord

if TYPE_CHECKING:
    from .bearer import Job

log = logging.getLogger("mcp_sse_proxy.auth")

#: How long one browser sign-in may take in all (the callback wait included) before the job gives up.
SIGNIN_DEADLINE = 300.0
#: How long a job waits for another instance's sign-in of the same key (its deadline, plus margin).
LOCK_WAIT = SIGNIN_DEADLINE + 30.0
#: Bound for refresh and discovery exchanges.
EXCHANGE_TIMEOUT = 30.0


async def obtain(job: Job) -> TokenRecord:
    """A record with a usable access token for `job.key`: someone else's, refreshed, or a new sign-in."""
    lock = FileLock(job.store.lock_path(job.key))
    if not await anyio.to_thread.run_sync(lock.acquire, LOCK_WAIT, abandon_on_cancel=True):
        raise SignInError(
            f"another mcp-sse-proxy has been signing in to {display(job.profile.url)} for too long"
        )
    try:
        record = job.store.load(job.key)
        if record is not None and record.is_fresh() and record.access_token != job.used_token:
            log.info("using the token another instance obtained for %s", display(job.profile.url))
            return record
        async with _http_client(job) as client:
            if job.reason != "step-up" and record is not None and record.refresh_token:
                refreshed = await _refresh(job, record, client)
                if refreshed is not None:
                    return refreshed
            if not job.interactive:
                raise SignInError(f"sign-in to {display(job.profile.url)} needed")
            return await _sign_in(job, record, client)
    finally:
        lock.release()


def _http_client(job: Job) -> httpx2.AsyncClient:
    from ..httpclient import build_client

    return build_client(job.profile, sign_in="off")


# --- refresh -------------------------------------------------------------------------------------------


async def _refresh(job: Job, record: TokenRecord, client: httpx2.AsyncClient) -> TokenRecord | None:
    """The record with refreshed tokens, or None when the server refused the refresh token."""
    provider, storage = _provider(
        job, record, redirect_uris=[redirect_uri(callback_ports(job.resource, None)[0])]
    )
    # Expired, or refused by the server: refresh it first (1, not 0: the SDK reads 0 as "no expiry").
    provider.context.token_expiry_time = 1.0
    request = job_request(job)
    with anyio.fail_after(EXCHANGE_TIMEOUT):
        await _drive(provider, request, None, client, job)
    if storage.tokens is None:
        log.info("the authorization server refused the refresh token; signing in again")
        return None
    log.info("refreshed the access token for %s", display(job.profile.url))
    return _save(job, provider, storage, record)


# --- browser sign-in -----------------------------------------------------------------------------------


async def _sign_in(job: Job, record: TokenRecord | None, client: httpx2.AsyncClient) -> TokenRecord:
    profile = job.profile
    ports = callback_ports(job.resource, profile.oauth_callback_port)
    try:
        server = await CallbackServer.bind(ports)
    except PortsInUse:
        raise SignInError(
            f"cannot sign in: the callback port{'s' if len(ports) > 1 else ''} "
            f"{', '.join(map(str, ports))} {'are' if len(ports) > 1 else 'is'} in use by another program"
            + ("; choose another with --oauth-callback-port" if profile.oauth_callback_port else "")
        ) from None
    bound = redirect_uri(server.port)
    others = [redirect_uri(port) for port in ports if port != server.port]
    if record is not None and record.client_info and not profile.oauth_client_id:
        registered = record.client_info.get("redirect_uris") or []
        if bound not in registered:
            record.client_info = None  # registered for other ports: register again
    provider, storage = _provider(job, record, redirect_uris=[bound, *others])
    if job.reason != "step-up":
        provider.context.current_tokens = None
    request = job_request(job)
    trigger = job_response(job, request, record)
    try:
        async with anyio.create_task_group() as tg:
            await server.serve(tg)
            provider.context.redirect_handler = _redirect_handler(job, provider, client)
            provider.context.callback_handler = _callback_handler(server)
            with anyio.fail_after(SIGNIN_DEADLINE):
                await _drive(provider, request, trigger, client, job)
            tg.cancel_scope.cancel()
    except BaseException as exc:
        inner = single_error(exc)
        if isinstance(inner, TimeoutError):
            raise SignInError(f"nobody completed the sign-in within {SIGNIN_DEADLINE:g} s") from None
        if not isinstance(inner, device_login.DeviceGranted):
            raise inner from None
        await storage.set_tokens(OAuthToken.model_validate(inner.token))
    finally:
        await server.aclose()
    if storage.tokens is None:
        raise SignInError("the authorization server issued no token")
    log.info("signed in to %s", display(profile.url))
    return _save(job, provider, storage, record)


def _redirect_handler(job: Job, provider: _Provider, client: httpx2.AsyncClient) -> Any:
    async def redirect(url: str) -> None:
        if device_login.wanted(job):
            token = await device_login.sign_in(
                job, provider.context, provider.raw_metadata, client, SIGNIN_DEADLINE
            )
            if token is not None:
                raise device_login.DeviceGranted(token)
        url = _with_extra_params(url, authorize_params(job.profile.oauth_authorize_params))
        job.sign_in_url = url
        log.warning("sign-in needed for %s: open %s", display(job.profile.url), url)
        if job.on_url is not None:
            job.on_url(url)
        if job.profile.oauth_open_browser and job.open_browser and not open_browser(url):
            log.warning("no browser could be started; open the URL above yourself")

    return redirect


def _callback_handler(server: CallbackServer) -> Any:
    async def callback() -> AuthorizationCodeResult:
        result = await server.result()
        if result.error is not None:
            detail = f": {result.error_description}" if result.error_description else ""
            raise SignInError(f"the authorization server refused the sign-in ({result.error}{detail})")
        assert result.code is not None
        add_secret(result.code)
        return AuthorizationCodeResult(code=result.code, state=result.state, iss=result.iss)

    return callback


def _with_extra_params(url: str, extra: dict[str, str]) -> str:
    if not extra:
        return url
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update(extra)
    return urlunsplit(parts._replace(query=urlencode(query)))


# --- the SDK provider, prepared from the store ----------------------------------------------------------


class _Storage:
    """The SDK's `TokenStorage`: serves the record's values and captures what the flow obtains."""

    def __init__(self, job: Job, record: TokenRecord | None, client_info: OAuthClientInformationFull | None):
        self._job = job
        self._record = record
        self.client_info = client_info
        self.tokens: OAuthToken | None = None
        self.received_at = 0.0

    async def get_tokens(self) -> OAuthToken | None:
        return _tokens_of(self._record)

    async def set_tokens(self, tokens: OAuthToken) -> None:
        add_secret(tokens.access_token)
        add_secret(tokens.refresh_token)
        self.tokens = tokens
        self.received_at = time.time()

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        add_secret(client_info.client_secret)
        self.client_info = client_info
        # Kept at once: a sign-in the user abandons must not cost another registration next time.
        record = self._record or TokenRecord(key=self._job.key, resource=self._job.resource)
        record.client_info = client_info.model_dump(mode="json", exclude_none=True)
        record.client_id = client_info.client_id
        record.access_token = record.refresh_token = None
        self._record = record
        self._job.store.save(record)


class _Provider(OAuthClientProvider):
    """The SDK provider, with configured scopes joined to the challenged ones at authorization."""

    configured_scope: str | None = None
    #: The authorization server's metadata as served (the SDK's model drops members it does not know,
    #: such as `device_authorization_endpoint`).
    raw_metadata: dict[str, Any] | None = None

    async def _perform_authorization_code_grant(self) -> tuple[str, str]:
        metadata = self.context.client_metadata
        metadata.scope = union_scopes(self.configured_scope, metadata.scope) or None
        return await super()._perform_authorization_code_grant()


def _provider(
    job: Job, record: TokenRecord | None, *, redirect_uris: list[str]
) -> tuple[_Provider, _Storage]:
    from .. import __version__

    profile = job.profile
    secret = _client_secret(job)
    configured_scope = " ".join(profile.oauth_scopes) or None
    metadata = OAuthClientMetadata(
        redirect_uris=redirect_uris,  # type: ignore[arg-type]
        token_endpoint_auth_method="client_secret_post" if secret else "none",
        grant_types=["authorization_code", "refresh_token"]
        + ([device_login.DEVICE_GRANT] if device_login.wanted(job) else []),
        response_types=["code"],
        scope=configured_scope,
        client_name="mcp-sse-proxy",
        software_id="mcp-sse-proxy",
        software_version=__version__,
        application_type="native",
    )
    client_info = _client_info(job, record, secret, redirect_uris)
    storage = _Storage(job, record, client_info)
    provider = _Provider(server_url=_server_url(job), client_metadata=metadata, storage=storage)
    provider.configured_scope = configured_scope
    context = provider.context
    # Restored by hand: the SDK's own start-up reads tokens without their expiry and keeps no metadata.
    context.current_tokens = _tokens_of(record)
    context.token_expiry_time = record.expires_at if record is not None else None
    context.client_info = client_info
    if record is not None and record.oauth_metadata:
        context.oauth_metadata = _parse(OAuthMetadata, record.oauth_metadata)
    if record is not None and record.resource_metadata:
        prm = _parse(ProtectedResourceMetadata, record.resource_metadata)
        context.protected_resource_metadata = prm
        if prm is not None and prm.authorization_servers:
            context.auth_server_url = str(prm.authorization_servers[0])
    provider._initialized = True  # type: ignore[attr-defined]  # the values above replace its loading
    if not profile.oauth_resource:
        context.should_include_resource_param = lambda protocol_version=None: False  # type: ignore[method-assign]
    return provider, storage


def _server_url(job: Job) -> str:
    # The endpoint actually used (detection may have added /mcp to a bare URL), without its query.
    parts = urlsplit(job.trigger.url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _client_secret(job: Job) -> str | None:
    profile = job.profile
    if profile.oauth_client_secret:
        return profile.oauth_client_secret
    if profile.oauth_client_secret_file is not None:
        try:
            text = profile.oauth_client_secret_file.expanduser().read_text(encoding="utf-8")
        except OSError as exc:
            raise SignInError(
                f"cannot read oauth_client_secret_file {profile.oauth_client_secret_file}: "
                f"{exc.strerror or exc}"
            ) from None
        secret = text.strip().splitlines()[0].strip() if text.strip() else ""
        add_secret(secret)
        return secret or None
    return None


def _client_info(
    job: Job, record: TokenRecord | None, secret: str | None, redirect_uris: list[str]
) -> OAuthClientInformationFull | None:
    profile = job.profile
    if profile.oauth_client_id:
        return OAuthClientInformationFull(
            client_id=profile.oauth_client_id,
            client_secret=secret,
            redirect_uris=redirect_uris,  # type: ignore[arg-type]
            token_endpoint_auth_method="client_secret_post" if secret else "none",
            grant_types=["authorization_code", "refresh_token"],
        )
    if record is not None and record.client_info:
        return _parse(OAuthClientInformationFull, record.client_info)
    return None


def _tokens_of(record: TokenRecord | None) -> OAuthToken | None:
    if record is None or not record.access_token:
        return None
    expires_in = int(record.expires_at - time.time()) if record.expires_at is not None else None
    return OAuthToken(
        access_token=record.access_token,
        refresh_token=record.refresh_token,
        scope=record.scope,
        expires_in=expires_in,
    )


def _parse(model: Any, data: dict[str, Any]) -> Any:
    try:
        return model.model_validate(data)
    except ValueError:
        return None


def _save(job: Job, provider: _Provider, storage: _Storage, old: TokenRecord | None) -> TokenRecord:
    tokens = storage.tokens
    assert tokens is not None
    context = provider.context
    record = TokenRecord(key=job.key, resource=job.resource)
    record.issuer = str(context.oauth_metadata.issuer) if context.oauth_metadata is not None else None
    info = context.client_info or storage.client_info
    record.client_info = info.model_dump(mode="json", exclude_none=True) if info is not None else None
    record.client_id = info.client_id if info is not None else None
    record.access_token = tokens.access_token
    record.refresh_token = tokens.refresh_token or (old.refresh_token if old is not None else None)
    record.scope = tokens.scope
    record.expires_at = storage.received_at + tokens.expires_in if tokens.expires_in is not None else None
    if context.oauth_metadata is not None:
        known = context.oauth_metadata.model_dump(mode="json", exclude_none=True)
        raw = provider.raw_metadata or (old.oauth_metadata if old is not None else None) or {}
        record.oauth_metadata = {**raw, **known}
    if context.protected_resource_metadata is not None:
        record.resource_metadata = context.protected_resource_metadata.model_dump(
            mode="json", exclude_none=True
        )
    record.challenge = job.trigger.challenge or (old.challenge if old is not None else None)
    job.store.save(record)
    return record


# --- driving the SDK's flow ----------------------------------------------------------------------------


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


async def _drive(
    provider: _Provider,
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


def _remember_metadata(provider: _Provider, request: httpx2.Request, response: httpx2.Response) -> None:
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


def _check_registration(provider: _Provider, outgoing: httpx2.Request, job: Job) -> None:
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
