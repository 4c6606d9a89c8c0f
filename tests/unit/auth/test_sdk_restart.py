"""Why the store keeps discovery metadata: the SDK provider alone refreshes at the wrong place after a restart."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from mcp.client.auth import OAuthClientProvider
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

from mcp_sse_proxy.auth.bearer import Job, Trigger
from mcp_sse_proxy.auth.provider import prepare
from mcp_sse_proxy.auth.record import TokenRecord
from mcp_sse_proxy.auth.store import TokenStore
from mcp_sse_proxy.config.model import Profile

MCP_URL = "http://mcp.test:8000/mcp"
TOKEN_ENDPOINT = "http://as.test:9000/oauth/token"

pytestmark = pytest.mark.anyio


class _RestartedStorage:
    """What an SDK `TokenStorage` holds after a restart: the tokens and the client, nothing else."""

    async def get_tokens(self) -> OAuthToken:
        return OAuthToken(access_token="old", refresh_token="refresh", expires_in=1)

    async def set_tokens(self, tokens: OAuthToken) -> None: ...

    async def get_client_info(self) -> OAuthClientInformationFull:
        return OAuthClientInformationFull(client_id="c", redirect_uris=["http://127.0.0.1:1/callback"])

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None: ...


async def test_the_sdk_provider_alone_refreshes_at_the_mcp_servers_origin() -> None:
    provider = OAuthClientProvider(
        MCP_URL,
        OAuthClientMetadata(redirect_uris=["http://127.0.0.1:1/callback"]),
        _RestartedStorage(),
    )
    await provider._initialize()
    assert provider.context.is_token_valid(), "the SDK does not know the stored token expired"
    request = await provider._refresh_token()
    assert str(request.url) == "http://mcp.test:8000/token"


async def test_our_provider_refreshes_at_the_stored_token_endpoint(tmp_path: Path) -> None:
    record = TokenRecord(
        "k",
        MCP_URL,
        issuer="http://as.test:9000/oauth",
        client_id="c",
        access_token="old",
        refresh_token="refresh",
        expires_at=time.time() - 10,
        client_info={"client_id": "c", "redirect_uris": ["http://127.0.0.1:1/callback"]},
        oauth_metadata={
            "issuer": "http://as.test:9000/oauth",
            "authorization_endpoint": "http://as.test:9000/oauth/authorize",
            "token_endpoint": TOKEN_ENDPOINT,
        },
    )
    profile = Profile(name="p", url=MCP_URL)
    job = Job(
        profile, TokenStore(tmp_path), "k", MCP_URL, Trigger("POST", MCP_URL, ()), "expired", "old", False
    )
    provider, _ = prepare(job, record, redirect_uris=["http://127.0.0.1:1/callback"])
    assert not provider.context.is_token_valid()
    request = await provider._refresh_token()
    assert str(request.url) == TOKEN_ENDPOINT
