"""The Client ID Metadata Document setting in its three forms, and its rule (an https URL with a path)."""

from __future__ import annotations

import pytest

from mcp_sse_proxy.cli import parse_flags
from mcp_sse_proxy.config import ConfigError
from mcp_sse_proxy.config.schema import settings

from .helpers import URL, load

CIMD = "https://example.com/mcp-sse-proxy/client.json"


def test_flag_env_and_yaml_set_the_metadata_document_url() -> None:
    _, flags = parse_flags(["--sse-url", URL, "--oauth-client-metadata-url", CIMD])
    profile = load(flags).profiles[0]
    assert profile.oauth_client_metadata_url == CIMD
    assert profile.sources["oauth_client_metadata_url"] == "flag --oauth-client-metadata-url"

    env = {"ST_PROXY_SSE_URL": URL, "ST_PROXY_OAUTH_CLIENT_METADATA_URL": CIMD}
    assert load(environ=env).profiles[0].oauth_client_metadata_url == CIMD

    yaml = f"profiles:\n  default:\n    url: {URL}\n    oauth_client_metadata_url: {CIMD}\n"
    assert load(files={"servers.yaml": yaml}).profiles[0].oauth_client_metadata_url == CIMD


def test_unset_by_default() -> None:
    _, flags = parse_flags(["--sse-url", URL])
    assert load(flags).profiles[0].oauth_client_metadata_url is None
    assert settings()["oauth_client_metadata_url"].scope == "profile"


@pytest.mark.parametrize(
    "value", ["http://example.com/client.json", "https://example.com", "https://example.com/", "client.json"]
)
def test_only_an_https_url_with_a_path_is_accepted(value: str) -> None:
    _, flags = parse_flags(["--sse-url", URL, "--oauth-client-metadata-url", value])
    with pytest.raises(ConfigError, match="oauth_client_metadata_url.*https:// URL with a path"):
        load(flags)
