"""Exposed names: alias__name, sanitising, truncation with a stable hash, collisions, globs (no I/O)."""

from __future__ import annotations

import hashlib
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcp_sse_proxy.aggregate.names import (
    AliasError,
    NameTable,
    check_aliases,
    expose,
    expose_all,
    name_hash,
)
from mcp_sse_proxy.protocol.tool_filter import is_visible

VALID = re.compile(r"^[A-Za-z0-9_-]+$")
SIXTY = "x" * 60


def test_plain_names_get_the_alias_and_two_underscores() -> None:
    assert expose("gh", "create_issue", 64) == "gh__create_issue"


def test_characters_clients_refuse_become_underscores() -> None:
    assert expose("gh", "issues.create/v2 ü", 64) == "gh__issues_create_v2__"


def test_a_long_name_keeps_the_alias_and_ends_in_a_hash_of_the_original() -> None:
    exposed = expose("alpha", SIXTY, 64)
    assert len(exposed) == 64
    assert exposed.startswith("alpha__xxx")
    assert exposed.endswith("_" + hashlib.sha256(SIXTY.encode()).hexdigest()[:6])
    assert exposed == expose("alpha", SIXTY, 64)  # the same after every restart


def test_the_limit_is_configurable() -> None:
    assert len(expose("a", "y" * 40, 32)) == 32
    assert expose("a", "y" * 29, 32) == "a__" + "y" * 29  # exactly at the limit: untouched


def test_names_that_collide_after_sanitising_all_get_a_suffix() -> None:
    mapping = expose_all("s", ["a.b", "a_b", "c"], 64)
    assert mapping["c"] == "s__c"
    assert mapping["a.b"] == "s__a_b_" + name_hash("a.b")
    assert mapping["a_b"] == "s__a_b_" + name_hash("a_b")


def test_names_that_collide_after_truncation_differ_by_their_hash() -> None:
    first, second = "p" * 70 + "1", "p" * 70 + "2"
    mapping = expose_all("s", [first, second], 64)
    assert mapping[first] != mapping[second]
    assert all(len(name) <= 64 for name in mapping.values())


def test_the_mapping_does_not_depend_on_order() -> None:
    names = ["a.b", "a_b", "z" * 80, "q"]
    assert expose_all("s", names, 64) == expose_all("s", list(reversed(names)), 64)


@given(st.lists(st.text(min_size=1, max_size=90), max_size=30))
def test_exposed_names_are_unique_valid_and_within_the_limit(names: list[str]) -> None:
    mapping = expose_all("alias-1", names, 64)
    exposed = list(mapping.values())
    assert len(set(exposed)) == len(exposed)
    for name in exposed:
        assert VALID.match(name) and len(name) <= 64 and name.startswith("alias-1__")


def test_globs_apply_to_original_names() -> None:
    assert is_visible("read_file", ("read_*",), ())
    assert not is_visible("write_file", ("read_*",), ())
    assert not is_visible("delete_all", (), ("delete_*",))
    assert is_visible("anything", (), ())


@pytest.mark.parametrize("aliases", [["1abc"], ["a_b"], ["a" * 17], [""], ["gh", "GH"]])
def test_bad_or_duplicate_aliases_are_refused(aliases: list[str]) -> None:
    with pytest.raises(AliasError):
        check_aliases(aliases)


def test_good_aliases_pass() -> None:
    check_aliases(["gh", "tix", "a-1", "A" * 16])


def test_the_table_routes_exposed_names_and_forgets_a_profiles_old_names() -> None:
    table = NameTable()
    table.set_profile("a", ["echo", "x.y"], 64)
    table.set_profile("b", ["echo"], 64)
    assert table.route("a__echo").original == "echo"  # type: ignore[union-attr]
    assert table.route("b__echo").alias == "b"  # type: ignore[union-attr]
    assert table.route("a__x_y").original == "x.y"  # type: ignore[union-attr]
    table.set_profile("a", ["other"], 64)
    assert table.route("a__echo") is None
    assert table.exposed("a", "other") == "a__other"
