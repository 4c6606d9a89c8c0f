"""A handshake-era client in front of a modern-only server: `_meta`, initialize from discover, MRTR."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcp_sse_proxy.protocol import messages
from mcp_sse_proxy.protocol.eras import (
    CLIENT_CAPABILITIES_KEY,
    CLIENT_INFO_KEY,
    LOG_LEVEL_KEY,
    MAX_INPUT_ROUNDS,
    PROTOCOL_VERSION_KEY,
    SERVER_INFO_KEY,
    SUBSCRIPTION_ID_KEY,
    add_modern_meta,
    capability_for_input_request,
    initialize_result_from_discover,
    input_required_to_client_requests,
    listen_filter,
    modern_client_capabilities,
    result_type,
    retry_params,
    strip_subscription_id,
)

CLIENT_INFO = {"name": "desktop", "version": "1.2"}

DISCOVER = {
    "resultType": "complete",
    "supportedVersions": ["2026-07-28"],
    "capabilities": {"tools": {"listChanged": True}, "resources": {"subscribe": True}, "logging": {}},
    "instructions": "Use the weather tools.",
    "ttlMs": 3600000,
    "cacheScope": "public",
    "_meta": {SERVER_INFO_KEY: {"name": "weather", "version": "2.0"}},
}


def test_modern_client_capabilities() -> None:
    handshake = {
        "sampling": {"tools": {}},
        "elicitation": {"form": {}},
        "roots": {"listChanged": True},
        "tasks": {"list": {}},
        "experimental": {"x": {}},
        "extensions": {"io.modelcontextprotocol/ui": {}},
        "unknown": True,
    }
    assert modern_client_capabilities(handshake) == {
        "sampling": {"tools": {}},
        "elicitation": {"form": {}},
        "roots": {},
        "experimental": {"x": {}},
        "extensions": {"io.modelcontextprotocol/ui": {}},
    }
    assert modern_client_capabilities({}) == {}
    assert modern_client_capabilities(None) == {}


def test_add_modern_meta_keeps_other_keys_and_does_not_mutate() -> None:
    params = {
        "name": "t",
        "arguments": {},
        "_meta": {"progressToken": 5, "traceparent": "00-x", "com.example/k": 1},
    }
    out = add_modern_meta(params, "2026-07-28", {"sampling": {}}, CLIENT_INFO, "info")
    assert out == {
        "name": "t",
        "arguments": {},
        "_meta": {
            "progressToken": 5,
            "traceparent": "00-x",
            "com.example/k": 1,
            PROTOCOL_VERSION_KEY: "2026-07-28",
            CLIENT_CAPABILITIES_KEY: {"sampling": {}},
            CLIENT_INFO_KEY: CLIENT_INFO,
            LOG_LEVEL_KEY: "info",
        },
    }
    assert params["_meta"] == {"progressToken": 5, "traceparent": "00-x", "com.example/k": 1}


def test_add_modern_meta_without_params_or_optional_keys() -> None:
    out = add_modern_meta(None, "2026-07-28", {}, None, None)
    assert out == {"_meta": {PROTOCOL_VERSION_KEY: "2026-07-28", CLIENT_CAPABILITIES_KEY: {}}}


def test_the_sdk_server_accepts_our_envelope() -> None:
    inbound = pytest.importorskip("mcp.shared.inbound")
    params = add_modern_meta({"name": "t"}, "2026-07-28", {}, CLIENT_INFO, None)
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}
    route = inbound.classify_inbound_request(body)
    assert isinstance(route, inbound.InboundModernRoute)
    assert route.client_info == CLIENT_INFO


@pytest.mark.parametrize(
    ("requested", "answered"),
    [
        ("2025-06-18", "2025-06-18"),
        ("2024-11-05", "2024-11-05"),
        ("2025-11-25", "2025-11-25"),
        ("2026-07-28", "2025-11-25"),  # not a handshake version
        ("1999-01-01", "2025-11-25"),
        (None, "2025-11-25"),
    ],
)
def test_initialize_result_from_discover(requested: Any, answered: str) -> None:
    result = initialize_result_from_discover(DISCOVER, requested)
    assert result == {
        "protocolVersion": answered,
        "capabilities": DISCOVER["capabilities"],
        "serverInfo": {"name": "weather", "version": "2.0"},
        "instructions": "Use the weather tools.",
    }


def test_initialize_result_when_discover_is_sparse() -> None:
    result = initialize_result_from_discover({"supportedVersions": ["2026-07-28"]}, "2025-06-18")
    assert result == {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "serverInfo": {"name": "unknown", "version": "unknown"},
    }


def test_the_sdk_reads_our_initialize_result() -> None:
    v2025 = pytest.importorskip("mcp_types._v2025_11_25")
    v2025.InitializeResult.model_validate(initialize_result_from_discover(DISCOVER, "2025-11-25"))
    v2025.InitializeResult.model_validate(initialize_result_from_discover({}, "2025-11-25"))


SAMPLE = {"type": "text", "text": "What is the capital of France?"}
INPUT_REQUIRED = {
    "resultType": "input_required",
    "inputRequests": {
        "github_login": {
            "method": "elicitation/create",
            "params": {
                "mode": "form",
                "message": "Your GitHub username?",
                "requestedSchema": {"type": "object", "properties": {"name": {"type": "string"}}},
            },
        },
        "capital_of_france": {
            "method": "sampling/createMessage",
            "params": {"messages": [{"role": "user", "content": SAMPLE}], "maxTokens": 100},
        },
        "where": {"method": "roots/list"},
        "junk": {"params": {}},
        "junk2": "not an object",
    },
    "requestState": "AEAD-protected blob",
}


def test_input_required_to_client_requests() -> None:
    assert result_type(INPUT_REQUIRED) == "input_required"
    requests = input_required_to_client_requests(INPUT_REQUIRED)
    assert requests == [
        ("github_login", "elicitation/create", INPUT_REQUIRED["inputRequests"]["github_login"]["params"]),
        (
            "capital_of_france",
            "sampling/createMessage",
            INPUT_REQUIRED["inputRequests"]["capital_of_france"]["params"],
        ),
        ("where", "roots/list", None),
    ]
    assert [capability_for_input_request(method) for _, method, _ in requests] == [
        "elicitation",
        "sampling",
        "roots",
    ]
    assert capability_for_input_request("tools/call") is None
    assert input_required_to_client_requests({"resultType": "input_required", "requestState": "s"}) == []


def test_retry_params_echo_state_and_add_responses() -> None:
    original = {"name": "t", "arguments": {"a": 1}, "_meta": {PROTOCOL_VERSION_KEY: "2026-07-28"}}
    responses = {"github_login": {"action": "accept", "content": {"name": "octocat"}}}
    retry = retry_params(original, responses, "AEAD-protected blob")
    assert retry == {**original, "inputResponses": responses, "requestState": "AEAD-protected blob"}
    assert "inputResponses" not in original


def test_retry_params_never_carry_a_previous_rounds_values() -> None:
    round_one = retry_params({"name": "t"}, {"k": {}}, "s1")
    round_two = retry_params(round_one, None, None)
    assert round_two == {"name": "t"}
    state_only = retry_params({"name": "t"}, None, "s2")
    assert state_only == {"name": "t", "requestState": "s2"}


@given(st.text())
def test_request_state_is_echoed_exactly(state: str) -> None:
    # Through the proxy's own serialisation and back: the opaque value is unchanged.
    retry = retry_params({"name": "t"}, {}, state)
    line = messages.request(2, "tools/call", retry).raw
    assert messages.parse(line).params["requestState"] == state


def test_mrtr_round_trip_through_the_sdk_models() -> None:
    v2026 = pytest.importorskip("mcp_types._v2026_07_28")
    server_result = {
        **INPUT_REQUIRED,
        "inputRequests": dict(list(INPUT_REQUIRED["inputRequests"].items())[:3]),
    }
    v2026.InputRequiredResult.model_validate(server_result)
    # The handshake client answers each stdio request; the proxy retries with the answers.
    answers = {
        "elicitation/create": {"action": "accept", "content": {"name": "octocat"}},
        "sampling/createMessage": {
            "role": "assistant",
            "content": {"type": "text", "text": "Paris"},
            "model": "m",
        },
        "roots/list": {"roots": [{"uri": "file:///work"}]},
    }
    responses = {key: answers[method] for key, method, _ in input_required_to_client_requests(server_result)}
    original = add_modern_meta(
        {"name": "t", "arguments": {}}, "2026-07-28", {"sampling": {}}, CLIENT_INFO, None
    )
    retry = retry_params(original, responses, server_result["requestState"])
    parsed = v2026.CallToolRequestParams.model_validate(retry)
    assert parsed.request_state == "AEAD-protected blob"
    assert set(parsed.input_responses) == {"github_login", "capital_of_france", "where"}


def test_round_bound() -> None:
    assert MAX_INPUT_ROUNDS == 10


def test_listen_filter() -> None:
    capabilities = {"tools": {"listChanged": True}, "resources": {"listChanged": True, "subscribe": True}}
    uris = ["file:///b", "file:///a", "file:///b"]
    assert listen_filter(capabilities, uris) == {
        "toolsListChanged": True,
        "resourcesListChanged": True,
        "resourceSubscriptions": ["file:///b", "file:///a"],
    }
    # Only what the server announces: no `prompts.listChanged`, no `resources.subscribe`, nothing at all.
    assert listen_filter({"resources": {}}, uris) == {}
    assert listen_filter({}, []) == {}


def test_strip_subscription_id() -> None:
    assert strip_subscription_id({"uri": "file:///a", "_meta": {SUBSCRIPTION_ID_KEY: 3}}) == {
        "uri": "file:///a"
    }
    assert strip_subscription_id({"_meta": {SUBSCRIPTION_ID_KEY: 3, "k": 1}}) == {"_meta": {"k": 1}}
    assert strip_subscription_id(None) is None
