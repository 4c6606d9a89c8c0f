"""Configuration: YAML profiles, `ST_PROXY_*` environment and flags → one validated `AppConfig`.

`load_config` is a pure function of its inputs (flag values, an environment mapping, file texts); the
I/O wrappers `find_config_files`, `read_documents` and `load_config_from_system` find and read the files.
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
APP_NAME = "mcp-sse-proxy"

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
        secrets=_secrets(profiles, environ),
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


def _secrets(profiles: Iterable[Profile], environ: Mapping[str, str]) -> frozenset[str]:
    """Header values (and the credential part after an auth scheme), forwarded env values, URL userinfo and
    query values."""
    found: set[str] = set()
    for profile in profiles:
        for value in profile.headers.values():
            found.add(value)
            scheme, _, credential = value.partition(" ")
            if credential.strip() and scheme.isalpha():
                found.add(credential.strip())
        for env_name, env_value in environ.items():
            if any(env_name.startswith(prefix) for prefix in profile.env_prefixes):
                found.add(env_value)
        found.update(url_secrets(profile.url))
    return frozenset(secret for secret in found if secret)


def url_secrets(url: str) -> set[str]:
    """The parts of a URL that may hold a token: user name, password and every query value."""
    from urllib.parse import parse_qsl, urlsplit

    try:
        parts = urlsplit(url)
        found = {parts.username or "", parts.password or ""}
    except ValueError:
        return set()
    found.update(value for _, value in parse_qsl(parts.query, keep_blank_values=False))
    found.update(raw.partition("=")[2] for raw in parts.query.split("&"))  # as written, before decoding
    return {value for value in found if value}


# --- I/O: finding and reading files ------------------------------------------------------------------------


def selected_config_paths(flags: Sequence[FlagValue], environ: Mapping[str, str]) -> tuple[str, ...]:
    """Files named by `--config` (in order), then by `ST_PROXY_CONFIG`. Pure."""
    _, _, flag_paths, _ = read_flags(flags)
    env_paths = read_environment({k: v for k, v in environ.items() if k == "ST_PROXY_CONFIG"}).config_paths
    return (*flag_paths, *env_paths)


def user_config_dir() -> Path:
    """`$XDG_CONFIG_HOME/mcp-sse-proxy` on Linux, the platform's equivalent elsewhere."""
    from platformdirs import user_config_path

    return user_config_path(APP_NAME, appauthor=False)


def find_config_files(flags: Sequence[FlagValue], environ: Mapping[str, str]) -> list[Path]:
    """The search order: `--config` files, `ST_PROXY_CONFIG` files, then `*.yaml`/`*.yml` in the user
    config directory (sorted by name). Named files must exist; the directory may not."""
    named = [Path(expand_home(p, environ)) for p in selected_config_paths(flags, environ)]
    directory = user_config_dir()
    found = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]) if directory.is_dir() else []
    seen: set[Path] = set()
    ordered = []
    for path in [*named, *found]:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            ordered.append(path)
    return ordered


def searched_places(flags: Sequence[FlagValue], environ: Mapping[str, str]) -> str:
    """Where `find_config_files` looks, in words: the named files, then the user config directory."""
    named = [expand_home(p, environ) for p in selected_config_paths(flags, environ)]
    places = [*named, f"*.yaml or *.yml in {user_config_dir()}"]
    return ", ".join(places[:-1]) + f" and {places[-1]}" if len(places) > 1 else places[0]


def read_documents(paths: Iterable[Path]) -> list[Document]:
    """Read each file; an unreadable one raises ConfigError naming it."""
    documents = []
    problems = []
    for path in paths:
        try:
            documents.append(Document(str(path), path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            problems.append(f"{path}: cannot read configuration file: {reason}")
    if problems:
        raise ConfigError(problems)
    return documents


def load_config_from_system(flags: Sequence[FlagValue], environ: Mapping[str, str]) -> AppConfig:
    """`load_config` with the files found on disk and header files read from disk."""
    from mcp_sse_proxy.config.memo import FileValidationMemo

    documents = read_documents(find_config_files(flags, environ))
    memo = FileValidationMemo.default()
    searched = searched_places(flags, environ)
    return load_config(flags, environ, documents, read_text=_read_text, memo=memo, searched=searched)


def _read_text(path: str) -> str:
    return Path(path).read_text(encoding="utf-8")
