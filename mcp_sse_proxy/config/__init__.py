"""Configuration: YAML profiles, `ST_PROXY_*` environment and flags → one validated `AppConfig`.

`load_config` is a pure function of its inputs (flag values, an environment mapping, file texts); the
I/O wrappers `find_config_files`, `read_documents` and `load_config_from_system` (in `files`, re-exported
here) find and read the files; `secrets` says which values the redaction step masks.
Nothing here runs at import time, and YAML and jsonschema are imported only when a load needs them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcp_sse_proxy.config import safety
from mcp_sse_proxy.config.errors import ConfigError
from mcp_sse_proxy.config.files import (
    find_config_files,
    load_config_from_system,
    read_documents,
    searched_places,
    selected_config_paths,
)
from mcp_sse_proxy.config.merge import (
    coerce_layer,
    defaults_layer,
    expand_headers,
    expand_home,
    extends_chain,
    file_layer,
    merge_layers,
    plain_values,
    variables_in,
)
from mcp_sse_proxy.config.model import LOG_KEYS, AppConfig, LogSettings, Profile
from mcp_sse_proxy.config.schema import ValidationMemo, settings, validate
from mcp_sse_proxy.config.secrets import config_secrets
from mcp_sse_proxy.config.sources import (
    Document,
    FlagValue,
    Layer,
    ProfileDoc,
    Sourced,
    parse_document,
    parse_header_file,
    read_environment,
    read_flags,
)

ANONYMOUS_PROFILE = "default"

__all__ = [
    "ANONYMOUS_PROFILE",
    "AppConfig",
    "Catalog",
    "ConfigError",
    "Document",
    "FlagValue",
    "LogSettings",
    "Profile",
    "build_catalog",
    "find_config_files",
    "load_config",
    "load_config_from_system",
    "read_documents",
    "searched_places",
    "selected_config_paths",
]


@dataclass(frozen=True, slots=True)
class Catalog:
    """Every profile found, by name (the first definition in search order wins) and the shadowed ones."""

    profiles: dict[str, ProfileDoc]
    shadowed: tuple[ProfileDoc, ...] = ()


def build_catalog(documents: Iterable[Document]) -> Catalog:
    """Parse the files in search order into a catalog; YAML and structure errors raise ConfigError."""
    profiles: dict[str, ProfileDoc] = {}
    shadowed: list[ProfileDoc] = []
    problems: list[str] = []
    for document in documents:
        try:
            found = parse_document(document)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        for doc in found:
            if doc.name in profiles:
                shadowed.append(doc)
            else:
                profiles[doc.name] = doc
    if problems:
        raise ConfigError(problems)
    return Catalog(profiles, tuple(shadowed))


def load_config(
    flags: Sequence[FlagValue],
    environ: Mapping[str, str],
    documents: Sequence[Document] = (),
    *,
    read_text: Callable[[str], str] | None = None,
    memo: ValidationMemo | None = None,
    searched: str = "",
) -> AppConfig:
    """Merge defaults < profile YAML < `ST_PROXY_*` env < flags into a validated `AppConfig`.

    `flags` are the parsed command-line occurrences (see `cli.parse_flags`), `environ` the whole process
    environment (also used for `${VAR}` and env forwarding), `documents` the profile files in search
    order. `read_text(path)` reads a `header_file`; without it, naming one is an error. `searched` says
    where the files were looked for (for the message about an unknown profile). Raises ConfigError with
    every problem found.
    """
    flag_layer, flag_profiles, _, flag_problems = read_flags(flags)
    env = read_environment(environ)
    catalog = build_catalog(documents)
    env_layer, env_problems = coerce_layer(env.layer)
    cli_layer, cli_problems = coerce_layer(flag_layer)
    selected = _selection(flag_profiles or env.profiles)
    shared = [*env.problems, *flag_problems, *env_problems, *cli_problems]
    if shared:
        label = ", ".join(map(repr, selected or (ANONYMOUS_PROFILE,)))
        raise ConfigError(f"profile {label}: {problem}" for problem in shared)

    profiles: list[Profile] = []
    problems: list[str] = []
    logging_values: tuple[dict[str, Any], dict[str, str]] | None = None
    for name in selected or (ANONYMOUS_PROFILE,):
        try:
            values, sources, header_variables = _effective_values(
                name,
                catalog,
                env_layer,
                cli_layer,
                environ,
                read_text,
                is_explicit=bool(selected),
                memo=memo,
                searched=searched,
            )
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        profiles.append(_profile(name, values, sources, header_variables))
        if logging_values is None:
            logging_values = (values, sources)
    if len(profiles) > 1:
        problems.extend(_alias_problems(profiles))
    if problems:
        raise ConfigError(problems)
    assert logging_values is not None
    return AppConfig(
        profiles=tuple(profiles),
        logging=_log_settings(*logging_values),
        secrets=config_secrets(profiles, environ),
    )


#: Aliases name the profiles of an aggregate in `alias__tool`; they must suit every client's tool names.
ALIAS_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,15}$")


def _alias_problems(profiles: Sequence[Profile]) -> list[str]:
    """Aggregation needs each profile's alias (`prefix`, else its name) valid and unique ignoring case."""
    problems: list[str] = []
    seen: dict[str, str] = {}
    for profile in profiles:
        alias = profile.alias
        where = profile.sources.get("prefix", "the profile name") if profile.prefix else "the profile name"
        if not ALIAS_PATTERN.match(alias):
            problems.append(
                f"profile {profile.name!r}: prefix: alias {alias!r} (from {where}) cannot name an aggregated "
                "profile: expected a letter followed by at most 15 letters, digits or '-' (set `prefix`)"
            )
        folded = alias.casefold()
        if folded in seen:
            problems.append(
                f"profile {profile.name!r}: prefix: alias {alias!r} is the same as profile {seen[folded]!r}'s "
                "ignoring case; give one of them another `prefix`"
            )
        seen.setdefault(folded, profile.name)
    return problems


def _selection(names: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))  # first mention wins, repeats dropped


def _effective_values(
    name: str,
    catalog: Catalog,
    env_layer: Layer,
    cli_layer: Layer,
    environ: Mapping[str, str],
    read_text: Callable[[str], str] | None,
    *,
    is_explicit: bool,
    memo: ValidationMemo | None = None,
    searched: str = "",
) -> tuple[dict[str, Any], dict[str, str], tuple[str, ...]]:
    """The merged, validated values of one profile, their sources, and the `${VAR}` names its headers use."""
    if name in catalog.profiles:
        files = [file_layer(doc, environ) for doc in extends_chain(name, catalog.profiles)]
    elif is_explicit:
        where = f" in {searched}" if searched else ""
        raise ConfigError(
            [
                f"profile {name!r}: not found{where}; available: "
                f"{', '.join(sorted(catalog.profiles)) or '(none: no profile files were found)'}"
            ]
        )
    else:
        files = []
    layers = [defaults_layer(), *files, env_layer, cli_layer]
    problems: list[str] = []
    layers = _with_header_file(layers, read_text, environ, problems)
    merged = merge_layers(layers)
    variables: tuple[str, ...] = ()
    if isinstance(merged.get("headers", Sourced({}, "")).value, dict):
        texts = [item.value for item in merged["headers"].value.values() if isinstance(item.value, str)]
        variables = tuple(dict.fromkeys(var for text in texts for var in variables_in(text)))
        expanded, header_problems = expand_headers(merged["headers"].value, environ)
        merged["headers"] = Sourced(expanded, merged["headers"].source)
        problems.extend(header_problems)
    values, sources = plain_values(merged)
    problems = [f"profile {name!r}: {p}" for p in problems]
    problems.extend(validate(values, profile=name, sources=sources, memo=memo))
    problems.extend(safety.problems(values, sources, profile=name))
    if problems:
        raise ConfigError(problems)
    return values, sources, variables


def _with_header_file(
    layers: list[Layer],
    read_text: Callable[[str], str] | None,
    environ: Mapping[str, str],
    problems: list[str],
) -> list[Layer]:
    """Put the headers of the effective `header_file` into the layer that named it, below its own headers."""
    for index in range(len(layers) - 1, -1, -1):
        item = layers[index].get("header_file")
        if item is None:
            continue
        if not isinstance(item.value, str) or not item.value:
            return layers  # null disables; a wrong type is reported by the schema
        path = expand_home(item.value, environ)
        if read_text is None:
            problems.append(f"header_file (from {item.source}): cannot read files here")
            return layers
        try:
            text = read_text(path)
        except OSError as exc:
            problems.append(f"header_file (from {item.source}): cannot read {path}: {exc.strerror or exc}")
            return layers
        file_headers, header_problems = parse_header_file(path, text)
        problems.extend(header_problems)
        layer = dict(layers[index])
        own_item = layer.get("headers")
        own = own_item.value if own_item is not None and isinstance(own_item.value, dict) else {}
        layer["headers"] = Sourced({**file_headers, **own}, item.source)
        return [*layers[:index], layer, *layers[index + 1 :]]
    return layers


def _profile(
    name: str, values: Mapping[str, Any], sources: Mapping[str, str], header_variables: tuple[str, ...] = ()
) -> Profile:
    known = settings()
    kwargs: dict[str, Any] = {}
    for field_name in Profile.__dataclass_fields__:
        if field_name in ("name", "sources", "header_variables") or field_name not in values:
            continue
        kwargs[field_name] = _convert(known[field_name].kind, known[field_name].main_type, values[field_name])
    profile_sources = {key: source for key, source in sources.items() if key.split(".")[0] in known}
    return Profile(name=name, sources=profile_sources, header_variables=header_variables, **kwargs)


def _convert(kind: str | None, main_type: str, value: Any) -> Any:
    if value is None:
        return None
    if kind in ("path", "log-path"):
        return Path(value)
    if main_type == "array":
        return tuple(value)
    if main_type == "number":
        return float(value)
    if main_type == "object":
        return dict(value)
    return value


def _log_settings(values: Mapping[str, Any], sources: Mapping[str, str]) -> LogSettings:
    def path(key: str) -> Path | None:
        return Path(values[key]) if values.get(key) else None

    return LogSettings(
        level=values["log_level"],
        log_file=path("log_file"),
        debug_enabled=values["debug_enabled"],
        debug_filename=path("debug_filename"),
        debug_http=values["debug_http"],
        trace_file=path("trace_file"),
        trace_max_payload=values["trace_max_payload"],
        sources={key: sources[key] for key in LOG_KEYS},
    )
