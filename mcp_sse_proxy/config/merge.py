"""Merging the layers into one profile: precedence, `extends`, coercion of strings, `${VAR}` expansion.

Pure functions over `Layer` values: no files, no `os.environ`. Precedence, lowest first: built-in
defaults, the profile's `extends` chain (bases before the profile itself), `ST_PROXY_*` environment,
command-line flags. Mappings (`headers`) merge by key, case-insensitively; every other value is replaced.
"""

from __future__ import annotations

import math
import posixpath
import re
from collections.abc import Mapping, Sequence
from typing import Any

from mcp_sse_proxy.config.errors import ConfigError
from mcp_sse_proxy.config.schema import Setting, settings
from mcp_sse_proxy.config.sources import DEFAULT_SOURCE, Layer, ProfileDoc, Sourced, split_list

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})
_VAR = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)\}")


def defaults_layer() -> Layer:
    """The schema's defaults as the lowest layer (settings without a default, like `url`, are absent)."""
    return {
        name: Sourced(setting.default, DEFAULT_SOURCE)
        for name, setting in settings().items()
        if setting.scope != "file" and not setting.is_required
    }


def coerce(setting: Setting, raw: str) -> Any:
    """A string from env or argv → the schema type of `setting`. Raises ValueError saying what was expected.

    Booleans accept true/1/yes/on and false/0/no/off in any case; lists are comma-separated; an empty
    string makes a nullable setting null; enum values are matched case-insensitively.
    """
    kind = setting.main_type
    text = raw.strip()
    if setting.is_nullable and text == "":
        return None
    if kind == "boolean":
        word = text.lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise ValueError("must be true or false (also 1/0, yes/no, on/off)")
    if kind == "integer":
        try:
            return int(text)
        except ValueError:
            raise ValueError("must be a whole number") from None
    if kind == "number":
        try:
            number = float(text)
        except ValueError:
            raise ValueError("must be a number") from None
        if not math.isfinite(number):
            raise ValueError("must be a finite number")
        return number
    if kind == "array":
        return list(split_list(raw))
    if setting.choices is not None:
        lowered = text.lower()
        return lowered if lowered in setting.choices else text
    return text


def coerce_layer(layer: Layer) -> tuple[Layer, list[str]]:
    """Coerce every raw string in an env or flag layer; problems name the setting and the source."""
    known = settings()
    coerced: Layer = {}
    problems = []
    for name, item in layer.items():
        setting = known[name]
        if setting.main_type == "object" or not isinstance(item.value, str):
            coerced[name] = item
            continue
        try:
            coerced[name] = Sourced(coerce(setting, item.value), item.source)
        except ValueError as exc:
            shown = "" if setting.is_secret else f", got {item.value!r}"
            problems.append(f"{name} (from {item.source}): {exc}{shown}")
    return coerced, problems


def merge_layers(layers: Sequence[Layer]) -> Layer:
    """Later layers win; mapping-valued settings merge by key, the later spelling of a key replacing the
    earlier one regardless of case (header names are case-insensitive)."""
    merged: Layer = {}
    for layer in layers:
        for name, item in layer.items():
            previous = merged.get(name)
            if isinstance(item.value, dict) and previous is not None and isinstance(previous.value, dict):
                merged[name] = Sourced(merge_mapping(previous.value, item.value), item.source)
            else:
                merged[name] = item
    return merged


def merge_mapping(lower: Mapping[str, Sourced], upper: Mapping[str, Sourced]) -> dict[str, Sourced]:
    """`upper` over `lower`, keys compared case-insensitively (within `upper` too: the last spelling wins)."""
    result = dict(lower)
    for key, value in upper.items():
        for same in [k for k in result if k.lower() == key.lower()]:
            del result[same]
        result[key] = value
    return result


def extends_chain(name: str, catalog: Mapping[str, ProfileDoc]) -> list[ProfileDoc]:
    """The profile and everything it extends, bases first, each once; cycles and unknown names are errors."""
    order: list[ProfileDoc] = []
    placed: set[str] = set()

    def visit(current: str, trail: tuple[str, ...]) -> None:
        doc = catalog[current]
        for parent in doc.extends:
            if parent in trail or parent == current:
                cycle = " -> ".join((*trail, current, parent))
                raise ConfigError([f"profile {name!r}: extends (from {doc.extends_source}): cycle {cycle}"])
            if parent not in catalog:
                raise ConfigError(
                    [
                        f"profile {name!r}: extends (from {doc.extends_source}): no profile named "
                        f"{parent!r}; available: {_names(catalog)}"
                    ]
                )
            visit(parent, (*trail, current))
        if current not in placed:
            placed.add(current)
            order.append(doc)

    visit(name, ())
    return order


def _names(catalog: Mapping[str, Any]) -> str:
    return ", ".join(sorted(catalog)) or "(none)"


def file_layer(doc: ProfileDoc, environ: Mapping[str, str]) -> Layer:
    """A profile's own keys, with relative file paths resolved against the directory of its file."""
    known = settings()
    base = posixpath.dirname(doc.path.replace("\\", "/"))
    layer: Layer = {}
    for name, item in doc.values.items():
        setting = known.get(name)
        value = item.value
        if setting is not None and setting.kind == "path" and isinstance(value, str) and value:
            value = expand_home(value, environ)
            if not _is_absolute(value) and base:
                value = posixpath.join(base, value)
        layer[name] = Sourced(value, item.source)
    return layer


def expand_home(value: str, environ: Mapping[str, str]) -> str:
    """``~/x`` → the home directory from the environment mapping (HOME, else USERPROFILE)."""
    if value == "~" or value.startswith(("~/", "~\\")):
        home = environ.get("HOME") or environ.get("USERPROFILE")
        if home:
            return home + value[1:]
    return value


def _is_absolute(path: str) -> bool:
    return path.startswith(("/", "\\")) or bool(re.match(r"^[A-Za-z]:[\\/]", path))


def expand_vars(text: str, environ: Mapping[str, str]) -> str:
    """Replace ``${VAR}`` with the variable's value; ``$${VAR}`` stays literally ``${VAR}``.

    Raises KeyError with the name of a variable that is not set.
    """

    def replace(match: re.Match[str]) -> str:
        escaped, var = match.groups()
        if escaped:
            return "${" + var + "}"
        if var not in environ:
            raise KeyError(var)
        return environ[var]

    return _VAR.sub(replace, text)


def variables_in(text: str) -> list[str]:
    """The names of the `${VAR}` references in `text` (not the escaped `$${VAR}`), in order."""
    return [var for escaped, var in _VAR.findall(text) if not escaped]


def expand_headers(
    headers: Mapping[str, Sourced], environ: Mapping[str, str]
) -> tuple[dict[str, Sourced], list[str]]:
    """Expand ``${VAR}`` in every header value; a missing variable is named, the value never shown."""
    expanded: dict[str, Sourced] = {}
    problems = []
    for name, item in headers.items():
        if not isinstance(item.value, str):
            expanded[name] = item  # the schema reports the wrong type
            continue
        try:
            expanded[name] = Sourced(expand_vars(item.value, environ), item.source)
        except KeyError as exc:
            problems.append(
                f"headers.{name} (from {item.source}): uses ${{{exc.args[0]}}}, which is not set "
                "in the environment"
            )
    return expanded, problems


def plain_values(layer: Layer) -> tuple[dict[str, Any], dict[str, str]]:
    """A merged layer → (values as the schema sees them, source of each value; `headers.Name` per header)."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name, item in layer.items():
        if isinstance(item.value, dict):
            values[name] = {k: v.value if isinstance(v, Sourced) else v for k, v in item.value.items()}
            sources[name] = item.source
            for key, sub in item.value.items():
                if isinstance(sub, Sourced):
                    sources[f"{name}.{key}"] = sub.source
        else:
            values[name] = item.value
            sources[name] = item.source
    return values, sources
