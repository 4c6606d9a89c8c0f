"""Property tests: whatever the layers hold, the highest layer that sets a value decides it."""

from __future__ import annotations

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_sse_proxy.config.merge import merge_layers, merge_mapping
from mcp_sse_proxy.config.sources import Sourced

from .helpers import URL, flag, load

LAYERS = ("default", "file", "env", "flag")
NUMERIC = ["ping_interval", "connect_timeout", "read_timeout", "request_timeout", "queue_timeout"]
ENV = {name: "ST_PROXY_" + name.upper() for name in NUMERIC}

values = st.integers(min_value=1, max_value=10_000).map(float)
maybe = st.none() | values


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(NUMERIC), st.tuples(maybe, maybe, maybe), min_size=1))
def test_highest_layer_setting_a_value_wins(chosen: dict[str, tuple[float | None, ...]]) -> None:
    file_values = {name: v[0] for name, v in chosen.items() if v[0] is not None}
    environ = {ENV[name]: repr(v[1]) for name, v in chosen.items() if v[1] is not None}
    flags = [flag(name, repr(v[2])) for name, v in chosen.items() if v[2] is not None]
    files = {"/c/p.yaml": yaml.safe_dump({"url": URL, **file_values})}
    profile = load([flag("profile", "p"), *flags], environ, files).profiles[0]
    for name, (from_file, from_env, from_flag) in chosen.items():
        expected = next((v for v in (from_flag, from_env, from_file) if v is not None), None)
        if expected is None:
            assert profile.sources[name] == "default"
        else:
            assert getattr(profile, name) == expected
            layer = "flag" if from_flag is not None else "env" if from_env is not None else "file"
            assert profile.sources[name].startswith(layer)


layer_values = st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), st.integers(), max_size=4)


@given(st.lists(layer_values, max_size=5))
def test_merge_layers_is_last_writer_wins_per_key(layers: list[dict[str, int]]) -> None:
    sourced = [{k: Sourced(v, f"layer{i}") for k, v in layer.items()} for i, layer in enumerate(layers)]
    merged = merge_layers(sourced)
    for key in {k for layer in layers for k in layer}:
        last = max(i for i, layer in enumerate(layers) if key in layer)
        assert merged[key] == Sourced(layers[last][key], f"layer{last}")
    assert set(merged) == {k for layer in layers for k in layer}


header_names = st.sampled_from(["Authorization", "authorization", "AUTHORIZATION", "X-A", "x-a", "X-B"])


@given(st.lists(st.dictionaries(header_names, st.text(max_size=5), max_size=4), min_size=1, max_size=4))
def test_header_merge_is_case_insensitive_last_writer_wins(layers: list[dict[str, str]]) -> None:
    merged: dict[str, Sourced] = {}
    for i, layer in enumerate(layers):
        merged = merge_mapping(merged, {k: Sourced(v, f"l{i}") for k, v in layer.items()})
    lowered = [k.lower() for k in merged]
    assert len(lowered) == len(set(lowered))
    for name in lowered:
        holders = [(i, k) for i, layer in enumerate(layers) for k in layer if k.lower() == name]
        last_index = max(i for i, _ in holders)
        spelled = [k for k in layers[last_index] if k.lower() == name][-1]
        assert merged[spelled].source == f"l{last_index}"
