"""Merged lists and result rewriting (no I/O)."""

from __future__ import annotations

from mcp_sse_proxy.aggregate.catalog import PROMPTS, RESOURCES, TEMPLATES, TOOLS, Source
from mcp_sse_proxy.aggregate.catalog import MergedLists as Catalog


def catalog() -> Catalog:
    cat = Catalog([Source("a"), Source("b", include_tools=("echo", "link*"), exclude_tools=("linkage",))])
    cat.set_list("a", TOOLS, [{"name": "echo", "inputSchema": {}}, {"name": "secret"}, {"bad": 1}])
    cat.set_list("b", TOOLS, [{"name": "echo"}, {"name": "secret"}, {"name": "link"}, {"name": "linkage"}])
    cat.set_list("a", PROMPTS, [{"name": "greet"}])
    cat.set_list("b", PROMPTS, [{"name": "greet"}])
    cat.set_list("a", RESOURCES, [{"uri": "shared://doc", "name": "doc"}])
    cat.set_list("b", RESOURCES, [{"uri": "shared://doc", "name": "doc"}, {"uri": "b://own", "name": "own"}])
    cat.set_list("b", TEMPLATES, [{"uriTemplate": "item://{n}", "name": "item"}])
    cat.set_up("a", True)
    cat.set_up("b", True)
    return cat


def test_lists_merge_in_selection_order_with_exposed_names() -> None:
    cat = catalog()
    assert [t["name"] for t in cat.listing(TOOLS)] == ["a__echo", "a__secret", "b__echo", "b__link"]
    assert cat.listing(TOOLS)[0]["inputSchema"] == {}
    assert [p["name"] for p in cat.listing(PROMPTS)] == ["a__greet", "b__greet"]
    assert [r["uri"] for r in cat.listing(RESOURCES)] == ["shared://doc", "b+shared://doc", "b://own"]
    assert [t["uriTemplate"] for t in cat.listing(TEMPLATES)] == ["item://{n}"]


def test_hidden_tools_cannot_be_routed() -> None:
    cat = catalog()
    assert cat.tools.route("b__secret") is None
    assert cat.tools.route("b__linkage") is None
    assert cat.tools.route("a__secret") is not None


def test_a_down_profile_shows_nothing_but_keeps_its_routes() -> None:
    cat = catalog()
    before = cat.version(TOOLS)
    cat.set_up("b", False)
    assert [t["name"] for t in cat.listing(TOOLS)] == ["a__echo", "a__secret"]
    assert cat.version(TOOLS) != before
    assert cat.tools.route("b__echo") is not None
    assert cat.uris.resolve("b+shared://doc") is not None
    cat.set_up("b", True)
    assert cat.version(TOOLS) == before


def test_results_show_uris_as_the_client_sees_them() -> None:
    cat = catalog()
    result = {
        "content": [
            {"type": "text", "text": "x"},
            {"type": "resource_link", "uri": "shared://doc", "name": "doc"},
            {"type": "resource", "resource": {"uri": "b://own", "text": "t"}},
        ]
    }
    exposed = cat.expose_result("b", "tools/call", result)
    assert exposed["content"][1]["uri"] == "b+shared://doc"
    assert exposed["content"][2]["resource"]["uri"] == "b://own"
    assert result["content"][1]["uri"] == "shared://doc"  # the input is not modified
    read = cat.expose_result("b", "resources/read", {"contents": [{"uri": "shared://doc", "text": "t"}]})
    assert read["contents"][0]["uri"] == "b+shared://doc"
    prompt = {"messages": [{"role": "user", "content": {"type": "resource_link", "uri": "shared://doc"}}]}
    assert cat.expose_result("b", "prompts/get", prompt)["messages"][0]["content"]["uri"] == "b+shared://doc"
    assert cat.expose_result("a", "tools/call", result)["content"][1]["uri"] == "shared://doc"
