"""`ToolHeaderCache`: filtering `tools/list` pages and building the request metadata headers."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcp_sse_proxy.protocol.headers import ToolHeaderCache

inbound = pytest.importorskip("mcp.shared.inbound")

META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
}

SQL_TOOL = {
    "name": "execute_sql",
    "inputSchema": {
        "type": "object",
        "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "query": {"type": "string"},
            "opts": {
                "type": "object",
                "properties": {
                    "dry": {"type": "boolean", "x-mcp-header": "Dry-Run"},
                    "limit": {"type": "integer", "x-mcp-header": "Limit"},
                },
            },
        },
    },
}
BAD_TOOL = {
    "name": "bad",
    "inputSchema": {"type": "object", "properties": {"x": {"type": "number", "x-mcp-header": "X"}}},
}
PLAIN_TOOL = {"name": "echo", "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}}}


def call(name: str, arguments: Any) -> dict[str, Any]:
    return {"_meta": META, "name": name, "arguments": arguments}


def test_invalid_tools_are_dropped_with_a_reason() -> None:
    cache = ToolHeaderCache()
    page = {"tools": [SQL_TOOL, BAD_TOOL, PLAIN_TOOL], "nextCursor": "2", "ttlMs": 5, "cacheScope": "public"}
    filtered, reasons = cache.filter_tools_page(page)
    assert [t["name"] for t in filtered["tools"]] == ["execute_sql", "echo"]
    assert {k: v for k, v in filtered.items() if k != "tools"} == {
        "nextCursor": "2",
        "ttlMs": 5,
        "cacheScope": "public",
    }
    assert len(reasons) == 1 and "'bad'" in reasons[0] and "number" in reasons[0]
    assert len(page["tools"]) == 3  # the input is not modified


def test_a_page_without_invalid_tools_is_returned_as_is() -> None:
    page = {"tools": [SQL_TOOL, PLAIN_TOOL]}
    filtered, reasons = ToolHeaderCache().filter_tools_page(page)
    assert filtered is page and reasons == []


@pytest.mark.parametrize("result", [None, [], "x", {}, {"tools": "no"}])
def test_odd_pages_pass_through(result: Any) -> None:
    assert ToolHeaderCache().filter_tools_page(result) == (result, [])


def test_nameless_tools_are_left_for_the_client_to_judge() -> None:
    page = {"tools": [{"inputSchema": BAD_TOOL["inputSchema"]}, 3]}
    assert ToolHeaderCache().filter_tools_page(page) == (page, [])


def test_headers_for_a_listed_tool() -> None:
    cache = ToolHeaderCache()
    cache.filter_tools_page({"tools": [SQL_TOOL]})
    headers = cache.headers_for(
        "tools/call",
        call("execute_sql", {"region": "us-west1", "query": "q", "opts": {"dry": True, "limit": 5}}),
    )
    assert headers == {
        "MCP-Protocol-Version": "2026-07-28",
        "Mcp-Method": "tools/call",
        "Mcp-Name": "execute_sql",
        "Mcp-Param-Region": "us-west1",
        "Mcp-Param-Dry-Run": "true",
        "Mcp-Param-Limit": "5",
    }


def test_absent_and_null_arguments_send_no_header() -> None:
    cache = ToolHeaderCache()
    cache.filter_tools_page({"tools": [SQL_TOOL]})
    headers = cache.headers_for("tools/call", call("execute_sql", {"region": None, "opts": "not an object"}))
    assert not [h for h in headers if h.startswith("Mcp-Param-")]
    headers = cache.headers_for("tools/call", {"_meta": META, "name": "execute_sql"})
    assert not [h for h in headers if h.startswith("Mcp-Param-")]


def test_never_listed_tool_gets_no_param_headers() -> None:
    cache = ToolHeaderCache()
    headers = cache.headers_for("tools/call", call("execute_sql", {"region": "eu"}))
    assert headers == {
        "MCP-Protocol-Version": "2026-07-28",
        "Mcp-Method": "tools/call",
        "Mcp-Name": "execute_sql",
    }
    assert not cache.knows("execute_sql")


def test_tool_relisted_as_invalid_is_forgotten() -> None:
    cache = ToolHeaderCache()
    cache.filter_tools_page({"tools": [SQL_TOOL]})
    assert cache.knows("execute_sql")
    cache.filter_tools_page({"tools": [{**BAD_TOOL, "name": "execute_sql"}]})
    assert not cache.knows("execute_sql")
    assert "Mcp-Param-Region" not in cache.headers_for("tools/call", call("execute_sql", {"region": "eu"}))


def test_every_page_is_remembered_and_a_whole_listing_prunes() -> None:
    cache = ToolHeaderCache()
    cache.filter_tools_page({"tools": [SQL_TOOL], "nextCursor": "p2"}, first_page=True)
    cache.filter_tools_page({"tools": [PLAIN_TOOL]})  # a later page: no pruning
    assert cache.knows("execute_sql") and cache.knows("echo")
    cache.filter_tools_page({"tools": [PLAIN_TOOL]}, first_page=True)  # the whole listing now
    assert not cache.knows("execute_sql") and cache.knows("echo")
    cache.forget()
    assert not cache.knows("echo")


def test_schema_change_replaces_annotations() -> None:
    cache = ToolHeaderCache()
    cache.filter_tools_page({"tools": [SQL_TOOL]})
    renamed = {
        "name": "execute_sql",
        "inputSchema": {
            "type": "object",
            "properties": {"region": {"type": "string", "x-mcp-header": "Zone"}},
        },
    }
    cache.filter_tools_page({"tools": [renamed]})
    headers = cache.headers_for("tools/call", call("execute_sql", {"region": "eu"}))
    assert headers["Mcp-Param-Zone"] == "eu" and "Mcp-Param-Region" not in headers


@pytest.mark.parametrize(
    ("method", "params", "name"),
    [
        ("tools/call", {"name": "get_weather"}, "get_weather"),
        ("prompts/get", {"name": "code_review"}, "code_review"),
        (
            "resources/read",
            {"uri": "file:///projects/myapp/config.json"},
            "file:///projects/myapp/config.json",
        ),
        (
            "resources/read",
            {"uri": "file:///tmp/naïve résumé.txt"},
            "=?base64?ZmlsZTovLy90bXAvbmHDr3ZlIHLDqXN1bcOpLnR4dA==?=",
        ),
        ("prompts/get", {"name": " padded "}, "=?base64?IHBhZGRlZCA=?="),
        ("tools/call", {"name": "=?base64?x?="}, "=?base64?PT9iYXNlNjQ/eD89?="),
        ("tools/list", {"name": "ignored"}, None),
        ("tools/call", {"name": 5}, None),
        ("tools/call", {}, None),
    ],
)
def test_mcp_name(method: str, params: dict[str, Any], name: str | None) -> None:
    headers = ToolHeaderCache().headers_for(method, {"_meta": META, **params})
    assert headers.get("Mcp-Name") == name
    assert headers["Mcp-Method"] == method


def test_version_and_method_headers_without_a_plain_form_are_left_out() -> None:
    cache = ToolHeaderCache()
    assert cache.headers_for("tools/list", None) == {"Mcp-Method": "tools/list"}
    bad_meta = {"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28\r\nX-Evil: 1"}}
    assert cache.headers_for("tools/list", bad_meta) == {"Mcp-Method": "tools/list"}
    assert cache.headers_for("méthode/x", {"_meta": META}) == {"MCP-Protocol-Version": "2026-07-28"}


def test_encoded_param_values() -> None:
    cache = ToolHeaderCache()
    cache.filter_tools_page({"tools": [SQL_TOOL]})
    headers = cache.headers_for("tools/call", call("execute_sql", {"region": "Hello, 世界"}))
    assert headers["Mcp-Param-Region"] == "=?base64?SGVsbG8sIOS4lueVjA==?="


# The SDK's server-side validation is the oracle: whatever we send, it must accept.
@given(
    name=st.text(min_size=1),
    region=st.one_of(st.none(), st.text()),
    dry=st.one_of(st.none(), st.booleans()),
    limit=st.one_of(st.none(), st.integers(-(2**53) + 1, 2**53 - 1)),
)
def test_the_sdk_server_accepts_our_headers(
    name: str, region: str | None, dry: bool | None, limit: int | None
) -> None:
    tool = {**SQL_TOOL, "name": name}
    cache = ToolHeaderCache()
    cache.filter_tools_page({"tools": [tool]})
    arguments = {"region": region, "query": "q", "opts": {"dry": dry, "limit": limit}}
    params = call(name, arguments)
    headers = cache.headers_for("tools/call", params)
    lowered = {k.lower(): v for k, v in headers.items()}
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}
    assert isinstance(inbound.classify_inbound_request(body, headers=lowered), inbound.InboundModernRoute)
    assert inbound.validate_mcp_param_headers(tool["inputSchema"], arguments, headers) is None


def test_the_sdk_server_accepts_integral_floats_for_integers() -> None:
    cache = ToolHeaderCache()
    cache.filter_tools_page({"tools": [SQL_TOOL]})
    arguments = {"opts": {"limit": 42.0}}
    headers = cache.headers_for("tools/call", call("execute_sql", arguments))
    assert headers["Mcp-Param-Limit"] == "42"
    assert inbound.validate_mcp_param_headers(SQL_TOOL["inputSchema"], arguments, headers) is None
