"""Resource URI ownership and the alias+uri form (no I/O)."""

from __future__ import annotations

from mcp_sse_proxy.aggregate.uris import Owner, UriTable, template_pattern


def test_the_first_profile_in_selection_order_keeps_a_shared_uri() -> None:
    table = UriTable(["a", "b"])
    table.set_listed("b", ["shared://doc", "b://own"], [])
    table.set_listed("a", ["shared://doc"], [])
    assert table.expose("a", "shared://doc") == "shared://doc"
    assert table.expose("b", "shared://doc") == "b+shared://doc"
    assert table.expose("b", "b://own") == "b://own"
    assert table.resolve("shared://doc") == Owner("a", "shared://doc")
    assert table.resolve("b+shared://doc") == Owner("b", "shared://doc")
    assert table.resolve("b://own") == Owner("b", "b://own")


def test_unknown_uris_resolve_to_nobody() -> None:
    table = UriTable(["a", "b"])
    table.set_listed("a", ["x://1"], [])
    assert table.resolve("y://2") is None
    assert table.resolve("b+x://1") is None  # b never had it
    assert table.resolve("c+x://1") is None  # no such alias


def test_templates_are_owned_and_exposed_like_uris() -> None:
    table = UriTable(["a", "b"])
    table.set_listed("a", [], ["item://{n}"])
    table.set_listed("b", [], ["item://{n}", "b://{path}"])
    assert table.expose_template("a", "item://{n}") == "item://{n}"
    assert table.expose_template("b", "item://{n}") == "b+item://{n}"
    assert table.resolve("item://7") == Owner("a", "item://7")
    assert table.resolve("b+item://7") == Owner("b", "item://7")
    assert table.resolve("b://x") == Owner("b", "b://x")
    assert table.resolve("b+item://{n}") == Owner("b", "item://{n}")
    # A concrete URI from b's results that a's template covers is shown as b's.
    assert table.expose("b", "item://9") == "b+item://9"


def test_uris_first_seen_in_results_belong_to_that_profile() -> None:
    table = UriTable(["a", "b"])
    assert table.expose("b", "seen://1") == "seen://1"
    assert table.expose("a", "seen://1") == "a+seen://1"
    assert table.resolve("seen://1") == Owner("b", "seen://1")
    assert table.resolve("a+seen://1") == Owner("a", "seen://1")


def test_a_scheme_with_a_plus_is_not_mistaken_for_an_alias() -> None:
    table = UriTable(["svn", "b"])
    table.set_listed("b", ["svn+ssh://host/repo"], [])
    assert table.resolve("svn+ssh://host/repo") == Owner("b", "svn+ssh://host/repo")


def test_template_patterns() -> None:
    assert template_pattern("item://{n}").match("item://5")
    assert not template_pattern("item://{n}").match("item://5/6")
    assert template_pattern("file://{+path}").match("file://a/b/c")
    assert template_pattern("s://x{?q,r}").match("s://x?q=1&r=2")
    assert not template_pattern("item://{n}").match("other://5")
