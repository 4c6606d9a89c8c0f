"""Aggregated profiles need aliases fit for `alias__tool` names: valid and unique ignoring case."""

from __future__ import annotations

import pytest

from mcp_sse_proxy.config import ConfigError, Document, FlagValue, load_config

PROFILES = """
profiles:
  good:
    url: http://127.0.0.1:1/mcp
  other:
    url: http://127.0.0.1:2/mcp
  under_score:
    url: http://127.0.0.1:3/mcp
  GOOD2:
    url: http://127.0.0.1:4/mcp
    prefix: Good
  fixed_name:
    url: http://127.0.0.1:5/mcp
    prefix: fixed
"""


def load(*names: str):
    flags = [FlagValue("profile", name, "--profile") for name in names]
    return load_config(flags, {}, [Document("/cfg/p.yaml", PROFILES)])


def test_valid_aliases_load() -> None:
    config = load("good", "other", "fixed_name")
    assert [p.alias for p in config.profiles] == ["good", "other", "fixed"]


def test_a_single_profile_needs_no_valid_alias() -> None:
    assert load("under_score").profiles[0].name == "under_score"


def test_invalid_alias_is_a_config_error_naming_the_profile() -> None:
    with pytest.raises(ConfigError) as caught:
        load("good", "under_score")
    assert any("under_score" in p and "prefix" in p for p in caught.value.problems)


def test_aliases_equal_ignoring_case_are_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        load("good", "GOOD2")
    assert any("same as profile 'good'" in p for p in caught.value.problems)


def test_aggregation_settings_come_from_every_layer() -> None:
    flags = [
        FlagValue("profile", "good,other", "--profile"),
        FlagValue("page_size", "5", "--page-size"),
    ]
    environ = {"ST_PROXY_AGGREGATE_GRACE": "0.5"}
    config = load_config(flags, environ, [Document("/cfg/p.yaml", PROFILES)])
    assert [(p.page_size, p.aggregate_grace) for p in config.profiles] == [(5, 0.5), (5, 0.5)]
    assert load("good").profiles[0].page_size == 0  # default: one page
