"""Sign-in errors: upstream errors whose message tells the user what to do next."""

from __future__ import annotations

from ..errors import UpstreamError


class SignInError(UpstreamError):
    """Signing in to the server failed or could not finish; `reason` says why and what to do."""


class SignInPending(SignInError):
    """The sign-in did not finish within the wait a request is given; it goes on in the background."""
