"""The --check report of several profiles: shared tool names and long names in one line each."""

from __future__ import annotations

from mcp_sse_proxy.check.render import SUMMARY_NAMES, aggregate_summary

TOOLS = [f"tool{n}" for n in range(20)]


def test_shared_tool_names_are_summarized_in_one_line() -> None:
    aggregate = {
        "tools": 40,
        "duplicates": {tool: ["notes", "work"] for tool in TOOLS},
        "shortened": [],
    }
    (line,) = aggregate_summary(aggregate)
    assert line.startswith("  20 tool names are offered by more than one profile (notes, work)")
    assert ", ".join(TOOLS[:SUMMARY_NAMES]) in line
    assert line.endswith(f"… (+{20 - SUMMARY_NAMES} more)")


def test_one_shared_name_and_long_names() -> None:
    aggregate = {"tools": 2, "duplicates": {"echo": ["a", "b"]}, "shortened": ["a__" + "x" * 70]}
    shared, long = aggregate_summary(aggregate)
    assert (
        shared
        == "  1 tool name is offered by more than one profile (a, b); the prefixes keep them apart: echo"
    )
    assert long.startswith("  1 name is longer than max_name_length and will be shortened: a__xxx")


def test_nothing_to_say_without_clashes() -> None:
    assert aggregate_summary({"tools": 3, "duplicates": {}, "shortened": []}) == []
