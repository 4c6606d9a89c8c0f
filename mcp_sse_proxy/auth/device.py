"""The OAuth 2.0 device authorization grant (RFC 8628), which the official SDK's client lacks.

`DevicePoll` holds the polling rules as pure state (answers and the clock in, waits or the token out);
`device_sign_in` is the thin I/O around it: request a device code, show the user where to approve it, poll the
token endpoint. Neither puts the device code, the client secret or a token in an error message.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import httpx2

from ..errors import UpstreamError

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEFAULT_INTERVAL = 5.0  # RFC 8628 §3.2: when the server names none
MIN_INTERVAL = 1.0
SLOW_DOWN_STEP = 5.0  # RFC 8628 §3.5: each slow_down adds 5 s, for this poll and every later one
MAX_INTERVAL = 60.0
MAX_BODY_CHARS = 200  # of an unexpected answer, in an error message


class DeviceGrantError(UpstreamError):
    """The device sign-in failed; `error` is the OAuth error code (`access_denied`, `expired_token`, ...)."""

    def __init__(self, reason: str, *, error: str, status: int | None = None) -> None:
        super().__init__(reason, status=status)
        self.error = error


@dataclass(frozen=True)
class DeviceAuthorization:
    """The device authorization response (RFC 8628 §3.2). `device_code` is a secret: never log it."""

    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_in: float
    interval: float | None

    @classmethod
    def from_response(cls, body: object) -> DeviceAuthorization:
        if not isinstance(body, Mapping):
            raise DeviceGrantError(
                "the device authorization answer is not a JSON object", error="invalid_response"
            )
        missing = [name for name in ("device_code", "user_code", "verification_uri") if not _text(body, name)]
        expires_in = _number(body, "expires_in")
        if missing or expires_in is None or expires_in <= 0:
            names = ", ".join(missing or ["expires_in"])
            raise DeviceGrantError(f"the device authorization answer lacks {names}", error="invalid_response")
        return cls(
            device_code=_text(body, "device_code") or "",
            user_code=_text(body, "user_code") or "",
            verification_uri=_text(body, "verification_uri") or "",
            verification_uri_complete=_text(body, "verification_uri_complete"),
            expires_in=expires_in,
            interval=_number(body, "interval"),
        )


@dataclass(frozen=True)
class Wait:
    """Poll the token endpoint again after `seconds`."""

    seconds: float


@dataclass(frozen=True)
class Granted:
    """The token endpoint issued tokens: `token` is its JSON answer (RFC 6749 §5.1)."""

    token: dict[str, Any]


class DevicePoll:
    """When to poll and what an answer means (RFC 8628 §3.4-3.5), bounded by the code's lifetime and `timeout`.

    Times are seconds on the caller's monotonic clock. Each method returns the next `Wait`, or `Granted`, or
    raises `DeviceGrantError` (denied, expired, any other error, or out of time)."""

    def __init__(self, *, interval: float | None, expires_in: float, timeout: float, now: float) -> None:
        self.interval = min(max(interval or DEFAULT_INTERVAL, MIN_INTERVAL), MAX_INTERVAL)
        self._expires_at = now + expires_in
        self._deadline = now + min(expires_in, timeout)
        self._timeout = timeout
        self.polls = 0

    def start(self, now: float) -> Wait:
        """The wait before the first poll: a user cannot have approved yet."""
        return self._next(now)

    def on_answer(self, status: int, body: object, now: float) -> Wait | Granted:
        """The token endpoint answered `status` with JSON `body` (None when it was not JSON)."""
        self.polls += 1
        if status == 200 and isinstance(body, Mapping) and _text(body, "access_token"):
            return Granted(dict(body))
        error = _text(body, "error") if isinstance(body, Mapping) else None
        if error == "authorization_pending":
            return self._next(now)
        if error == "slow_down":
            self.interval = min(self.interval + SLOW_DOWN_STEP, MAX_INTERVAL)
            return self._next(now)
        raise _answer_error(status, body, error)

    def on_transport_error(self, now: float) -> Wait:
        """The poll got no answer (connection refused, timeout): back off exponentially (RFC 8628 §3.5)."""
        self.polls += 1
        self.interval = min(self.interval * 2, MAX_INTERVAL)
        return self._next(now)

    def _next(self, now: float) -> Wait:
        if now + self.interval > self._deadline:
            if self._deadline < self._expires_at:
                reason = f"the device sign-in was not approved within {self._timeout:g} s"
                raise DeviceGrantError(reason, error="timeout")
            raise DeviceGrantError(
                "the device code expired before the sign-in was approved; start again", error="expired_token"
            )
        return Wait(self.interval)


def _answer_error(status: int, body: object, error: str | None) -> DeviceGrantError:
    if error == "access_denied":
        return DeviceGrantError(
            "the sign-in was denied at the authorization server", error=error, status=status
        )
    if error == "expired_token":
        reason = "the device code expired before the sign-in was approved; start again"
        return DeviceGrantError(reason, error=error, status=status)
    if error is not None:
        description = _text(body, "error_description") if isinstance(body, Mapping) else None
        detail = f" ({description[:MAX_BODY_CHARS]})" if description else ""
        return DeviceGrantError(
            f"the token endpoint refused the device code: {error}{detail}", error=error, status=status
        )
    return DeviceGrantError(
        f"the token endpoint answered HTTP {status} without an OAuth error",
        error="invalid_response",
        status=status,
    )


def _text(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    return value if isinstance(value, str) and value else None


def _number(body: Mapping[str, Any], name: str) -> float | None:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _client_auth(
    data: dict[str, str], client_id: str, client_secret: str | None, auth_method: str
) -> httpx2.BasicAuth | None:
    """RFC 6749 §2.3.1: the secret in an Authorization header (basic) or the body (post); public clients name
    themselves in the body."""
    if client_secret is not None and auth_method == "client_secret_basic":
        return httpx2.BasicAuth(client_id, client_secret)
    data["client_id"] = client_id
    if client_secret is not None:
        data["client_secret"] = client_secret
    return None


async def _post_json(
    client: httpx2.AsyncClient, url: str, data: dict[str, str], auth: httpx2.BasicAuth | None
) -> tuple[int, object]:
    kwargs: dict[str, Any] = {"data": data, "headers": {"Accept": "application/json"}}
    if auth is not None:
        kwargs["auth"] = auth
    response = await client.post(url, **kwargs)
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, None


async def device_sign_in(
    client: httpx2.AsyncClient,
    *,
    device_endpoint: str,
    token_endpoint: str,
    client_id: str,
    client_secret: str | None = None,
    scopes: list[str] | None = None,
    resource: str | None = None,
    show: Callable[[str, str | None, str], None],
    timeout: float,
    auth_method: str = "client_secret_basic",
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
) -> dict[str, Any]:
    """Sign in with the device grant; returns the token endpoint's JSON answer (access_token, expires_in, ...).

    `show(verification_uri, verification_uri_complete, user_code)` tells the user where to approve. `resource`
    (RFC 8707) goes with both requests. `auth_method` applies when `client_secret` is set
    (`client_secret_basic` or `client_secret_post`). Gives up after `timeout` seconds or when the code expires,
    whichever is first. Raises `DeviceGrantError`; transport errors of the first request propagate."""
    request: dict[str, str] = {}
    if scopes:
        request["scope"] = " ".join(scopes)
    if resource is not None:
        request["resource"] = resource
    auth = _client_auth(request, client_id, client_secret, auth_method)
    status, body = await _post_json(client, device_endpoint, request, auth)
    if status != 200:
        raise _answer_error(status, body, _text(body, "error") if isinstance(body, Mapping) else None)
    authorization = DeviceAuthorization.from_response(body)
    show(authorization.verification_uri, authorization.verification_uri_complete, authorization.user_code)

    poll = DevicePoll(
        interval=authorization.interval, expires_in=authorization.expires_in, timeout=timeout, now=clock()
    )
    token_request = {"grant_type": DEVICE_CODE_GRANT, "device_code": authorization.device_code}
    if resource is not None:
        token_request["resource"] = resource
    auth = _client_auth(token_request, client_id, client_secret, auth_method)
    action: Wait | Granted = poll.start(clock())
    while isinstance(action, Wait):  # bounded: every Wait moves toward the deadline, past which poll raises
        await sleep(action.seconds)
        try:
            status, body = await _post_json(client, token_endpoint, token_request, auth)
        except httpx2.TransportError:
            action = poll.on_transport_error(clock())
            continue
        action = poll.on_answer(status, body, clock())
    return action.token
