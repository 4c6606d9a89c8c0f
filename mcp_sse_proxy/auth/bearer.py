"""The fast path: an `httpx2.Auth` that sends the stored token, and hands anything else to a sign-in job.

A profile with a stored, unexpired token costs one small file read per token change and no `mcp` import.
A 401, a `403 insufficient_scope` or an expired token start (or join) a `Job`: a thread with its own
event loop that runs `signin.obtain` (refresh or browser sign-in). A request waits for it at most
`oauth_signin_wait` seconds and then fails with a message saying what to do; the job goes on, and the next
request picks up its token from the store. The job outlives the request on purpose: the user may
approve the sign-in a minute after the client gave up on `initialize`.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from typing import Literal

import anyio
import anyio.to_thread
import httpx2

from ..config.model import Profile
from ..protocol.urls import display
from . import elicit
from .elicit import ClientPrompt
from .errors import SignInError, SignInPending
from .keys import canonical_resource, store_key
from .record import TokenRecord, keep_secret
from .store import TokenStore

log = logging.getLogger("mcp_sse_proxy.auth")

Reason = Literal["expired", "unauthorized", "step-up", "login"]
#: Response bodies kept for the sign-in job (a challenge's body is small; anything longer is cut).
TRIGGER_BODY_LIMIT = 64 * 1024


@dataclass(frozen=True, slots=True)
class Trigger:
    """The request that needed a token and the server's answer to it, as plain data for another thread."""

    method: str
    url: str
    request_headers: tuple[tuple[str, str], ...]
    status: int | None = None
    response_headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    @classmethod
    def of(cls, request: httpx2.Request, response: httpx2.Response | None) -> Trigger:
        headers = tuple((k, v) for k, v in request.headers.items() if k.lower() != "authorization")
        if response is None:
            return cls(request.method, str(request.url), headers)
        return cls(
            request.method,
            str(request.url),
            headers,
            response.status_code,
            tuple(response.headers.items()),
            response.content[:TRIGGER_BODY_LIMIT],
        )

    @property
    def challenge(self) -> str | None:
        return next((v for k, v in self.response_headers if k.lower() == "www-authenticate"), None)


@dataclass(slots=True)
class Job:
    """One refresh or sign-in for a key, run in a thread; requests of this process join it."""

    profile: Profile
    store: TokenStore
    key: str
    resource: str
    trigger: Trigger
    reason: Reason
    used_token: str | None
    interactive: bool
    done: threading.Event = field(default_factory=threading.Event)
    record: TokenRecord | None = None
    error: BaseException | None = None
    #: The authorization URL once the browser step began (shown in errors so the user can open it).
    sign_in_url: str | None = None
    open_browser: bool = True
    #: Called with the authorization URL (in the job's thread), e.g. to print it for `--login`.
    on_url: Callable[[str], None] | None = None
    #: Set by `--login`: shows (verification_uri, verification_uri_complete, user_code) of a device grant.
    on_device: Callable[[str, str | None, str], None] | None = None
    #: The client, when it can show the sign-in link itself (URL elicitation); see `elicit`.
    prompt: ClientPrompt | None = None
    #: The id of the elicitation that showed this job's link in the client, once sent.
    elicitation_id: str | None = None
    #: "decline" or "cancel" once the user refused the link in the client.
    refused: str | None = None
    #: Set when the job ends or the user refused the link: wakes the callback wait.
    interrupt: threading.Event = field(default_factory=threading.Event)

    def answered(self, action: str | None) -> None:
        """The user's answer to the link shown in the client (any thread)."""
        if action in ("decline", "cancel") and not self.done.is_set():
            self.refused = action
            self.interrupt.set()

    def start(self) -> None:
        threading.Thread(target=self.run, name=f"mcp-sse-proxy-signin-{self.key[:8]}", daemon=True).start()

    def run(self) -> None:
        """Run the job to its end in this thread (with an event loop of its own)."""
        try:
            from . import signin  # the SDK loads here, off the fast path

            self.record = anyio.run(signin.obtain, self)
        except BaseException as exc:  # reported to every waiting request
            self.error = single_error(exc)
        finally:
            self.done.set()
            self.interrupt.set()


def single_error(exc: BaseException) -> BaseException:
    """The one error inside (nested) exception groups of one member; the group itself otherwise."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


_jobs: dict[str, Job] = {}
_jobs_guard = threading.Lock()


def join_or_start(job: Job) -> Job:
    """The running job for `job.key` if there is one (one sign-in per key per process), else `job`."""
    with _jobs_guard:
        running = _jobs.get(job.key)
        if running is not None and not running.done.is_set():
            return running
        _jobs[job.key] = job
    job.start()
    return job


class OAuthAuth(httpx2.Auth):
    """Bearer tokens from the store; sign-in, refresh and step-up through `signin` when needed."""

    def __init__(
        self, profile: Profile, *, interactive: bool = True, store: TokenStore | None = None
    ) -> None:
        self.profile = profile
        self.interactive = interactive
        self.store = store or TokenStore(preference=profile.oauth_store)
        self.resource = canonical_resource(profile.url)
        self.key = store_key(self.resource, profile.oauth_client_id)
        self._record: TokenRecord | None = None
        self._loaded = False
        #: The store's `version` in which no record was found (None: unknown, look again).
        self._absent_in: tuple[int, int] | None = None

    def current(self) -> TokenRecord | None:
        """The record to use now: the one in memory while fresh, else what the store holds."""
        if self._record is not None and self._record.is_fresh():
            return self._record
        version = self.store.version()
        if self._loaded and self._record is None:
            # Nothing was stored: look again only once the store changed (not a file read per request).
            if version is not None and version == self._absent_in:
                return None
            if self.store.summary(self.key) is None:
                self._absent_in = version
                return None
        self._record = self.store.load(self.key)
        self._loaded = True
        self._absent_in = version if self._record is None else None
        return self._record

    async def async_auth_flow(
        self, request: httpx2.Request
    ) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        record = self.current()
        if record is not None and not record.is_fresh() and record.refresh_token:
            record = await self._obtain(Trigger.of(request, None), "expired", record.access_token)
        token = record.access_token if record is not None and record.is_fresh() else None
        if token:
            keep_secret(token)
            request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        reason = self._reason(response)
        if reason is None:
            return
        await response.aread()
        if reason == "unauthorized" and self.profile.auth == "auto" and token is None:
            # `auth: auto` signs in only where the server says it is an OAuth protected resource (RFC 9728
            # metadata, named by the challenge or at a well-known URL); any other 401 is the server's answer.
            challenge = response.headers.get("www-authenticate", "")
            if not has_resource_metadata(challenge) and not await publishes_resource_metadata(
                self.profile, str(request.url)
            ):
                return
        record = await self._obtain(Trigger.of(request, response), reason, token)
        assert record.access_token is not None
        request.headers["Authorization"] = f"Bearer {record.access_token}"
        yield request

    def _reason(self, response: httpx2.Response) -> Reason | None:
        challenge = response.headers.get("www-authenticate", "")
        if response.status_code == 401:
            # auto: only a Bearer challenge means OAuth (the spec requires one since 2025-06-18); a bare 401
            # is as likely an API key that is missing. `auth: oauth` signs in on any 401.
            if self.profile.auth == "oauth" or challenge.lower().startswith("bearer"):
                return "unauthorized"
            return None
        if response.status_code == 403 and "insufficient_scope" in challenge:
            return "step-up"
        return None

    async def _obtain(self, trigger: Trigger, reason: Reason, used_token: str | None) -> TokenRecord:
        job = join_or_start(
            Job(
                self.profile,
                self.store,
                self.key,
                self.resource,
                trigger,
                reason,
                used_token,
                self.interactive,
                prompt=elicit.installed() if self.interactive else None,
            )
        )
        wait = self.profile.oauth_signin_wait
        finished = await anyio.to_thread.run_sync(job.done.wait, wait, abandon_on_cancel=True)
        status = trigger.status or 401
        answer = {"status": status, "challenge": trigger.challenge}
        said = f"HTTP {status} from {trigger.method} {display(trigger.url)}: " if trigger.status else ""
        if not finished:
            raise SignInPending(said + pending_message(self.profile, job.sign_in_url, wait), **answer)
        if job.error is not None:
            if isinstance(job.error, SignInError):
                raise SignInError(said + job.error.reason, **answer) from None
            log.debug("sign-in failed", exc_info=job.error)
            raise SignInError(said + failure_message(self.profile, job.error), **answer) from None
        assert job.record is not None and job.record.access_token
        self._record = job.record
        return job.record


def has_resource_metadata(challenge: str) -> bool:
    """Whether a `WWW-Authenticate` value is a Bearer challenge naming RFC 9728 metadata."""
    return challenge.lower().lstrip().startswith("bearer") and "resource_metadata=" in challenge.lower()


def protected_resource_urls(resource: str) -> list[str]:
    """RFC 9728 well-known URLs in the spec's order: path-aware first, then the origin's root."""
    url = httpx2.URL(resource)
    root = str(url.copy_with(path="/.well-known/oauth-protected-resource", query=None, fragment=None))
    path = url.path.rstrip("/")
    if not path:
        return [root]
    return [root + path, root]


async def publishes_resource_metadata(profile: Profile, resource: str) -> bool:
    """Whether a well-known RFC 9728 URL of `resource` serves metadata (own short-lived client: an auth flow
    cannot send a request of its own without its answer replacing the one the caller gets)."""
    from ..httpclient import build_client

    bound = httpx2.Timeout(profile.read_timeout, connect=profile.connect_timeout)
    async with build_client(profile, sign_in="off") as client:
        for url in protected_resource_urls(resource):
            try:
                async with client.stream(
                    "GET", url, headers={"Accept": "application/json"}, timeout=bound
                ) as probe:
                    if await is_resource_metadata(probe):
                        return True
            except httpx2.HTTPError:
                continue
    return False


#: Largest Protected Resource Metadata document read while probing (real ones are a few hundred bytes).
PRM_LIMIT = 256 * 1024


async def is_resource_metadata(response: httpx2.Response) -> bool:
    """A 200 JSON object naming at least one authorization server (anything else is not read at all)."""
    kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if response.status_code != 200 or not (kind == "application/json" or kind.endswith("+json")):
        return False
    body = bytearray()
    try:
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > PRM_LIMIT:
                return False
        document = json.loads(body)
    except (httpx2.HTTPError, ValueError, RecursionError):
        return False
    return isinstance(document, dict) and bool(document.get("authorization_servers"))


def login_hint(profile: Profile) -> str:
    selection = f" --profile {profile.name}" if profile.name != "default" else ""
    return f"`mcp-sse-proxy --login{selection}`"


def pending_message(profile: Profile, url: str | None, wait: float) -> str:
    where = (
        f"open {url} to sign in" if url else "a sign-in is waiting for another mcp-sse-proxy or the browser"
    )
    return (
        f"sign-in to {display(profile.url)} needed and not finished within {wait:g} s: {where}, then retry "
        f"(the proxy keeps waiting for it); or run {login_hint(profile)} in a terminal"
    )


def failure_message(profile: Profile, error: BaseException, trigger: Trigger | None = None) -> str:
    text = str(error) or type(error).__name__
    answered = ""
    if trigger is not None and trigger.status is not None:
        answered = f" (the server answered HTTP {trigger.status}"
        answered += f", WWW-Authenticate: {trigger.challenge})" if trigger.challenge else ")"
    return (
        f"sign-in to {display(profile.url)} failed{answered}: {text}; run {login_hint(profile)} in a terminal "
        "to retry"
    )
