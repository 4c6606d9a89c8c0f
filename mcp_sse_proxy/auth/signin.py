"""Refresh and browser sign-in, built on the official SDK's `OAuthClientProvider`.

The SDK does the protocol: protected-resource and authorization-server discovery, issuer checks,
registration (CIMD or RFC 7591), PKCE, the `resource` parameter, refresh and the step-up scope union. We
drive its auth flow by hand (`drive.py`), prepare it from the store (`provider.py`) and supply what it lacks:

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
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import anyio
import anyio.to_thread
import httpx2
from mcp.client.auth.utils import extract_scope_from_www_auth, union_scopes
from mcp.shared.auth import AuthorizationCodeResult, OAuthToken

from ..protocol.urls import display
from . import device_login
from .bearer import login_hint, single_error
from .browser import open_browser
from .callback import CallbackResult, CallbackServer, PortsInUse
from .drive import EXCHANGE_TIMEOUT, drive, job_request, job_response
from .errors import SignInError
from .keys import authorize_params, callback_ports, redirect_uri
from .lock import FileLock
from .provider import Provider, prepare, registration_covers, save_record
from .record import TokenRecord, keep_secret

if TYPE_CHECKING:
    from .bearer import Job

log = logging.getLogger("mcp_sse_proxy.auth")

#: How long one browser sign-in may take in all (the callback wait included) before the job gives up.
SIGNIN_DEADLINE = 300.0
#: How long a job waits for another instance's sign-in of the same key (its deadline, plus margin).
LOCK_WAIT = SIGNIN_DEADLINE + 30.0


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
                raise SignInError(
                    f"sign-in to {display(job.profile.url)} needed: run {login_hint(job.profile)}"
                )
            return await _sign_in(job, record, client)
    finally:
        lock.release()


def _http_client(job: Job) -> httpx2.AsyncClient:
    from ..httpclient import build_client

    return build_client(job.profile, sign_in="off")


# --- refresh -------------------------------------------------------------------------------------------


async def _refresh(job: Job, record: TokenRecord, client: httpx2.AsyncClient) -> TokenRecord | None:
    """The record with refreshed tokens, or None when the server refused the refresh token."""
    provider, storage = prepare(
        job, record, redirect_uris=[redirect_uri(callback_ports(job.resource, None)[0])]
    )
    # Expired, or refused by the server: refresh it first (1, not 0: the SDK reads 0 as "no expiry").
    provider.context.token_expiry_time = 1.0
    request = job_request(job)
    with anyio.fail_after(EXCHANGE_TIMEOUT):
        await drive(provider, request, None, client, job)
    if storage.tokens is None:
        log.info("the authorization server refused the refresh token; signing in again")
        return None
    log.info("refreshed the access token for %s", display(job.profile.url))
    return save_record(job, provider, storage, record)


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
        elif job.reason == "step-up" and not _covers_step_up(job, record):
            log.info("the registered client may not ask for the stepped-up scopes; registering again")
            record.client_info = None
    provider, storage = prepare(job, record, redirect_uris=[bound, *others])
    if job.reason != "step-up":
        provider.context.current_tokens = None
    request = job_request(job)
    trigger = job_response(job, request, record)
    try:
        async with anyio.create_task_group() as tg:
            await server.serve(tg)
            provider.context.redirect_handler = _redirect_handler(job, provider, client)
            provider.context.callback_handler = _callback_handler(job, server)
            with anyio.fail_after(SIGNIN_DEADLINE):
                await drive(provider, request, trigger, client, job)
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
    if job.prompt is not None and job.elicitation_id is not None:
        job.prompt.complete(job.elicitation_id)
    return save_record(job, provider, storage, record)


def _covers_step_up(job: Job, record: TokenRecord) -> bool:
    """Whether the stored registration allows the step-up's union of scopes (granted, configured,
    challenged); a CIMD client id is its document's business, not a registration's."""
    info = record.client_info or {}
    if (
        job.profile.oauth_client_metadata_url
        and info.get("client_id") == job.profile.oauth_client_metadata_url
    ):
        return True
    challenged = extract_scope_from_www_auth(job_response(job, job_request(job), record))
    wanted = union_scopes(union_scopes(record.scope, " ".join(job.profile.oauth_scopes) or None), challenged)
    return registration_covers(info, wanted)


def _redirect_handler(job: Job, provider: Provider, client: httpx2.AsyncClient) -> Any:
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
        if job.prompt is not None:
            job.elicitation_id = job.prompt.offer(url, _prompt_message(job), job.answered)
        if job.profile.oauth_open_browser and job.open_browser and not open_browser(url):
            log.warning("no browser could be started; open the URL above yourself")

    return redirect


def _prompt_message(job: Job) -> str:
    profile = job.profile
    named = f" (profile {profile.name})" if profile.name != "default" else ""
    return (
        f"Sign in to {display(profile.url)}{named}: mcp-sse-proxy needs your permission to reach it. "
        "Open the link to sign in; the proxy continues by itself once you have."
    )


async def _callback_result(job: Job, server: CallbackServer) -> CallbackResult:
    """The redirect's result, unless the user refuses the link shown in the client first."""
    result: list[CallbackResult] = []
    async with anyio.create_task_group() as tg:

        async def wait_redirect() -> None:
            result.append(await server.result())
            tg.cancel_scope.cancel()

        tg.start_soon(wait_redirect)
        await anyio.to_thread.run_sync(job.interrupt.wait, abandon_on_cancel=True)
        tg.cancel_scope.cancel()
    if result:
        return result[0]
    raise SignInError(
        f"the sign-in was {'declined' if job.refused == 'decline' else 'cancelled'} in the client; "
        f"retry the request to be asked again, or run {login_hint(job.profile)} in a terminal"
    )


def _callback_handler(job: Job, server: CallbackServer) -> Any:
    async def callback() -> AuthorizationCodeResult:
        result = await _callback_result(job, server)
        if result.error is not None:
            detail = f": {result.error_description}" if result.error_description else ""
            raise SignInError(f"the authorization server refused the sign-in ({result.error}{detail})")
        assert result.code is not None
        keep_secret(result.code)
        return AuthorizationCodeResult(code=result.code, state=result.state, iss=result.iss)

    return callback


def _with_extra_params(url: str, extra: dict[str, str]) -> str:
    if not extra:
        return url
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update(extra)
    return urlunsplit(parts._replace(query=urlencode(query)))
