"""Fixtures of the sign-in tests: `oidc_stack` (oidc-provider + an SDK MCP server, tests/oauth/oidc_peer.py)."""

from tests.oauth.oidc_peer import oidc_stack  # noqa: F401 - a fixture, offered to every test here
