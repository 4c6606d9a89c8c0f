"""SessionMemory: what a relay replays on a new upstream session, and what it tells the client."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from mcp_sse_proxy.protocol.messages import Kind, Message, notification, parse, request
from mcp_sse_proxy.protocol.session import LIST_CAPABILITIES, SessionMemory

INIT_PARAMS = {
    "protocolVersion": "2025-06-18",
    "capabilities": {"roots": {}},
    "clientInfo": {"name": "test", "version": "1"},
}


def result(msg_id: Any, value: Any) -> Message:
    return parse(f'{{"jsonrpc":"2.0","id":{msg_id},"result":{value}}}')


def subscribe(uri: Any, n: int = 1) -> Message:
    return request(n, "resources/subscribe", {"uri": uri})


def unsubscribe(uri: Any, n: int = 1) -> Message:
    return request(n, "resources/unsubscribe", {"uri": uri})


def test_fresh_memory_is_empty() -> None:
    memory = SessionMemory()
    assert memory.initialize is None and memory.initialized is None and memory.init_result is None
    assert memory.negotiated_version is None
    assert memory.restore_requests() == []


def test_remembers_initialize_and_initialized() -> None:
    memory = SessionMemory()
    init = request(0, "initialize", INIT_PARAMS)
    done = notification("notifications/initialized")
    memory.observe_client(init)
    memory.observe_client(done)
    assert memory.initialize is init and memory.initialized is done
    assert memory.initialize.params == INIT_PARAMS


def test_initialize_must_be_a_request() -> None:
    memory = SessionMemory()
    memory.observe_client(notification("initialize", INIT_PARAMS))
    assert memory.initialize is None


def test_unrelated_messages_are_ignored() -> None:
    memory = SessionMemory()
    for msg in (
        request(1, "tools/call", {"name": "x", "arguments": {}}),
        notification("notifications/progress", {"progressToken": 1, "progress": 1}),
        result(1, "{}"),
        parse(b'[{"jsonrpc":"2.0","method":"logging/setLevel","params":{"level":"debug"}}]'),
    ):
        memory.observe_client(msg)
    assert memory.initialize is None and memory.log_level is None
    assert memory.restore_requests() == []


def test_observes_the_initialize_result() -> None:
    memory = SessionMemory()
    memory.observe_initialize_result(result(0, '{"protocolVersion":"2025-06-18","capabilities":{}}'))
    assert memory.init_result == {"protocolVersion": "2025-06-18", "capabilities": {}}
    assert memory.negotiated_version == "2025-06-18"


def test_an_error_response_leaves_the_result_alone() -> None:
    memory = SessionMemory()
    memory.observe_initialize_result(result(0, '{"protocolVersion":"2025-03-26"}'))
    memory.observe_initialize_result(parse(b'{"jsonrpc":"2.0","id":0,"error":{"code":-1,"message":"x"}}'))
    memory.observe_initialize_result(result(0, "[]"))
    assert memory.negotiated_version == "2025-03-26"


def test_negotiated_version_must_be_a_string() -> None:
    memory = SessionMemory()
    memory.observe_initialize_result(result(0, '{"protocolVersion":20250618}'))
    assert memory.negotiated_version is None


def test_log_level_latest_wins() -> None:
    memory = SessionMemory()
    memory.observe_client(request(1, "logging/setLevel", {"level": "debug"}))
    memory.observe_client(request(2, "logging/setLevel", {"level": "error"}))
    assert memory.restore_requests() == [("logging/setLevel", {"level": "error"})]


def test_subscriptions_and_unsubscribe() -> None:
    memory = SessionMemory()
    for uri in ("file:///a", "file:///b", "file:///c"):
        memory.observe_client(subscribe(uri))
    memory.observe_client(unsubscribe("file:///b"))
    memory.observe_client(unsubscribe("file:///never"))
    assert memory.restore_requests() == [
        ("resources/subscribe", {"uri": "file:///a"}),
        ("resources/subscribe", {"uri": "file:///c"}),
    ]


def test_subscribing_twice_is_one_subscription_in_first_order() -> None:
    memory = SessionMemory()
    memory.observe_client(subscribe("a"))
    memory.observe_client(subscribe("b"))
    memory.observe_client(subscribe("a"))
    assert [params["uri"] for _, params in memory.restore_requests()] == ["a", "b"]


def test_resubscribe_after_unsubscribe_moves_to_the_end() -> None:
    memory = SessionMemory()
    for msg in (subscribe("a"), subscribe("b"), unsubscribe("a"), subscribe("a")):
        memory.observe_client(msg)
    assert [params["uri"] for _, params in memory.restore_requests()] == ["b", "a"]


def test_subscriptions_without_a_string_uri_are_ignored() -> None:
    memory = SessionMemory()
    memory.observe_client(subscribe(5))
    memory.observe_client(request(1, "resources/subscribe"))
    memory.observe_client(subscribe("ok"))
    memory.observe_client(unsubscribe(None))
    assert memory.restore_requests() == [("resources/subscribe", {"uri": "ok"})]


def test_restore_order_is_log_level_then_subscriptions() -> None:
    memory = SessionMemory()
    memory.observe_client(subscribe("x"))
    memory.observe_client(request(1, "logging/setLevel", {"level": "info"}))
    memory.observe_client(subscribe("y"))
    assert memory.restore_requests() == [
        ("logging/setLevel", {"level": "info"}),
        ("resources/subscribe", {"uri": "x"}),
        ("resources/subscribe", {"uri": "y"}),
    ]


# -- after a replay -----------------------------------------------------------------------------------


def observed(init_result: dict[str, Any]) -> SessionMemory:
    memory = SessionMemory()
    memory.observe_client(request(0, "initialize", INIT_PARAMS))
    memory.observe_initialize_result(
        parse(b'{"jsonrpc":"2.0","id":0,"result":' + json.dumps(init_result).encode() + b"}")
    )
    return memory


def methods(notes: list[Message]) -> list[str | None]:
    return [n.method for n in notes]


def test_same_server_no_warnings_but_every_offered_list_announced() -> None:
    first = {
        "protocolVersion": "2025-06-18",
        "capabilities": {"tools": {"listChanged": True}, "resources": {}},
    }
    memory = observed(first)
    warnings, notes = memory.changes_after_replay(dict(first))
    assert warnings == []
    assert methods(notes) == ["notifications/tools/list_changed", "notifications/resources/list_changed"]
    assert all(n.kind is Kind.NOTIFICATION and "params" not in n.body for n in notes)


def test_version_change_is_warned() -> None:
    memory = observed({"protocolVersion": "2025-06-18", "capabilities": {}})
    warnings, notes = memory.changes_after_replay({"protocolVersion": "2025-03-26", "capabilities": {}})
    assert len(warnings) == 1
    assert "2025-06-18" in warnings[0] and "2025-03-26" in warnings[0]
    assert notes == []
    assert memory.negotiated_version == "2025-03-26"


def test_capability_change_is_warned_and_lists_of_both_sessions_announced() -> None:
    memory = observed({"protocolVersion": "v", "capabilities": {"tools": {}}})
    warnings, notes = memory.changes_after_replay({"protocolVersion": "v", "capabilities": {"prompts": {}}})
    assert warnings == ["server capabilities changed"]
    assert methods(notes) == ["notifications/tools/list_changed", "notifications/prompts/list_changed"]


def test_missing_capabilities_equal_empty_ones() -> None:
    memory = observed({"protocolVersion": "v"})
    warnings, notes = memory.changes_after_replay({"protocolVersion": "v", "capabilities": {}})
    assert (warnings, notes) == ([], [])


def test_replay_without_a_previous_result() -> None:
    memory = SessionMemory()
    warnings, notes = memory.changes_after_replay({"protocolVersion": "v", "capabilities": {"tools": {}}})
    assert any("protocol version" in w for w in warnings)
    assert "server capabilities changed" in warnings
    assert methods(notes) == ["notifications/tools/list_changed"]
    assert memory.init_result == {"protocolVersion": "v", "capabilities": {"tools": {}}}


def test_the_new_result_becomes_the_baseline() -> None:
    memory = observed({"protocolVersion": "a", "capabilities": {"tools": {}}})
    memory.changes_after_replay({"protocolVersion": "b", "capabilities": {"tools": {}}})
    warnings, _ = memory.changes_after_replay({"protocolVersion": "b", "capabilities": {"tools": {}}})
    assert warnings == []


cap_names = st.sampled_from([*LIST_CAPABILITIES, "logging", "completions", "experimental"])


@given(old=st.sets(cap_names), new=st.sets(cap_names))
def test_announced_lists_are_the_union_of_old_and_new(old: set[str], new: set[str]) -> None:
    memory = observed({"protocolVersion": "v", "capabilities": {c: {} for c in old}})
    warnings, notes = memory.changes_after_replay(
        {"protocolVersion": "v", "capabilities": {c: {} for c in new}}
    )
    expected = [method for cap, method in LIST_CAPABILITIES.items() if cap in old | new]
    assert methods(notes) == expected
    assert (warnings == []) == (old == new)
