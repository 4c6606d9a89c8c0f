"""Era bridges: protocol adapters between a client of one MCP era and a server of the other.

Each is an `Upstream` to the relay, one module per direction: `handshake_client` (`HandshakeToModern`, a
handshake-era client in front of a 2026-07-28-only server) and `modern_client` (`ModernToHandshake`, a
2026-07-28 client in front of a legacy SSE or 2025 Streamable HTTP server). The rules and the state they
keep are pure code in `mcp_sse_proxy.protocol.eras`; these modules only move messages.
"""

from __future__ import annotations

from .handshake_client import HandshakeToModern
from .modern_client import ModernToHandshake

__all__ = ["HandshakeToModern", "ModernToHandshake"]
