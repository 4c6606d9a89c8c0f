"""A modern client in front of a handshake-era server: discover, results, errors, initialize, listen, MRTR."""

from __future__ import annotations

from typing import Any

import pytest

from mcp_sse_proxy.protocol.eras import (
    CACHEABLE_METHODS,
    CLIENT_CAPABILITIES_KEY,
    CLIENT_INFO_KEY,
    LOG_LEVEL_KEY,
    PROTOCOL_VERSION_KEY,
    REISSUABLE_METHODS,
    SERVER_INFO_KEY,
    SUBSCRIPTION_ID_KEY,
    acknowledged_filter,
    discover_result_from_initialize,
    initialize_params_from_modern,
    input_required_result,
    is_modern_error,
    listen_acknowledgement,
    listen_wants,
    log_level_allows,
    lowest_log_level,
    map_error_to_modern,
    modernize_result,
    mrtr_retry_parts,
    strip_modern_meta,
    tag_subscription,
)

SERVER_INFO = {"name": "legacy", "version": "0.9"}
INIT_RESULT = {
    "protocolVersion": "2025-06-18",
    "capabilities": {
        "tools": {"listChanged": True},
        "resources": {"subscribe": True},
        "logging": {},
        "tasks": {"list": {}},
    },
    "serverInfo": SERVER_INFO,
    "instructions": "Be nice.",
}

v2026 = pytest.importorskip("mcp_types._v2026_07_28")


def test_discover_result_from_initialize() -> None:
    result = discover_result_from_initialize(INIT_RESULT, ["2026-07-28"])
    assert result == {
        "resultType": "complete",
        "supportedVersions": ["2026-07-28"],
        "capabilities": {"tools": {"listChanged": True}, "resources": {"subscribe": True}, "logging": {}},
        "ttlMs": 0,
        "cacheScope": "private",
        "instructions": "Be nice.",
        "_meta": {SERVER_INFO_KEY: SERVER_INFO},
    }
    v2026.DiscoverResult.model_validate(result)


def test_discover_result_from_a_sparse_initialize() -> None:
    result = discover_result_from_initialize({}, ("2026-07-28",))
    assert result["capabilities"] == {}
    assert "instructions" not in result
    assert result["_meta"][SERVER_INFO_KEY] == {"name": "unknown", "version": "unknown"}
    v2026.DiscoverResult.model_validate(result)


def test_the_sdk_probe_adopts_our_discover_result() -> None:
    version = pytest.importorskip("mcp_types.version")
    parsed = v2026.DiscoverResult.model_validate(discover_result_from_initialize(INIT_RESULT, ["2026-07-28"]))
    assert any(v in parsed.supported_versions for v in version.MODERN_PROTOCOL_VERSIONS)


@pytest.mark.parametrize("method", sorted(CACHEABLE_METHODS))
def test_cacheable_results_get_caching_fields(method: str) -> None:
    result = modernize_result(method, {"tools": []}, SERVER_INFO)
    assert result == {
        "tools": [],
        "resultType": "complete",
        "ttlMs": 0,
        "cacheScope": "private",
        "_meta": {SERVER_INFO_KEY: SERVER_INFO},
    }


@pytest.mark.parametrize("method", ["tools/call", "prompts/get", "completion/complete", None])
def test_other_results_get_no_caching_fields(method: str | None) -> None:
    result = modernize_result(method, {"content": []}, SERVER_INFO)
    assert result == {"content": [], "resultType": "complete", "_meta": {SERVER_INFO_KEY: SERVER_INFO}}


def test_modernize_keeps_what_is_valid_and_fixes_what_is_not() -> None:
    kept = modernize_result(
        "tools/list", {"tools": [], "ttlMs": 500, "cacheScope": "public", "_meta": {"k": 1}}, None
    )
    assert kept == {
        "tools": [],
        "resultType": "complete",
        "ttlMs": 500,
        "cacheScope": "public",
        "_meta": {"k": 1},
    }
    fixed = modernize_result("resources/read", {"contents": [], "ttlMs": -5, "cacheScope": "shared"}, None)
    assert fixed["ttlMs"] == 0 and fixed["cacheScope"] == "private"
    assert modernize_result("tools/list", {"tools": [], "ttlMs": True}, None)["ttlMs"] == 0
    own_info = modernize_result(
        "tools/call", {"_meta": {SERVER_INFO_KEY: {"name": "x", "version": "1"}}}, SERVER_INFO
    )
    assert own_info["_meta"][SERVER_INFO_KEY] == {"name": "x", "version": "1"}


def test_modernize_leaves_input_required_and_unknown_types_uncached() -> None:
    interim = {"resultType": "input_required", "requestState": "s"}
    assert modernize_result("resources/read", interim, None) == interim
    extension = {"resultType": "com.example/task", "id": 3}
    assert modernize_result("tools/list", extension, None) == extension


def test_modernize_does_not_mutate_and_passes_non_objects() -> None:
    original = {"tools": [], "_meta": {"k": 1}}
    modernize_result("tools/list", original, SERVER_INFO)
    assert original == {"tools": [], "_meta": {"k": 1}}
    assert modernize_result("tools/list", None, SERVER_INFO) is None


def test_a_modernized_tools_list_is_a_valid_2026_result() -> None:
    v2026.ListToolsResult.model_validate(
        modernize_result(
            "tools/list", {"tools": [{"name": "t", "inputSchema": {"type": "object"}}]}, SERVER_INFO
        )
    )


@pytest.mark.parametrize(
    ("code", "mapped"),
    [
        (-32002, -32602),  # resource not found, earlier revisions
        (-32042, -32603),  # URL elicitation required, 2025-11-25 only
        (-32020, -32603),  # a legacy server cannot mean HeaderMismatch
        (-32021, -32603),
        (-32022, -32603),
        (-32099, -32603),
        (-32050, -32603),
        (-32019, -32019),  # the legacy sub-range passes: receivers assume no meaning
        (-32000, -32000),
        (-32001, -32001),
        (-32600, -32600),
        (-32601, -32601),
        (-32602, -32602),
        (-32603, -32603),
        (-32700, -32700),
        (-32100, -32100),
        (1, 1),
        (-1, -1),
    ],
)
def test_map_error_to_modern(code: int, mapped: int) -> None:
    error = {"code": code, "message": "Nope", "data": {"uri": "file:///x"}}
    out = map_error_to_modern(error)
    assert out["code"] == mapped
    assert out["data"] == {"uri": "file:///x"}
    if mapped == -32603 and code != -32603:
        assert out["message"] == f"Nope (upstream code {code})"
    else:
        assert out["message"] == "Nope"
    assert error["code"] == code  # not mutated


def test_map_error_tolerates_odd_errors() -> None:
    assert map_error_to_modern({"code": -32042}) == {
        "code": -32603,
        "message": "upstream error (upstream code -32042)",
    }
    assert map_error_to_modern({"code": "x", "message": "m"}) == {"code": "x", "message": "m"}


def test_is_modern_error() -> None:
    assert is_modern_error({"code": -32022})
    assert not is_modern_error({"code": -32601})
    assert not is_modern_error({"code": True})
    assert not is_modern_error(None)


MODERN_META = {
    PROTOCOL_VERSION_KEY: "2026-07-28",
    CLIENT_CAPABILITIES_KEY: {
        "sampling": {},
        "elicitation": {"form": {}, "url": {}},
        "roots": {},
        "extensions": {"io.modelcontextprotocol/ui": {"mimeTypes": ["text/html;profile=mcp-app"]}},
    },
    CLIENT_INFO_KEY: {"name": "modern-client", "version": "3.0"},
    LOG_LEVEL_KEY: "debug",
    "progressToken": "p1",
}


def test_initialize_params_from_modern() -> None:
    assert initialize_params_from_modern(MODERN_META) == {
        "protocolVersion": "2025-11-25",
        "capabilities": {
            "sampling": {},
            "elicitation": {"form": {}, "url": {}},
            "roots": {},
            "extensions": {"io.modelcontextprotocol/ui": {"mimeTypes": ["text/html;profile=mcp-app"]}},
        },
        "clientInfo": {"name": "modern-client", "version": "3.0"},
    }


def test_initialize_params_declare_only_what_the_client_declared() -> None:
    meta = {PROTOCOL_VERSION_KEY: "2026-07-28", CLIENT_CAPABILITIES_KEY: {"elicitation": {}}}
    params = initialize_params_from_modern(meta, "2025-03-26", {"name": "mcp-sse-proxy", "version": "1"})
    assert params == {
        "protocolVersion": "2025-03-26",
        "capabilities": {"elicitation": {}},
        "clientInfo": {"name": "mcp-sse-proxy", "version": "1"},
    }
    bare = initialize_params_from_modern({})
    assert bare["capabilities"] == {} and bare["clientInfo"] == {"name": "unknown", "version": "unknown"}


def test_the_sdk_reads_our_initialize_params() -> None:
    v2025 = pytest.importorskip("mcp_types._v2025_11_25")
    v2025.InitializeRequestParams.model_validate(initialize_params_from_modern(MODERN_META))


def test_strip_modern_meta() -> None:
    params = {
        "name": "t",
        "_meta": {
            **MODERN_META,
            "traceparent": "00-x",
            "io.modelcontextprotocol/related-task": {"taskId": "1"},
        },
    }
    assert strip_modern_meta(params) == {
        "name": "t",
        "_meta": {
            "progressToken": "p1",
            "traceparent": "00-x",
            "io.modelcontextprotocol/related-task": {"taskId": "1"},
        },
    }
    assert PROTOCOL_VERSION_KEY in params["_meta"]  # not mutated
    assert strip_modern_meta({"_meta": {PROTOCOL_VERSION_KEY: "2026-07-28"}}) == {}
    assert strip_modern_meta({"cursor": "c"}) == {"cursor": "c"}
    assert strip_modern_meta(None) is None


def test_held_server_request_as_input_required() -> None:
    sampling = {"messages": [{"role": "user", "content": {"type": "text", "text": "hi"}}], "maxTokens": 10}
    result = input_required_result(
        [("s1", "sampling/createMessage", sampling), ("r1", "roots/list", None)], "tok"
    )
    assert result == {
        "resultType": "input_required",
        "inputRequests": {
            "s1": {"method": "sampling/createMessage", "params": sampling},
            "r1": {"method": "roots/list"},
        },
        "requestState": "tok",
    }
    v2026.InputRequiredResult.model_validate(result)
    assert "ttlMs" not in modernize_result("tools/list", result, None)
    with_info = input_required_result([], "tok", SERVER_INFO)
    assert with_info == {
        "resultType": "input_required",
        "requestState": "tok",
        "_meta": {SERVER_INFO_KEY: SERVER_INFO},
    }


def test_mrtr_retry_parts() -> None:
    responses = {"s1": {"role": "assistant", "content": {"type": "text", "text": "yo"}, "model": "m"}}
    assert mrtr_retry_parts({"name": "t", "inputResponses": responses, "requestState": "tok"}) == (
        responses,
        "tok",
    )
    assert mrtr_retry_parts({"name": "t"}) == (None, None)
    assert mrtr_retry_parts({"inputResponses": [], "requestState": 5}) == (None, None)
    assert mrtr_retry_parts(None) == (None, None)


def test_acknowledged_filter_follows_upstream_capabilities() -> None:
    requested = {
        "toolsListChanged": True,
        "promptsListChanged": True,
        "resourcesListChanged": True,
        "resourceSubscriptions": ["file:///a"],
    }
    assert acknowledged_filter(requested, INIT_RESULT["capabilities"]) == {
        "toolsListChanged": True,
        "resourceSubscriptions": ["file:///a"],
    }
    everything = {
        "tools": {"listChanged": True},
        "prompts": {"listChanged": True},
        "resources": {"listChanged": True, "subscribe": True},
    }
    assert acknowledged_filter(requested, everything) == requested
    assert acknowledged_filter({"toolsListChanged": False}, everything) == {}
    assert acknowledged_filter(requested, {}) == {}


@pytest.mark.parametrize(
    ("method", "params", "wanted"),
    [
        ("notifications/tools/list_changed", None, True),
        ("notifications/prompts/list_changed", None, False),
        ("notifications/resources/updated", {"uri": "file:///a"}, True),
        ("notifications/resources/updated", {"uri": "file:///b"}, False),
        ("notifications/resources/list_changed", {}, False),
        ("notifications/message", {"level": "info"}, False),
        ("notifications/progress", {"progressToken": 1}, False),
    ],
)
def test_listen_wants(method: str, params: Any, wanted: bool) -> None:
    honoured = {"toolsListChanged": True, "resourceSubscriptions": ["file:///a"]}
    assert listen_wants(honoured, method, params) is wanted


def test_listen_messages_carry_the_subscription_id() -> None:
    ack = listen_acknowledgement(7, {"toolsListChanged": True})
    assert ack == {
        "jsonrpc": "2.0",
        "method": "notifications/subscriptions/acknowledged",
        "params": {"_meta": {SUBSCRIPTION_ID_KEY: 7}, "notifications": {"toolsListChanged": True}},
    }
    v2026.SubscriptionsAcknowledgedNotification.model_validate(ack)
    assert tag_subscription({"uri": "file:///a"}, "L") == {
        "uri": "file:///a",
        "_meta": {SUBSCRIPTION_ID_KEY: "L"},
    }
    retagged = tag_subscription({"_meta": {SUBSCRIPTION_ID_KEY: 99, "k": 1}}, 7)
    assert retagged == {"_meta": {SUBSCRIPTION_ID_KEY: 7, "k": 1}}
    assert tag_subscription(None, 1) == {"_meta": {SUBSCRIPTION_ID_KEY: 1}}


def test_log_levels() -> None:
    assert log_level_allows("error", "warning")
    assert log_level_allows("warning", "warning")
    assert not log_level_allows("info", "warning")
    assert not log_level_allows("info", None)
    assert not log_level_allows("loud", "debug")
    assert lowest_log_level(["error", "info", None, "bogus"]) == "info"
    assert lowest_log_level([]) is None


def test_reissuable_methods_exclude_side_effects() -> None:
    assert "tools/call" not in REISSUABLE_METHODS
    assert "subscriptions/listen" not in REISSUABLE_METHODS
    assert {"tools/list", "resources/read", "prompts/get", "server/discover"} <= REISSUABLE_METHODS
