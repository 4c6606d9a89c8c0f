"""What the store keeps for one sign-in: tokens, the registered client and what discovery found.

Keeping the authorization server's metadata with the tokens is what lets a restarted proxy refresh an
expired token at the right token endpoint (the SDK's provider on its own forgets it and refreshes at the
MCP server's origin). The public part (`summary`) holds no secret and is what `--auth-status` shows.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from ..redaction import register_secret


def keep_secret(value: str | None, *, lasting: bool = False) -> None:
    """Hand a token, code or client secret to the redaction step (None and "" are ignored)."""
    if value:
        register_secret(value, lasting=lasting)


#: A token this close to its expiry counts as expired: refreshed before use, not after a 401.
EXPIRY_SKEW = 30.0


@dataclass(slots=True)
class TokenRecord:
    """One sign-in (resource + client) and its current tokens."""

    key: str
    resource: str
    issuer: str | None = None
    client_id: str | None = None
    access_token: str | None = None
    refresh_token: str | None = None
    token_type: str = "Bearer"
    scope: str | None = None
    #: Absolute expiry (epoch seconds), None when the server gave no lifetime.
    expires_at: float | None = None
    #: RFC 7591 client information (may hold a client secret), as JSON.
    client_info: dict[str, Any] | None = None
    #: RFC 8414 / OIDC metadata of the authorization server, and the RFC 9728 metadata of the resource.
    oauth_metadata: dict[str, Any] | None = None
    resource_metadata: dict[str, Any] | None = None
    #: The last `WWW-Authenticate` challenge, so a sign-in can start again without a new request.
    challenge: str | None = None
    updated_at: float = field(default_factory=time.time)

    def is_fresh(self, now: float | None = None) -> bool:
        """Whether the access token can be sent as it is."""
        if not self.access_token:
            return False
        if self.expires_at is None:
            return True
        # Short-lived tokens get a skew in proportion: a 60 s token is not "expired" the moment it arrives.
        skew = min(EXPIRY_SKEW, max(0.0, self.expires_at - self.updated_at) / 4)
        return (time.time() if now is None else now) < self.expires_at - skew

    def secrets(self) -> list[str]:
        """Every value in the record that must never be shown."""
        values = [self.access_token, self.refresh_token]
        if self.client_info:
            values.append(self.client_info.get("client_secret"))
        return [v for v in values if isinstance(v, str) and v]

    def summary(self) -> dict[str, Any]:
        """The record without secrets: for the store's index and `--auth-status`."""
        return {
            "key": self.key,
            "resource": self.resource,
            "issuer": self.issuer,
            "client_id": self.client_id,
            "scope": self.scope,
            "expires_at": self.expires_at,
            "has_access_token": bool(self.access_token),
            "has_refresh_token": bool(self.refresh_token),
            "token_endpoint": (self.oauth_metadata or {}).get("token_endpoint"),
            "updated_at": self.updated_at,
        }

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TokenRecord:
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        return cls(**known)
