"""The profile schema: the one place that knows every setting, and validation against it.

`schemas/profile.schema.json` is shipped inside the wheel as `mcp_sse_proxy/schemas/profile.schema.json`
and found through importlib.resources; in a source checkout it is read from the repository's `schemas/`.
Each property carries its flags (`x-cli`), environment variables (`x-env`), metavar and scope, so the
parser, the env mapping, the man page and `--print-config` are all derived from it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Protocol

SCHEMA_RESOURCE = "schemas/profile.schema.json"
ENV_PREFIX = "ST_PROXY_"
#: `ST_PROXY_HEADER_<NAME>=value` sets one header; the name's underscores become dashes.
HEADER_ENV_PREFIX = "ST_PROXY_HEADER_"


@dataclass(frozen=True, slots=True)
class Setting:
    """One schema property (or loader option) with the names it goes by in each layer."""

    name: str
    types: tuple[str, ...]
    default: Any
    description: str
    flags: tuple[str, ...]
    env_names: tuple[str, ...]
    metavar: str | None
    scope: str
    is_secret: bool
    kind: str | None
    choices: tuple[str, ...] | None
    is_required: bool

    @property
    def main_type(self) -> str:
        """The schema type other than null: what a string from env or argv is coerced to."""
        return next((t for t in self.types if t != "null"), "null")

    @property
    def is_nullable(self) -> bool:
        return "null" in self.types


def _read_schema_text() -> str:
    here = Path(__file__).resolve().parent.parent
    # The installed layout (force-included by the wheel build) is checked first without importlib.resources,
    # whose import costs more than the read; resources then covers zip imports, and the source tree last.
    for candidate in (here / SCHEMA_RESOURCE, here.parent / SCHEMA_RESOURCE):
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8")
    from importlib import resources

    return resources.files("mcp_sse_proxy").joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8")


@cache
def load_schema() -> dict[str, Any]:
    """The parsed profile schema (read once per process)."""
    return json.loads(_read_schema_text())


def _setting(name: str, spec: Mapping[str, Any], required: Sequence[str]) -> Setting:
    types = spec["type"] if isinstance(spec["type"], list) else [spec["type"]]
    return Setting(
        name=name,
        types=tuple(types),
        default=spec.get("default"),
        description=spec.get("description", ""),
        flags=tuple(spec.get("x-cli", ())),
        env_names=tuple(spec.get("x-env", ())),
        metavar=spec.get("x-metavar"),
        scope=spec.get("x-scope", "profile"),
        is_secret=bool(spec.get("x-secret", False)),
        kind=spec.get("x-kind"),
        choices=tuple(spec["enum"]) if "enum" in spec else None,
        is_required=name in required,
    )


@cache
def settings() -> dict[str, Setting]:
    """Every profile setting by YAML key, in schema order (the order of --help and --print-config)."""
    schema = load_schema()
    required = schema.get("required", ())
    return {name: _setting(name, spec, required) for name, spec in schema["properties"].items()}


@cache
def loader_options() -> dict[str, Setting]:
    """Options that steer loading rather than configure a profile: `config` and `profile`."""
    return {name: _setting(name, spec, ()) for name, spec in load_schema()["x-options"].items()}


@cache
def env_index() -> dict[str, Setting]:
    """Every recognised `ST_PROXY_*` name → its setting (loader options included)."""
    index: dict[str, Setting] = {}
    for setting in (*settings().values(), *loader_options().values()):
        for env_name in setting.env_names:
            index[env_name] = setting
    return index


class ValidationMemo(Protocol):
    """Digests of merged profiles already found valid (against this very schema); see `memo_key`."""

    def knows(self, digest: str) -> bool: ...

    def add(self, digest: str) -> None: ...


#: Settings that change what is trusted (TLS, proxies, redirects, credentials over plain http): a profile
#: setting any of them away from its default is validated every time, never looked up in the memo.
SECURITY_SETTINGS = frozenset(
    {
        "tls_verify",
        "ca_file",
        "client_cert",
        "client_key",
        "use_env_proxy",
        "redirects",
        "cleartext_credentials",
    }
)
_SECURITY_PREFIXES = ("oauth", "auth")


def _typed(value: Any, *, secret: bool = False) -> Any:
    """`value` as tagged JSON, so a YAML date and the same text, or `1` and `true`, never look alike.

    Raises TypeError for anything that is not plain JSON data. A secret keeps only its type.
    """
    if value is None:
        return ["null"]
    if isinstance(value, bool):
        return ["bool", value]
    if isinstance(value, int):
        return ["int", value]
    if isinstance(value, float):
        return ["float", repr(value)]
    if isinstance(value, str):
        return ["secret-str"] if secret else ["str", value]
    if isinstance(value, list):
        return ["list", [_typed(item, secret=secret) for item in value]]
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return ["map", [[key, _typed(value[key], secret=secret)] for key in sorted(value)]]
    raise TypeError(type(value).__name__)


def _changes_security(name: str, value: Any) -> bool:
    """Whether `value` moves a security setting (an OAuth one included) away from its schema default."""
    if name not in SECURITY_SETTINGS and not name.startswith(_SECURITY_PREFIXES):
        return False
    setting = settings().get(name)
    if setting is None:
        return True
    default = setting.default
    return type(value) is not type(default) or value != default


def memo_key(instance: Mapping[str, Any]) -> str | None:
    """The digest a memo remembers a valid profile by, or None when the profile must always be validated.

    It covers the schema text and the typed values, with secrets (header values, a URL's userinfo and query
    values) reduced to their types, so the digest reveals no secret. None for a profile that changes a
    security setting, holds a value that is not plain JSON data, or has a URL with whitespace in it.
    """
    from mcp_sse_proxy.redaction import mask_url

    known = settings()
    canonical = []
    try:
        for name in sorted(instance):
            value = instance[name]
            if _changes_security(name, value):
                return None
            setting = known.get(name)
            if name == "url" and isinstance(value, str):
                if any(c.isspace() or not c.isprintable() for c in value):
                    return None
                canonical.append([name, ["url", mask_url(value)]])
            else:
                canonical.append([name, _typed(value, secret=setting is not None and setting.is_secret)])
    except TypeError:
        return None
    text = json.dumps(canonical, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(_read_schema_text().encode() + b"\0" + text.encode()).hexdigest()


def validate(
    instance: Mapping[str, Any],
    *,
    profile: str,
    sources: Mapping[str, str],
    memo: ValidationMemo | None = None,
) -> list[str]:
    """Check one merged profile against the schema; one problem line per violation, no secret echoed.

    With `memo`, a profile already found valid is not checked again: importing jsonschema costs about as
    much as the rest of the start-up, and a desktop client starts the proxy with the same settings each time.
    """
    digest = memo_key(instance) if memo is not None else None
    if memo is not None and digest is not None and memo.knows(digest):
        return []
    from jsonschema import Draft202012Validator  # imported here: costs ~50 ms and only this path needs it

    validator = Draft202012Validator(load_schema())
    problems = []
    for error in sorted(validator.iter_errors(dict(instance)), key=lambda e: list(map(str, e.absolute_path))):
        problems.append(_describe(error, profile=profile, sources=sources))
    if memo is not None and digest is not None and not problems:
        memo.add(digest)
    return problems


def _expected(error: Any, field: str) -> str:
    """What the value should be, in words (never a regular expression)."""
    keyword, value = error.validator, error.validator_value
    if keyword == "type":
        kinds = value if isinstance(value, list) else [value]
        return "must be " + " or ".join(_TYPE_WORDS.get(kind, kind) for kind in kinds)
    if keyword == "enum":
        return "must be one of " + ", ".join(map(str, value))
    if keyword == "minimum":
        return f"must be at least {_number(value)}"
    if keyword == "exclusiveMinimum":
        return f"must be greater than {_number(value)}"
    if keyword == "required":
        return "required but not set"
    if keyword == "pattern":
        return _PATTERN_WORDS.get(field.split(".")[0], "has a form that is not accepted")
    if keyword == "minLength":
        return "must not be empty"
    if keyword == "additionalProperties":
        return "unknown setting"
    return f"breaks the schema rule {keyword!r}"


_TYPE_WORDS = {
    "number": "a number",
    "integer": "a whole number",
    "boolean": "true or false",
    "string": "a string",
    "array": "a list",
    "object": "a mapping",
    "null": "null",
}
#: For each setting with a `pattern`: the rule it states, in words.
_PATTERN_WORDS = {
    "url": "the URL must start with http:// or https://",
    "prefix": "an alias may hold only letters, digits, '_' and '-'",
    "headers": "a header value must be a single line (no line breaks)",
    "oauth_client_metadata_url": "must be an https:// URL with a path (the document's own address)",
}
_HEADER_NAME_WORDS = "is not a valid header name: use letters, digits and !#$%&'*+.^_`|~- only"


def _number(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _describe(error: Any, *, profile: str, sources: Mapping[str, str]) -> str:
    path = [str(part) for part in error.absolute_path]
    if error.validator == "required":
        missing = [name for name in error.validator_value if name not in error.instance]
        field = missing[0] if missing else "?"
        setting = settings().get(field)
        hint = ""
        if setting is not None:
            hint = f" (set {setting.flags[0]}, {setting.env_names[0]} or '{field}:' in a profile)"
        return f"profile {profile!r}: {field}: required but not set{hint}"
    if error.validator == "additionalProperties" and not path:
        return _unknown_keys(error, profile=profile, sources=sources)
    field = ".".join(path) or "(profile)"
    if "propertyNames" in error.schema_path:  # the instance is a header's name, not its value
        source = sources.get(f"{field}.{error.instance}") or sources.get(field)
        where = f" (from {source})" if source else ""
        return f"profile {profile!r}: {field}{where}: {error.instance!r} {_HEADER_NAME_WORDS}"
    source = sources.get(field) or (sources.get(path[0]) if path else None)
    where = f" (from {source})" if source else ""
    top = settings().get(path[0]) if path else None
    shown = ""
    if top is not None and not top.is_secret and isinstance(error.instance, str | int | float | bool):
        shown = f", got {_shown(path[0], error.instance)!r}"
    subject = f"header {path[1]}" if len(path) == 2 and path[0] == "headers" else ""
    expected = _expected(error, field)
    if field == "url" and error.validator == "pattern" and isinstance(error.instance, str):
        expected = _url_words(error.instance)
    if subject:
        expected = expected.replace("a header value", f"the value of header {path[1]}", 1)
        if error.validator == "type":
            expected = f"the value of header {path[1]} {expected} (quote it in YAML)"
    return f"profile {profile!r}: {field}{where}: {expected}{shown}"


def _url_words(url: str) -> str:
    scheme, has_scheme, rest = url.partition("://")
    if has_scheme and scheme.lower() in ("http", "https"):
        return "the URL must not contain spaces or line breaks" if rest else "the URL has no host"
    looks_like_scheme = re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:(?!\d)", url) is not None
    if not has_scheme and url and not looks_like_scheme and not url.startswith("/"):
        return f"the URL must start with http:// or https:// (e.g. http://{url.split()[0]})"
    return _PATTERN_WORDS["url"]


def _shown(name: str, value: Any) -> Any:
    """A value fit to repeat in a message: a URL without its userinfo and query values (tokens)."""
    if settings()[name].kind == "url" and isinstance(value, str):
        from mcp_sse_proxy.redaction import mask_url

        return mask_url(value)
    return value


def _unknown_keys(error: Any, *, profile: str, sources: Mapping[str, str]) -> str:
    import difflib

    known = list(settings())
    lines = []
    for key in sorted(set(error.instance) - set(known)):
        source = sources.get(key)
        where = f" (from {source})" if source else ""
        close = difflib.get_close_matches(key, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        lines.append(f"profile {profile!r}: {key}{where}: unknown setting{hint}")
    return "\n".join(lines)
