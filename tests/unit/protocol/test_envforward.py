"""Forwarding selected environment variables into `tools/call` `arguments.env`."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcp_sse_proxy.protocol.envforward import inject_env, select_env

ENVIRON = {"MCP_TOKEN": "t", "MCP_REGION": "eu", "GITHUB_TOKEN": "g", "HOME": "/root", "MCPX": "x"}


def call(arguments: Any = None, *, with_arguments: bool = True) -> dict[str, Any]:
    params: dict[str, Any] = {"name": "run"}
    if with_arguments:
        params["arguments"] = arguments
    return {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}


# -- select_env ---------------------------------------------------------------------------------------


def test_select_by_one_prefix() -> None:
    assert select_env(ENVIRON, ["MCP_"]) == {"MCP_TOKEN": "t", "MCP_REGION": "eu"}


def test_select_by_several_prefixes() -> None:
    assert select_env(ENVIRON, ("MCP_", "GITHUB_")) == {
        "MCP_TOKEN": "t",
        "MCP_REGION": "eu",
        "GITHUB_TOKEN": "g",
    }


def test_prefixes_are_case_sensitive_and_may_be_whole_names() -> None:
    assert select_env(ENVIRON, ["mcp_"]) == {}
    assert select_env(ENVIRON, ["HOME"]) == {"HOME": "/root"}


@pytest.mark.parametrize("prefixes", [[], [""], ["", ""]])
def test_no_or_empty_prefixes_select_nothing(prefixes: list[str]) -> None:
    assert select_env(ENVIRON, prefixes) == {}


def test_empty_prefix_beside_a_real_one_is_ignored() -> None:
    assert select_env(ENVIRON, ["", "GITHUB_"]) == {"GITHUB_TOKEN": "g"}


def test_prefixes_may_be_a_one_shot_iterator() -> None:
    assert select_env(ENVIRON, iter(["GITHUB_"])) == {"GITHUB_TOKEN": "g"}


@given(
    environ=st.dictionaries(st.text(max_size=6), st.text(max_size=4), max_size=10),
    prefixes=st.lists(st.text(max_size=3), max_size=4),
)
def test_select_env_property(environ: dict[str, str], prefixes: list[str]) -> None:
    chosen = select_env(environ, prefixes)
    real = [p for p in prefixes if p]
    assert chosen == {k: v for k, v in environ.items() if any(k.startswith(p) for p in real)}


# -- inject_env ---------------------------------------------------------------------------------------


def test_inject_into_arguments_without_env() -> None:
    body = call({"cmd": "ls"})
    new = inject_env(body, {"MCP_TOKEN": "t"})
    assert new is not None
    assert new["params"] == {"name": "run", "arguments": {"cmd": "ls", "env": {"MCP_TOKEN": "t"}}}
    assert {k: v for k, v in new.items() if k != "params"} == {k: v for k, v in body.items() if k != "params"}


@pytest.mark.parametrize("body", [call(None), call(with_arguments=False)])
def test_inject_creates_arguments(body: dict[str, Any]) -> None:
    new = inject_env(body, {"A": "1"})
    assert new is not None and new["params"]["arguments"] == {"env": {"A": "1"}}
    assert new["params"]["name"] == "run"


def test_inject_merges_into_an_existing_env_and_client_values_win() -> None:
    body = call({"env": {"A": "client", "B": "client"}})
    new = inject_env(body, {"A": "forwarded", "C": "forwarded"})
    assert new is not None
    assert new["params"]["arguments"]["env"] == {"A": "client", "B": "client", "C": "forwarded"}


def test_inject_does_not_mutate_its_inputs() -> None:
    body = call({"env": {"A": "client"}, "x": [1]})
    forwarded = {"B": "f"}
    before, forwarded_before = copy.deepcopy(body), dict(forwarded)
    inject_env(body, forwarded)
    assert body == before and forwarded == forwarded_before


def test_nothing_to_forward_is_none() -> None:
    assert inject_env(call({"env": {}}), {}) is None


@pytest.mark.parametrize("arguments", ["text", 5, [1, 2], True])
def test_non_dict_arguments_are_left_alone(arguments: Any) -> None:
    assert inject_env(call(arguments), {"A": "1"}) is None


@pytest.mark.parametrize("env", ["A=1", ["A=1"], 3])
def test_non_dict_env_is_left_alone(env: Any) -> None:
    assert inject_env(call({"env": env}), {"A": "1"}) is None


@pytest.mark.parametrize("params", [None, [], "x"])
def test_missing_or_non_dict_params_are_left_alone(params: Any) -> None:
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": 1, "method": "tools/call"}
    if params is not None:
        body["params"] = params
    assert inject_env(body, {"A": "1"}) is None


def test_null_env_is_treated_as_absent() -> None:
    new = inject_env(call({"env": None}), {"A": "1"})
    assert new is not None and new["params"]["arguments"]["env"] == {"A": "1"}


@given(
    client=st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=5),
    forwarded=st.dictionaries(st.text(max_size=3), st.text(max_size=3), min_size=1, max_size=5),
)
def test_client_values_always_win(client: dict[str, str], forwarded: dict[str, str]) -> None:
    new = inject_env(call({"env": client}), forwarded)
    if new is None:
        assert set(forwarded) <= set(client)
        return
    env = new["params"]["arguments"]["env"]
    assert set(env) == set(client) | set(forwarded)
    for key, value in env.items():
        assert value == (client[key] if key in client else forwarded[key])


def test_nothing_changes_when_the_client_set_every_forwarded_variable() -> None:
    assert inject_env(call({"env": {"A": "client"}}), {"A": "forwarded"}) is None
