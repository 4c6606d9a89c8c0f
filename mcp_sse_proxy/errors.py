"""The proxy's small error hierarchy; messages are written for the person reading them."""

from __future__ import annotations


class ProxyError(Exception):
    """Base of every error the proxy raises on purpose."""


class UpstreamError(ProxyError):
    """Talking to the remote server failed. `status` is the HTTP status when there was one."""

    def __init__(self, reason: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry_after = retry_after


class UpstreamUnavailable(UpstreamError):
    """No connection could be made (refused, DNS, TLS, connect timeout)."""


class UpstreamHTTPError(UpstreamError):
    """The server answered with an HTTP error status."""

    def __init__(
        self,
        reason: str,
        *,
        status: int,
        challenge: str | None = None,
        retry_after: float | None = None,
        body: bytes = b"",
    ) -> None:
        super().__init__(reason, status=status, retry_after=retry_after)
        self.challenge = challenge
        self.body = body


class SessionExpired(UpstreamError):
    """The server no longer knows our session (HTTP 404 with a session id): the request was not processed."""


class StreamLost(UpstreamError):
    """A response stream ended before the response and cannot be resumed."""


class SessionLost(UpstreamError):
    """The upstream session ended (legacy SSE stream closed, session replaced)."""


class EndpointRefused(UpstreamError):
    """A legacy SSE server announced a message endpoint on another origin."""


class RedirectRefused(UpstreamError):
    """The server redirected a request where the redirect policy does not let our headers and body go."""


class TransportMismatch(UpstreamError):
    """The URL does not speak the transport tried (used by auto-detection to try the next one)."""


class NoReply(UpstreamError):
    """A request the proxy made on its own (a replayed handshake, a keepalive ping, a bridge's request or
    question) got no reply within its bound."""


def describe(exc: UpstreamError) -> str:
    """How a failure reads in a log line or an error answer (with the server's sign-in challenge, if any)."""
    reason = exc.reason
    if isinstance(exc, UpstreamHTTPError) and exc.challenge:
        reason += f" (WWW-Authenticate: {exc.challenge})"
    return reason
