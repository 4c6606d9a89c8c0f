"""What the two eras' specifications name: versions, `_meta` keys, error codes, method sets, and readers.

Handshake era: 2024-11-05 … 2025-11-25 (`initialize`, sessions). Modern era: 2026-07-28 (no handshake;
version, capabilities and client info in every request's `_meta`; `server/discover`; MRTR instead of
server→client requests). Sources: basic/versioning.mdx, basic/index.mdx, server/discover.mdx,
basic/patterns/mrtr.mdx, basic/patterns/subscriptions.mdx, server/utilities/caching.mdx (2026-07-28).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

Era = Literal["modern", "handshake"]

MODERN_VERSIONS: tuple[str, ...] = ("2026-07-28",)
"""Modern protocol versions the proxy speaks, oldest first."""
HANDSHAKE_VERSIONS: tuple[str, ...] = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
"""Handshake-era protocol versions the proxy speaks, oldest first."""
LATEST_MODERN_VERSION = MODERN_VERSIONS[-1]
LATEST_HANDSHAKE_VERSION = HANDSHAKE_VERSIONS[-1]

# `_meta` keys (2026-07-28/basic/index.mdx § _meta).
PROTOCOL_VERSION_KEY = "io.modelcontextprotocol/protocolVersion"
CLIENT_CAPABILITIES_KEY = "io.modelcontextprotocol/clientCapabilities"
CLIENT_INFO_KEY = "io.modelcontextprotocol/clientInfo"
LOG_LEVEL_KEY = "io.modelcontextprotocol/logLevel"
SERVER_INFO_KEY = "io.modelcontextprotocol/serverInfo"
SUBSCRIPTION_ID_KEY = "io.modelcontextprotocol/subscriptionId"
REQUEST_META_KEYS: frozenset[str] = frozenset(
    {PROTOCOL_VERSION_KEY, CLIENT_CAPABILITIES_KEY, CLIENT_INFO_KEY, LOG_LEVEL_KEY}
)
"""The per-request envelope keys; other `io.modelcontextprotocol/*` keys belong to extensions."""

# Error codes (2026-07-28/basic/index.mdx § Error Codes).
HEADER_MISMATCH = -32020
MISSING_REQUIRED_CLIENT_CAPABILITY = -32021
UNSUPPORTED_PROTOCOL_VERSION = -32022
MODERN_ERROR_CODES: frozenset[int] = frozenset(
    {HEADER_MISMATCH, MISSING_REQUIRED_CLIENT_CAPABILITY, UNSUPPORTED_PROTOCOL_VERSION}
)
LEGACY_RESOURCE_NOT_FOUND = -32002
"""Resource not found up to 2025-11-25; 2026-07-28 says -32602 and forbids emitting it."""
MCP_RESERVED_ERROR_RANGE = range(-32099, -32019)
"""-32099 … -32020: codes only the MCP specification defines (-32042, URL elicitation required, is 2025-11-25
only: 2026-07-28 forbids emitting it)."""

MAX_INPUT_ROUNDS = 10
"""Bound on `input_required` rounds for one client request (the SDKs' default)."""

MRTR_METHODS: frozenset[str] = frozenset({"tools/call", "prompts/get", "resources/read"})
"""The only requests a server may answer with `input_required`."""
CACHEABLE_METHODS: frozenset[str] = frozenset(
    {
        "server/discover",
        "tools/list",
        "prompts/list",
        "resources/list",
        "resources/templates/list",
        "resources/read",
    }
)
"""Methods whose `complete` results carry `ttlMs` and `cacheScope` (server/utilities/caching.mdx)."""
REISSUABLE_METHODS: frozenset[str] = CACHEABLE_METHODS | {"prompts/get", "completion/complete"}
"""Requests without side effects, safe to send again under a new id when a response stream breaks."""

CAPABILITY_BY_INPUT_METHOD: Mapping[str, str] = {
    "sampling/createMessage": "sampling",
    "elicitation/create": "elicitation",
    "roots/list": "roots",
}

LOG_LEVELS: tuple[str, ...] = (
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
)
"""Syslog severities, least severe first (server/utilities/logging.mdx)."""

UNKNOWN_IMPLEMENTATION: Mapping[str, str] = {"name": "unknown", "version": "unknown"}


def as_dict(value: Any) -> dict[str, Any]:
    """`value` if it is a JSON object, else `{}` (for reading untrusted messages)."""
    return value if isinstance(value, dict) else {}


def request_meta(params: Any) -> dict[str, Any]:
    """The `_meta` object of a request's params, or `{}` when there is none."""
    return as_dict(as_dict(params).get("_meta"))


def result_type(result: Any) -> str:
    """A result's `resultType`, with an absent one read as `complete` (basic/index.mdx)."""
    value = as_dict(result).get("resultType")
    return value if isinstance(value, str) else "complete"


def is_modern_error(error: Any) -> bool:
    """Whether a JSON-RPC error object carries one of the codes only a modern server sends."""
    code = as_dict(error).get("code")
    return isinstance(code, int) and not isinstance(code, bool) and code in MODERN_ERROR_CODES


def capability_for_input_request(method: str) -> str | None:
    """The client capability a server→client request needs (`sampling`, `elicitation`, `roots`), if known."""
    return CAPABILITY_BY_INPUT_METHOD.get(method)
