"""`extends:`: bases first, the profile's own keys last; chains, lists, diamonds, cycles, unknown names."""

from __future__ import annotations

import pytest

from mcp_sse_proxy.config import ConfigError

from .helpers import URL, flag, load


def run(files: dict[str, str], name: str = "p"):
    return load([flag("profile", name)], {}, files)


def test_chain_applies_bases_first() -> None:
    files = {
        "/c/all.yaml": f"""profiles:
  root: {{ping_interval: 1, connect_timeout: 1, read_timeout: 1}}
  mid: {{extends: root, connect_timeout: 2, read_timeout: 2}}
  p: {{extends: mid, url: '{URL}', read_timeout: 3}}
"""
    }
    profile = run(files).profiles[0]
    assert (profile.ping_interval, profile.connect_timeout, profile.read_timeout) == (1.0, 2.0, 3.0)
    assert profile.sources["ping_interval"] == "file /c/all.yaml:2"
    assert profile.sources["read_timeout"] == "file /c/all.yaml:4"


def test_list_of_bases_later_wins() -> None:
    files = {
        "/c/all.yaml": f"""profiles:
  a: {{ping_interval: 1, connect_timeout: 1}}
  b: {{ping_interval: 2}}
  p: {{extends: [a, b], url: '{URL}'}}
"""
    }
    profile = run(files).profiles[0]
    assert (profile.ping_interval, profile.connect_timeout) == (2.0, 1.0)


def test_diamond_applies_the_shared_base_once() -> None:
    files = {
        "/c/all.yaml": f"""profiles:
  base: {{ping_interval: 1}}
  left: {{extends: base, connect_timeout: 2}}
  right: {{extends: base, ping_interval: 5}}
  p: {{extends: [left, right], url: '{URL}'}}
"""
    }
    profile = run(files).profiles[0]
    assert (profile.ping_interval, profile.connect_timeout) == (5.0, 2.0)


def test_extends_across_files() -> None:
    files = {"/c/base.yaml": "ping_interval: 9\n", "/d/p.yaml": f"extends: base\nurl: {URL}\n"}
    assert run(files).profiles[0].ping_interval == 9.0


def test_env_and_flags_still_win_over_an_extended_profile() -> None:
    files = {
        "/c/all.yaml": f"profiles:\n  base: {{ping_interval: 1}}\n  p: {{extends: base, url: '{URL}'}}\n"
    }
    config = load([flag("profile", "p"), flag("ping_interval", "3")], {"ST_PROXY_PING_INTERVAL": "2"}, files)
    assert config.profiles[0].ping_interval == 3.0


@pytest.mark.parametrize(
    ("body", "cycle"),
    [
        ("  p: {extends: p, url: 'http://h/'}\n", "p -> p"),
        ("  p: {extends: q, url: 'http://h/'}\n  q: {extends: p}\n", "p -> q -> p"),
        (
            "  p: {extends: a, url: 'http://h/'}\n  a: {extends: b}\n  b: {extends: c}\n  c: {extends: a}\n",
            "p -> a -> b -> c -> a",
        ),
    ],
)
def test_cycles_are_errors_naming_the_cycle(body: str, cycle: str) -> None:
    with pytest.raises(ConfigError) as info:
        run({"/c/all.yaml": "profiles:\n" + body})
    assert f"cycle {cycle}" in str(info.value)
    assert "profile 'p': extends (from file /c/all.yaml:" in str(info.value)


def test_unknown_base_lists_the_available_profiles() -> None:
    with pytest.raises(ConfigError) as info:
        run({"/c/all.yaml": f"profiles:\n  p: {{extends: nope, url: '{URL}'}}\n  other: {{}}\n"})
    assert (
        "profile 'p': extends (from file /c/all.yaml:2): no profile named 'nope'; available: other, p"
        in str(info.value)
    )


@pytest.mark.parametrize("value", ["[1, 2]", "{a: b}", "''", "[a, 3]"])
def test_extends_must_name_profiles(value: str) -> None:
    with pytest.raises(ConfigError, match="extends .*expected a profile name or a list of names"):
        run({"/c/p.yaml": f"url: {URL}\nextends: {value}\n"})
