"""Sign-in errors: upstream errors whose message tells the user what to do next."""

from __future__ import annotations

from ..errors import UpstreamHTTPError


class SignInError(UpstreamHTTPError):
    """Signing in to the server failed or could not finish; `reason` says why and what to do.

    An HTTP error of the request that needed the sign-in: `status` and `challenge` are the server's answer
    to it (401 when the token had expired before anything was sent)."""

    def __init__(self, reason: str, *, status: int = 401, challenge: str | None = None) -> None:
        super().__init__(reason, status=status, challenge=challenge)


class SignInPending(SignInError):
    """The sign-in did not finish within the wait a request is given; it goes on in the background."""
