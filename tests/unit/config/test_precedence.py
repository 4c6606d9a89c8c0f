"""Precedence for every setting: defaults < profile YAML < ST_PROXY_* env < flags."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import yaml

from mcp_sse_proxy.config import Profile
from mcp_sse_proxy.config.model import LOG_KEYS
from mcp_sse_proxy.config.schema import Setting, settings

from .helpers import URL, flag, load

#: Settings with their own tests (headers merge by name; header_file reads a file).
SPECIAL = {"headers", "header_file", "extends"}
LOGGING = LOG_KEYS


def samples(setting: Setting) -> list[tuple[Any, str, Any]]:
    """Three distinct values as (YAML value, env/flag string, expected effective value), none the default."""
    kind = setting.main_type
    if setting.name == "url":
        return [
            (f"http://127.0.0.1:{p}/sse", f"http://127.0.0.1:{p}/sse", f"http://127.0.0.1:{p}/sse")
            for p in (8001, 8002, 8003)
        ]
    if setting.name.endswith("_url"):  # oauth_client_metadata_url: an https URL with a path
        return [(f"https://h/{n}.json", f"https://h/{n}.json", f"https://h/{n}.json") for n in "abc"]
    if setting.choices:
        others = [c for c in setting.choices if c != setting.default]
        picks = [others[0], others[-1], others[0]] if len(others) < 3 else others[:3]
        return [(c, c.upper(), c) for c in picks]
    if kind == "boolean":
        flip = not setting.default
        word = "yes" if flip else "no"
        return [(flip, str(flip), flip), (not flip, str(not flip).upper(), not flip), (flip, word, flip)]
    if kind == "integer":
        base = max(int(setting.default or 0), 1024 if setting.name == "max_message_size" else 8)
        return [(base + i, str(base + i), base + i) for i in (1, 2, 3)]
    if kind == "number":
        return [(float(i) + 0.5, f"{i}.5", float(i) + 0.5) for i in (1, 2, 3)]
    if kind == "array":
        return [(["b*", "c*"], "b*, c*", ("b*", "c*")), (["e"], "e", ("e",)), (["h", "i"], "h,i", ("h", "i"))]
    if setting.kind in ("path", "log-path"):
        return [(f"/srv/{n}", f"/srv/{n}", Path(f"/srv/{n}")) for n in "abc"]
    return [(v, v, v) for v in ("alpha", "beta", "gamma")]


def effective(config: Any, name: str) -> Any:
    if name in LOGGING:
        return getattr(config.logging, LOGGING[name])
    return getattr(config.profiles[0], name)


def source_of(config: Any, name: str) -> str:
    if name in LOGGING:
        return config.logging.sources[name]
    return config.profiles[0].sources[name]


SIMPLE = [name for name in settings() if name not in SPECIAL]


@pytest.mark.parametrize("name", SIMPLE)
def test_each_layer_overrides_the_one_below(name: str) -> None:
    setting = settings()[name]
    (file_value, _, file_expected), (_, env_raw, env_expected), (_, cli_raw, cli_expected) = samples(setting)
    # With no url in the lower layers the profile would be invalid, so url comes from the file unless tested.
    base = {} if name == "url" else {"url": URL}
    text = yaml.safe_dump({"profiles": {"work": {**base, name: file_value}}})
    files = {"/cfg/work.yaml": text}
    env_name = setting.env_names[0]
    selection = [flag("profile", "work")]

    if name != "url":
        defaults_only = load([flag("url", URL)])
        assert effective(defaults_only, name) == _default(name)
        assert source_of(defaults_only, name) == "default"

    from_file = load(selection, {}, files)
    assert effective(from_file, name) == file_expected
    assert source_of(from_file, name).startswith("file /cfg/work.yaml:")

    from_env = load(selection, {env_name: env_raw}, files)
    assert effective(from_env, name) == env_expected
    assert source_of(from_env, name) == f"env {env_name}"

    from_cli = load([*selection, flag(name, cli_raw, setting.flags[0])], {env_name: env_raw}, files)
    assert effective(from_cli, name) == cli_expected
    assert source_of(from_cli, name) == f"flag {setting.flags[0]}"


def _default(name: str) -> Any:
    if name in LOGGING:
        from mcp_sse_proxy.config import LogSettings

        return getattr(LogSettings(), LOGGING[name])
    return {f.name: f for f in fields(Profile)}[name].default


def test_every_setting_is_covered_here_or_by_a_dedicated_test() -> None:
    assert set(SIMPLE) | SPECIAL == set(settings())


def test_schema_defaults_equal_the_dataclass_defaults() -> None:
    config = load([flag("url", URL)])
    for name in SIMPLE:
        if name != "url":
            assert effective(config, name) == _default(name), name


def test_anonymous_profile_from_flags_and_env_alone() -> None:
    config = load([flag("ping_interval", "5")], {"ST_PROXY_SSE_URL": URL})
    (profile,) = config.profiles
    assert profile.name == "default"
    assert profile.url == URL
    assert profile.ping_interval == 5.0


def test_a_file_profile_named_default_is_the_base_of_the_anonymous_one() -> None:
    files = {"/cfg/default.yaml": f"url: {URL}\nping_interval: 7\n"}
    config = load([flag("connect_timeout", "3")], {}, files)
    assert config.profiles[0].ping_interval == 7.0
    assert config.profiles[0].connect_timeout == 3.0


def test_env_and_flags_apply_to_every_selected_profile() -> None:
    files = {
        "/cfg/a.yaml": "profiles:\n  a: {url: 'http://127.0.0.1:1/sse'}\n  b: {url: 'http://127.0.0.1:2/sse'}\n"
    }
    config = load([flag("profile", "a,b")], {"ST_PROXY_PING_INTERVAL": "4"}, files)
    assert [p.name for p in config.profiles] == ["a", "b"]
    assert [p.ping_interval for p in config.profiles] == [4.0, 4.0]
    assert [p.url for p in config.profiles] == ["http://127.0.0.1:1/sse", "http://127.0.0.1:2/sse"]


def test_profile_selection_flags_win_over_env_and_keep_order_without_repeats() -> None:
    files = {
        "/cfg/a.yaml": "profiles:\n  a: {url: 'http://h/a'}\n  b: {url: 'http://h/b'}\n  c: {url: 'http://h/c'}\n"
    }
    config = load([flag("profile", "c"), flag("profile", "a, c")], {"ST_PROXY_PROFILE": "b"}, files)
    assert [p.name for p in config.profiles] == ["c", "a"]
    assert [p.name for p in load([], {"ST_PROXY_PROFILE": "b,a"}, files).profiles] == ["b", "a"]


def test_logging_comes_from_the_first_selected_profile() -> None:
    files = {
        "/cfg/a.yaml": "profiles:\n  a: {url: 'http://h/a', log_level: debug}\n"
        "  b: {url: 'http://h/b', log_level: error}\n"
    }
    assert load([flag("profile", "b,a")], {}, files).logging.level == "error"
    assert load([flag("profile", "a,b")], {}, files).logging.level == "debug"


def test_first_definition_in_search_order_wins() -> None:
    files = {"/first/x.yaml": "url: http://h/first\n", "/second/x.yaml": "url: http://h/second\n"}
    assert load([flag("profile", "x")], {}, files).profiles[0].url == "http://h/first"


def test_relative_paths_in_a_file_are_resolved_against_its_directory() -> None:
    files = {
        "/etc/proxy/p.yaml": f"url: {URL}\nca_file: certs/ca.pem\nclient_cert: ~/me.pem\n"
        "debug_filename: debug.log\n"
    }
    config = load([flag("profile", "p")], {"HOME": "/home/me"}, files)
    assert config.profiles[0].ca_file == Path("/etc/proxy/certs/ca.pem")
    assert config.profiles[0].client_cert == Path("/home/me/me.pem")
    # the debug log name stays relative: it is placed in the user log directory, as in 0.1.4
    assert config.logging.debug_filename == Path("debug.log")
