from __future__ import annotations

from mcp_sse_proxy.protocol.tool_filter import ToolFilter


def test_an_inactive_filter_hides_nothing_and_leaves_lists_alone() -> None:
    tools = ToolFilter((), ())
    assert not tools.active and not tools.hides("anything")
    assert tools.filter_list({"result": {"tools": [{"name": "a"}]}}) is None


def test_include_then_exclude_on_lists_and_names() -> None:
    tools = ToolFilter(("read_*", "list"), ("read_secret",))
    assert tools.hides("write") and tools.hides("read_secret") and not tools.hides("read_file")
    assert tools.hides(None)  # a call without a usable name is not let through an active filter
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "result": {"tools": [{"name": n} for n in ("read_file", "write", "list")]},
    }
    filtered = tools.filter_list(body)
    assert filtered is not None and [t["name"] for t in filtered["result"]["tools"]] == ["read_file", "list"]
    assert body["result"]["tools"][1]["name"] == "write"  # the original is not edited in place


def test_a_list_without_hidden_tools_is_passed_unchanged() -> None:
    assert ToolFilter((), ("x",)).filter_list({"result": {"tools": [{"name": "a"}]}}) is None
    assert ToolFilter((), ("x",)).filter_list({"error": {"code": 1}}) is None
