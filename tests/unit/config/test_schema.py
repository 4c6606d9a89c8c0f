"""The schema is the one place that knows every setting; these tests keep the rest in line with it."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

from jsonschema import Draft202012Validator

from mcp_sse_proxy.cli import build_parser
from mcp_sse_proxy.config import LogSettings, Profile
from mcp_sse_proxy.config.schema import load_schema, loader_options, settings

ROOT = Path(__file__).resolve().parents[3]
LOG_FIELDS = {"log_level", "log_file", "debug_enabled", "debug_filename", "debug_http", "trace_file"}
LOG_FIELDS |= {"trace_max_payload"}


def test_schema_is_valid_2020_12_and_strict() -> None:
    schema = load_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is False
    assert schema == json.loads((ROOT / "schemas" / "profile.schema.json").read_text())


def test_every_model_field_is_a_setting() -> None:
    profile_fields = {f.name for f in fields(Profile)} - {"name", "sources", "header_variables"}
    assert {f.name for f in fields(LogSettings)} - {"sources"} == {
        "level",
        "log_file",
        "debug_enabled",
        "debug_filename",
        "debug_http",
        "trace_file",
        "trace_max_payload",
    }
    assert set(settings()) == profile_fields | LOG_FIELDS | {"extends"}


def test_every_property_is_documented_and_follows_the_naming_convention() -> None:
    for name, setting in {**settings(), **loader_options()}.items():
        assert setting.description, name
        if setting.scope == "file":
            assert not setting.flags and not setting.env_names
            continue
        if name not in ("headers", "config", "profile"):  # plural/alias names, checked elsewhere
            assert "--" + name.replace("_", "-") in setting.flags, name
            assert "ST_PROXY_" + name.upper() in setting.env_names, name
        spec = load_schema()["properties"].get(name, {})
        assert name in ("url", "config", "profile") or "default" in spec, name


def test_parser_options_are_exactly_the_schema_flags() -> None:
    parser_flags = {s for action in build_parser()._actions for s in action.option_strings}
    schema_flags = {f for s in (*settings().values(), *loader_options().values()) for f in s.flags}
    negations = {f"--no-{s.flags[0][2:]}" for s in settings().values() if s.main_type == "boolean"}
    actions = {
        "-h",
        "--help",
        "--print-config",
        "--list-profiles",
        "--version",
        "--check",
        "--json",
        "--print-client-config",
        "--env-only",
    }
    assert parser_flags == schema_flags | negations | actions


def test_original_names_are_in_the_schema() -> None:
    url = settings()["url"]
    assert url.flags[:2] == ("--sse-url", "--base-url") and "--url" in url.flags
    assert url.env_names == ("ST_PROXY_SSE_URL", "ST_PROXY_URL")
    assert settings()["debug_enabled"].env_names == ("ST_PROXY_DEBUG_ENABLED",)
    assert settings()["debug_filename"].env_names == ("ST_PROXY_DEBUG_FILENAME",)
    assert settings()["ping_interval"].flags == ("--ping-interval",)
    assert settings()["env_prefixes"].env_names == ("ST_PROXY_ENV_PREFIXES",)


def test_env_names_are_unique() -> None:
    names = [n for s in (*settings().values(), *loader_options().values()) for n in s.env_names]
    assert len(names) == len(set(names))
