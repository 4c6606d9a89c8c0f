"""Era detection: per stdio request, from the HTTP `server/discover` probe, and the modern request checks."""

from __future__ import annotations

from typing import Any

import pytest

from mcp_sse_proxy.protocol import messages
from mcp_sse_proxy.protocol.eras import (
    CLIENT_CAPABILITIES_KEY,
    HANDSHAKE_VERSIONS,
    MODERN_VERSIONS,
    PROTOCOL_VERSION_KEY,
    modern_request_error,
    probe_verdict,
    request_era,
    unsupported_version_error,
)

META = {PROTOCOL_VERSION_KEY: "2026-07-28", CLIENT_CAPABILITIES_KEY: {}}


def test_versions() -> None:
    assert MODERN_VERSIONS == ("2026-07-28",)
    assert HANDSHAKE_VERSIONS == ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")


@pytest.mark.parametrize(
    ("body", "era"),
    [
        ({"method": "server/discover", "params": {"_meta": META}}, "modern"),
        ({"method": "tools/call", "params": {"_meta": {PROTOCOL_VERSION_KEY: "1900-01-01"}}}, "modern"),
        ({"method": "initialize", "params": {"protocolVersion": "2025-06-18"}}, "handshake"),
        ({"method": "tools/list"}, None),
        ({"method": "tools/list", "params": {"_meta": {"progressToken": 1}}}, None),
        ({"method": "tools/list", "params": {"_meta": "junk"}}, None),
        ({"method": "ping", "params": None}, None),
    ],
)
def test_request_era(body: dict[str, Any], era: str | None) -> None:
    message = messages.from_obj({"jsonrpc": "2.0", "id": 1, **body})
    assert request_era(message) == era
    assert request_era(message.body) == era


def error(code: int, data: Any = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": "x"}
    if data is not None:
        err["data"] = data
    return {"jsonrpc": "2.0", "id": 1, "error": err}


def discover(versions: Any) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": 1,
        "result": {"resultType": "complete", "supportedVersions": versions, "capabilities": {}},
    }


PROBE_CASES: list[tuple[str, int | None, Any, str]] = [
    # Checklist 58: a recognised modern error or result means modern.
    ("DiscoverResult with our version", 200, discover(["2026-07-28"]), "modern"),
    ("DiscoverResult with ours and legacy", 200, discover(["2025-11-25", "2026-07-28"]), "modern"),
    ("HeaderMismatch", 400, error(-32020), "modern"),
    ("MissingRequiredClientCapability", 400, error(-32021, {"requiredCapabilities": {}}), "modern"),
    ("UnsupportedProtocolVersion, modern only", 400, error(-32022, {"supported": ["2027-01-01"]}), "modern"),
    ("UnsupportedProtocolVersion, malformed data", 400, error(-32022, "junk"), "modern"),
    ("UnsupportedProtocolVersion, no data", 400, error(-32022), "modern"),
    ("UnsupportedProtocolVersion naming ours", 400, error(-32022, {"supported": ["2026-07-28"]}), "modern"),
    ("modern error on a 200 stream", 200, error(-32022, {"supported": ["2027-01-01"]}), "modern"),
    ("404 with -32601", 404, error(-32601), "modern"),
    # -32022 from a dual-era server that lacks our modern version: initialize is the way in (as the SDK does).
    (
        "UnsupportedProtocolVersion, legacy listed",
        400,
        error(-32022, {"supported": ["2025-11-25"]}),
        "handshake",
    ),
    # Checklist 59: anything else means legacy.
    ("DiscoverResult listing only legacy versions", 200, discover(["2025-06-18", "2025-11-25"]), "handshake"),
    ("DiscoverResult listing only unknown versions", 200, discover(["2027-01-01"]), "handshake"),
    ("DiscoverResult without versions", 200, {"jsonrpc": "2.0", "id": 1, "result": {}}, "handshake"),
    ("DiscoverResult with junk versions", 200, discover("2026-07-28"), "handshake"),
    ("result that is not an object", 200, {"jsonrpc": "2.0", "id": 1, "result": 3}, "handshake"),
    ("200 with -32601", 200, error(-32601), "handshake"),
    ("200 with -32602 (ambiguous alone)", 200, error(-32602), "handshake"),
    ("200 with -32600", 200, error(-32600), "handshake"),
    ("200 with a legacy -32000", 200, error(-32000), "handshake"),
    ("200 without a response", 200, None, "handshake"),
    ("202 without a body", 202, None, "handshake"),
    ("400 missing session id", 400, error(-32600), "handshake"),
    ("400 with -32602", 400, error(-32602), "handshake"),
    ("400 without a body", 400, None, "handshake"),
    ("404 without a body", 404, None, "handshake"),
    ("404 with another error", 404, error(-32600), "handshake"),
    ("405 (legacy SSE endpoint)", 405, None, "handshake"),
    ("405 with -32601", 405, error(-32601), "handshake"),
    ("406", 406, None, "handshake"),
    ("415", 415, None, "handshake"),
    # Network errors and statuses that say nothing about the era give no verdict.
    ("network error", None, None, "unknown"),
    ("401 needs authorization first", 401, None, "unknown"),
    ("403", 403, None, "unknown"),
    ("407", 407, None, "unknown"),
    ("408", 408, None, "unknown"),
    ("429", 429, None, "unknown"),
    ("500", 500, error(-32603), "unknown"),
    ("502", 502, None, "unknown"),
    ("503", 503, None, "unknown"),
]


@pytest.mark.parametrize(("case", "status", "body", "verdict"), PROBE_CASES, ids=[c[0] for c in PROBE_CASES])
def test_probe_verdict(case: str, status: int | None, body: Any, verdict: str) -> None:
    assert probe_verdict(status, body) == verdict


def request(params: Any) -> messages.Message:
    return messages.request(7, "tools/list", params)


def test_modern_request_checks() -> None:
    assert modern_request_error(request({"_meta": META})) is None

    missing = modern_request_error(request({"_meta": {PROTOCOL_VERSION_KEY: "2026-07-28"}}))
    assert missing is not None and missing.id == 7
    assert missing.body["error"]["code"] == -32602
    assert CLIENT_CAPABILITIES_KEY in missing.body["error"]["message"]

    not_a_string = modern_request_error(request({"_meta": {**META, PROTOCOL_VERSION_KEY: 20260728}}))
    assert not_a_string is not None and not_a_string.body["error"]["code"] == -32602

    unsupported = modern_request_error(request({"_meta": {**META, PROTOCOL_VERSION_KEY: "1900-01-01"}}))
    assert unsupported is not None
    assert unsupported.body["error"]["code"] == -32022
    assert unsupported.body["error"]["data"]["requested"] == "1900-01-01"


def test_unsupported_version_error() -> None:
    message = unsupported_version_error("a", "1900-01-01")
    assert message.kind is messages.Kind.RESPONSE and message.id == "a"
    assert message.body["error"]["code"] == -32022
    assert message.body["error"]["data"] == {
        "supported": ["2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"],
        "requested": "1900-01-01",
    }
    narrow = unsupported_version_error(1, "2025-11-25", supported=["2026-07-28"])
    assert narrow.body["error"]["data"] == {"supported": ["2026-07-28"], "requested": "2025-11-25"}


def test_the_sdk_client_reads_our_unsupported_version_error() -> None:
    mcp_types = pytest.importorskip("mcp_types")
    data = unsupported_version_error(1, "1900-01-01").body["error"]["data"]
    parsed = mcp_types.UnsupportedProtocolVersionErrorData.model_validate(data)
    assert parsed.requested == "1900-01-01" and "2026-07-28" in parsed.supported
