"""OAuth sign-in to remote MCP servers (the MCP authorization spec, 2025-06-18 to 2026-07-28).

Layers, cheapest first: `auth_for(profile)` decides whether a profile signs in at all (no import beyond
this package); `bearer.OAuthAuth` is the `httpx2.Auth` on the relay's client, which attaches a stored
unexpired token; only a 401, an expired token or a step-up loads `signin` and with it the official SDK's
`OAuthClientProvider` (discovery, issuer checks, registration, PKCE, resource, refresh), which runs in a
session thread of its own under a cross-process lock, so several instances sign in once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..config.model import Profile

if TYPE_CHECKING:
    from .bearer import OAuthAuth


def uses_oauth(profile: Profile) -> bool:
    """False for `auth: none` and when a static Authorization header is configured (it wins)."""
    if profile.auth == "none":
        return False
    return not any(name.lower() == "authorization" for name in profile.headers)


def sends_oauth_credentials(profile: Profile) -> bool:
    """Whether OAuth secrets go upstream for `profile`: a configured client secret, or a stored sign-in."""
    if not uses_oauth(profile):
        return False
    if profile.oauth_client_secret or profile.oauth_client_secret_file is not None:
        return True
    from .keys import canonical_resource, store_key
    from .store import TokenStore

    key = store_key(canonical_resource(profile.url), profile.oauth_client_id)
    return TokenStore(preference=profile.oauth_store).summary(key) is not None


def auth_for(profile: Profile, *, interactive: bool = True) -> OAuthAuth | None:
    """The sign-in `httpx2.Auth` for `profile`'s client, or None when the profile does not sign in."""
    if not uses_oauth(profile):
        return None
    from .bearer import OAuthAuth

    return OAuthAuth(profile, interactive=interactive)
