"""Where values come from: YAML profile files, the `ST_PROXY_*` environment and command-line flags.

Each reader turns its input into plain values tagged with a source label (``file x.yaml:3``,
``env ST_PROXY_SSE_URL``, ``flag --sse-url``). Strings from env and argv stay strings here; `merge`
coerces them to the schema's types. Nothing in this module touches the file system.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mcp_sse_proxy.config.aliases import check_expansion
from mcp_sse_proxy.config.errors import ConfigError
from mcp_sse_proxy.config.schema import ENV_PREFIX, HEADER_ENV_PREFIX, env_index, settings

DEFAULT_SOURCE = "default"
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


@dataclass(frozen=True, slots=True)
class Sourced:
    """A value and where it came from. For `headers` the value is a dict of header name → Sourced."""

    value: Any
    source: str


#: One layer of settings (defaults, one profile in a file, env, argv): YAML key → sourced value.
Layer = dict[str, Sourced]


@dataclass(frozen=True, slots=True)
class FlagValue:
    """One occurrence of a setting's flag on the command line, as argparse saw it (raw string)."""

    name: str
    raw: str
    flag: str


@dataclass(frozen=True, slots=True)
class Document:
    """A configuration file's path (as shown in messages) and its text."""

    path: str
    text: str


@dataclass(frozen=True, slots=True)
class ProfileDoc:
    """One profile as written in a file: its own keys (without `extends`) and the names it extends."""

    name: str
    path: str
    line: int
    values: Layer
    extends: tuple[str, ...] = ()
    extends_source: str = ""

    @property
    def location(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True, slots=True)
class EnvReading:
    """The environment's settings (raw strings) plus the loader options and any unknown names."""

    layer: Layer
    profiles: tuple[str, ...] = ()
    config_paths: tuple[str, ...] = ()
    problems: tuple[str, ...] = field(default_factory=tuple)


def file_source(path: str, line: int) -> str:
    return f"file {path}:{line}"


def env_source(name: str) -> str:
    return f"env {name}"


def flag_source(flag: str) -> str:
    return f"flag {flag}"


# --- YAML files --------------------------------------------------------------------------------------------


def parse_document(doc: Document) -> list[ProfileDoc]:
    """Read one YAML file: a single profile (named after the file) or ``profiles: {name: {...}}``."""
    import yaml  # imported here: only runs that read files need it

    loader = yaml.SafeLoader(doc.text)
    try:
        root = loader.get_single_node()
        if root is None:
            return []
        check_expansion(doc.path, root)
        if not isinstance(root, yaml.MappingNode):
            raise ConfigError([f"{_where(doc.path, root)}: expected a mapping of settings or 'profiles:'"])
        pairs = _mapping_pairs(doc.path, root)
        if "profiles" in pairs:
            return _named_profiles(loader, doc, root, pairs)
        return [_profile(loader, doc, _stem(doc.path), root)]
    except yaml.YAMLError as exc:
        raise ConfigError([_yaml_problem(doc.path, exc)]) from None
    finally:
        loader.dispose()


def _named_profiles(
    loader: Any, doc: Document, root: Any, pairs: dict[str, tuple[Any, Any]]
) -> list[ProfileDoc]:
    import yaml

    others = sorted(set(pairs) - {"profiles"})
    if others:
        key_node = pairs[others[0]][0]
        raise ConfigError(
            [
                f"{_where(doc.path, key_node)}: a file with 'profiles:' holds nothing else "
                f"(found {', '.join(map(repr, others))})"
            ]
        )
    _, body = pairs["profiles"]
    if not isinstance(body, yaml.MappingNode):
        raise ConfigError([f"{_where(doc.path, body)}: 'profiles:' must map profile names to settings"])
    found = []
    for name, (key_node, node) in _mapping_pairs(doc.path, body).items():
        if not isinstance(node, yaml.MappingNode):
            raise ConfigError([f"{_where(doc.path, node)}: profile {name!r} must be a mapping of settings"])
        found.append(_profile(loader, doc, name, node, line=key_node.start_mark.line + 1))
    return found


def _profile(loader: Any, doc: Document, name: str, node: Any, *, line: int | None = None) -> ProfileDoc:
    import yaml

    values: Layer = {}
    extends: tuple[str, ...] = ()
    extends_source = ""
    for key, (key_node, value_node) in _mapping_pairs(doc.path, node).items():
        source = file_source(doc.path, key_node.start_mark.line + 1)
        if key == "headers" and isinstance(value_node, yaml.MappingNode):
            headers = {
                header: Sourced(
                    loader.construct_object(v, deep=True), file_source(doc.path, k.start_mark.line + 1)
                )
                for header, (k, v) in _mapping_pairs(doc.path, value_node).items()
            }
            values[key] = Sourced(headers, source)
            continue
        value = loader.construct_object(value_node, deep=True)
        if key == "extends":
            extends = _extends_names(value, source, name)
            extends_source = source
            continue
        values[key] = Sourced(value, source)
    return ProfileDoc(name, doc.path, line or node.start_mark.line + 1, values, extends, extends_source)


def _extends_names(value: Any, source: str, profile: str) -> tuple[str, ...]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise ConfigError(
            [f"profile {profile!r}: extends (from {source}): expected a profile name or a list of names"]
        )
    return tuple(names)


def _mapping_pairs(path: str, node: Any) -> dict[str, tuple[Any, Any]]:
    """A mapping node's entries by key; duplicate or non-string keys are errors (YAML would keep the last)."""
    import yaml

    pairs: dict[str, tuple[Any, Any]] = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != "tag:yaml.org,2002:str":
            raise ConfigError([f"{_where(path, key_node)}: keys must be plain strings"])
        key = key_node.value
        if key in pairs:
            raise ConfigError(
                [
                    f"{_where(path, key_node)}: {key!r} is set twice in the same mapping "
                    f"(first at line {pairs[key][0].start_mark.line + 1})"
                ]
            )
        pairs[key] = (key_node, value_node)
    return pairs


def _where(path: str, node: Any) -> str:
    return f"{path}:{node.start_mark.line + 1}"


def _yaml_problem(path: str, exc: Exception) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if mark is None:
        return f"{path}: invalid YAML: {problem}"
    return f"{path}:{mark.line + 1}:{mark.column + 1}: invalid YAML: {problem}"


def _stem(path: str) -> str:
    base = re.split(r"[\\/]", path)[-1]
    return base.rsplit(".", 1)[0] if "." in base else base


# --- headers -----------------------------------------------------------------------------------------------


def parse_header_line(line: str) -> tuple[str, str]:
    """``'Name: value'`` or ``'Name:value'`` → (name, value). Raises ValueError naming what is wrong."""
    name, sep, value = line.partition(":")
    name = name.strip()
    if not sep or not name:
        raise ValueError("expected 'Name: value'")
    if not _HEADER_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a valid header name")
    return name, value.strip()


def parse_header_file(path: str, text: str) -> tuple[dict[str, Sourced], list[str]]:
    """A header file: one ``Name: value`` per line; blank lines and lines starting with ``#`` are skipped."""
    problems: list[str] = []
    headers = _parse_headers(
        text.splitlines(),
        lambda number: f"header-file {path}:{number}",
        lambda number, exc: f"{path}:{number}: header line: {exc}",
        problems,
        comments=True,
    )
    return headers, problems


def _header_entries(lines: Iterable[str], source: str, problems: list[str]) -> dict[str, Sourced]:
    return _parse_headers(
        lines, lambda number: source, lambda number, exc: f"headers (from {source}): {exc}", problems
    )


def _parse_headers(
    lines: Iterable[str],
    source_of: Callable[[int], str],
    problem_of: Callable[[int, ValueError], str],
    problems: list[str],
    *,
    comments: bool = False,
) -> dict[str, Sourced]:
    """``Name: value`` lines (numbered from 1) → headers, each with its source; a bad line adds a problem.
    Blank lines are skipped, and with `comments` lines starting with ``#`` too."""
    headers: dict[str, Sourced] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip() or (comments and line.lstrip().startswith("#")):
            continue
        try:
            name, value = parse_header_line(line)
        except ValueError as exc:
            problems.append(problem_of(number, exc))
            continue
        headers[name] = Sourced(value, source_of(number))
    return headers


# --- environment -------------------------------------------------------------------------------------------


def read_environment(environ: Mapping[str, str]) -> EnvReading:
    """Every ``ST_PROXY_*`` variable → raw values by setting; an empty variable counts as unset.

    When a setting has several names (``ST_PROXY_SSE_URL`` and ``ST_PROXY_URL``), the first in the schema
    wins. An unrecognised ``ST_PROXY_*`` name is a problem, so a typo does not pass unnoticed.
    """
    index = env_index()
    layer: Layer = {}
    problems: list[str] = []
    header_vars: dict[str, Sourced] = {}
    profiles: tuple[str, ...] = ()
    config_paths: tuple[str, ...] = ()
    for env_name in sorted(n for n in environ if n.startswith(ENV_PREFIX)):
        raw = environ[env_name]
        setting = index.get(env_name)
        is_header_var = env_name.startswith(HEADER_ENV_PREFIX) and len(env_name) > len(HEADER_ENV_PREFIX)
        if setting is None and is_header_var:
            header = env_name[len(HEADER_ENV_PREFIX) :].replace("_", "-").title()
            header_vars[header] = Sourced(raw, env_source(env_name))
            continue
        if setting is None:
            problems.append(_unknown_env(env_name))
            continue
        if raw == "":
            continue
        if setting.name == "profile":
            profiles = split_list(raw)
        elif setting.name == "config":
            config_paths = tuple(p for p in raw.split(os.pathsep) if p)
        elif _is_preferred(env_name, setting.env_names, layer.get(setting.name)):
            if setting.name == "headers":
                lines = raw.replace("\r\n", "\n").split("\n")
                layer["headers"] = Sourced(
                    _header_entries(lines, env_source(env_name), problems), env_source(env_name)
                )
            else:
                layer[setting.name] = Sourced(raw, env_source(env_name))
    if header_vars:
        merged = dict(layer["headers"].value) if "headers" in layer else {}
        merged.update(header_vars)  # one header per variable is more specific than the ST_PROXY_HEADERS list
        layer["headers"] = Sourced(merged, env_source("ST_PROXY_HEADER_*"))
    return EnvReading(layer, profiles, config_paths, tuple(problems))


def _is_preferred(env_name: str, names: Sequence[str], current: Sourced | None) -> bool:
    if current is None:
        return True
    current_name = current.source.removeprefix("env ")
    return names.index(env_name) < names.index(current_name)


def _unknown_env(env_name: str) -> str:
    import difflib

    close = difflib.get_close_matches(env_name, list(env_index()), n=1)
    hint = f"; did you mean {close[0]}?" if close else ""
    return f"{env_name}: unknown ST_PROXY_* variable{hint}"


# --- command line ------------------------------------------------------------------------------------------


def read_flags(values: Sequence[FlagValue]) -> tuple[Layer, tuple[str, ...], tuple[str, ...], list[str]]:
    """Flag occurrences in argv order → (layer, selected profiles, config paths, problems).

    A repeated flag replaces the earlier value, except list settings and headers, which accumulate.
    """
    known = settings()
    layer: Layer = {}
    problems: list[str] = []
    profiles: list[str] = []
    config_paths: list[str] = []
    for item in values:
        source = flag_source(item.flag)
        if item.name == "profile":
            profiles.extend(split_list(item.raw))
        elif item.name == "config":
            config_paths.append(item.raw)
        elif item.name == "headers":
            current = dict(layer["headers"].value) if "headers" in layer else {}
            current.update(_header_entries([item.raw], source, problems))
            layer["headers"] = Sourced(current, source)
        elif item.name in known and known[item.name].main_type == "array":
            previous = layer[item.name].value if item.name in layer else ""
            joined = f"{previous},{item.raw}" if previous else item.raw
            layer[item.name] = Sourced(joined, source)
        elif item.name in known:
            layer[item.name] = Sourced(item.raw, source)
        else:
            problems.append(f"{item.flag}: not a setting")
    return layer, tuple(profiles), tuple(config_paths), problems


def split_list(raw: str) -> tuple[str, ...]:
    """A comma-separated list, items stripped, empty items dropped."""
    return tuple(part.strip() for part in raw.split(",") if part.strip())
