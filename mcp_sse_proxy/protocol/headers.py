"""Request metadata headers of the 2026-07-28 Streamable HTTP transport, as pure functions.

A modern POST mirrors parts of its body into headers (basic/transports/streamable-http.mdx § Request
Metadata): `MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name` (`params.name` or `params.uri`) and one
`Mcp-Param-{Name}` per tool parameter whose schema carries an `x-mcp-header` annotation. This module holds:

- the value codec: `encode_header_value` / `decode_header_value` (the `=?base64?…?=` sentinel) and
  `param_header_value` (JSON scalar → header value, or no header);
- `validate_x_mcp_headers`: the annotation rules of server/tools.mdx, giving header name → property path
  or the reason the tool is invalid;
- `ToolHeaderCache`: the per-relay memory of each listed tool's annotations, which filters invalid tools
  out of every `tools/list` page and builds the headers of each request (`headers_for`).

Header names are written in the spec's canonical spelling; HTTP compares them case-insensitively.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

PROTOCOL_VERSION_HEADER = "MCP-Protocol-Version"
METHOD_HEADER = "Mcp-Method"
NAME_HEADER = "Mcp-Name"
PARAM_HEADER_PREFIX = "Mcp-Param-"
X_MCP_HEADER = "x-mcp-header"

NAME_PARAM_BY_METHOD: Mapping[str, str] = {
    "tools/call": "name",
    "prompts/get": "name",
    "resources/read": "uri",
}
"""Methods that carry `Mcp-Name`, and the `params` key whose value it mirrors."""

_SENTINEL_PREFIX = "=?base64?"
_SENTINEL_SUFFIX = "?="
# Visible ASCII and space. Tab is RFC 9110-legal inside a field value, but the spec's encoding rule names
# control characters (tab is one) as needing the sentinel, and the official SDK encodes it: a conforming
# server decodes either form to the same value, so the sentinel is the reading that is safe under both.
_PLAIN_VALUE = re.compile(r"[\x20-\x7e]*")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_ANNOTATABLE_TYPES = frozenset({"string", "integer", "boolean"})

# JSON Schema keywords whose values are subschemas. Only `properties` keeps an annotation statically
# reachable; crossing any other one (or being the root itself) makes an annotation found there invalid.
# Instance-data keywords (`default`, `const`, `enum`, `examples`) are never entered, and `$ref` is never
# followed: its targets live under `$defs`/`definitions`, which are walked as unreachable positions.
_SUBSCHEMA_KEYWORDS = frozenset(
    {
        "items",
        "additionalItems",
        "contains",
        "additionalProperties",
        "propertyNames",
        "unevaluatedItems",
        "unevaluatedProperties",
        "not",
        "if",
        "then",
        "else",
        "contentSchema",
    }
)
_SUBSCHEMA_LIST_KEYWORDS = frozenset({"allOf", "anyOf", "oneOf", "prefixItems", "items"})
_SUBSCHEMA_MAP_KEYWORDS = frozenset(
    {"patternProperties", "dependentSchemas", "dependencies", "$defs", "definitions"}
)


def _looks_like_sentinel(value: str) -> bool:
    # Matched without regard to case: the markers are case-sensitive, but encoding a look-alike costs
    # nothing and keeps a lenient decoder somewhere on the path from misreading it.
    folded = value.lower()
    return folded.startswith(_SENTINEL_PREFIX) and folded.endswith(_SENTINEL_SUFFIX)


def is_plain_header_value(value: str) -> bool:
    """Whether `value` can go into an HTTP header verbatim: visible ASCII and inner spaces only."""
    return _PLAIN_VALUE.fullmatch(value) is not None and value == value.strip(" ")


def encode_header_value(value: str) -> str:
    """`value` as an `Mcp-Name` / `Mcp-Param-*` header value: verbatim when plain, else the Base64 sentinel.

    Plain means visible ASCII and spaces, no leading or trailing space, and not shaped like
    `=?base64?…?=`; anything else becomes `=?base64?{Base64 of the UTF-8}?=` (lowercase markers).
    """
    if is_plain_header_value(value) and not _looks_like_sentinel(value):
        return value
    # surrogatepass: a lone surrogate from a JSON `\ud800` escape still gets a (lossless) encoding.
    payload = base64.b64encode(value.encode("utf-8", "surrogatepass")).decode("ascii")
    return f"{_SENTINEL_PREFIX}{payload}{_SENTINEL_SUFFIX}"


def decode_header_value(value: str) -> str:
    """Inverse of `encode_header_value`; raises `ValueError` for a malformed sentinel.

    A value without the exact lowercase markers is returned as it is. Inside the markers the payload must be
    canonical Base64 of UTF-8 text.
    """
    if not (
        value.startswith(_SENTINEL_PREFIX)
        and value.endswith(_SENTINEL_SUFFIX)
        and len(value) >= len(_SENTINEL_PREFIX) + len(_SENTINEL_SUFFIX)
    ):
        return value
    payload = value[len(_SENTINEL_PREFIX) : len(value) - len(_SENTINEL_SUFFIX)]
    try:
        raw = base64.b64decode(payload, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"malformed base64 in header value: {exc}") from None
    if base64.b64encode(raw).decode("ascii") != payload:
        raise ValueError("non-canonical base64 in header value")
    try:
        return raw.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError as exc:
        raise ValueError(f"header value is not UTF-8: {exc}") from None


def param_header_value(value: Any) -> str | None:
    """The `Mcp-Param-*` header value for a JSON argument value, or None when no header is sent.

    Strings are sent as they are (through `encode_header_value`), integers in decimal, booleans as
    `true`/`false`; `None` (absent or JSON null) sends no header. A float with an integral value is an
    integer written as `42.0` and goes out as `42`; other finite floats go out in their shortest decimal
    form so the server reports the argument problem itself. Objects and arrays send no header.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        try:
            return str(value)
        except ValueError:  # beyond the interpreter's int-to-str digit limit
            return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return encode_header_value(value)
    return None


def _schema_positions(root: Any) -> Iterator[tuple[tuple[str, ...] | None, dict[str, Any]]]:
    """Every subschema of `root` with its chain of `properties` keys (None once off such a chain)."""
    stack: list[tuple[tuple[str, ...] | None, Any]] = [((), root)]
    while stack:
        path, node = stack.pop()
        if not isinstance(node, dict):
            continue  # boolean schemas, or junk where a schema should be
        yield path, node
        for keyword, sub in node.items():
            if keyword == "properties" and isinstance(sub, dict):
                for name, prop in sub.items():
                    stack.append(((*path, name) if path is not None else None, prop))
            elif keyword in _SUBSCHEMA_KEYWORDS and isinstance(sub, dict):
                stack.append((None, sub))
            elif keyword in _SUBSCHEMA_LIST_KEYWORDS and isinstance(sub, list):
                stack.extend((None, item) for item in sub)
            elif keyword in _SUBSCHEMA_MAP_KEYWORDS and isinstance(sub, dict):
                stack.extend((None, item) for item in sub.values())


def _annotatable_type(schema: dict[str, Any]) -> str | None:
    """The primitive type an annotated property declares, or None if it declares no single allowed one.

    `["string", "null"]` (a nullable string) counts as string: null sends no header, so the annotation
    is well defined. The official SDK is stricter here and rejects any `type` that is not a string.
    """
    declared = schema.get("type")
    if isinstance(declared, str):
        return declared if declared in _ANNOTATABLE_TYPES else None
    if isinstance(declared, list) and all(isinstance(t, str) for t in declared):
        kinds = {t for t in declared if t != "null"}
        if len(kinds) == 1 and (kind := next(iter(kinds))) in _ANNOTATABLE_TYPES:
            return kind
    return None


def validate_x_mcp_headers(input_schema: Any) -> dict[str, list[str]] | str:
    """Header name → property path for each `x-mcp-header` in a tool's `inputSchema`, or why it is invalid.

    The names are the annotation values as written (`Mcp-Param-{name}` keeps their case). A returned
    `str` is the reason the whole tool must be dropped from `tools/list`: an annotation that is not a
    non-empty RFC 9110 token, that repeats another ignoring case, that sits on a property whose type is
    not string, integer or boolean, or that is not reachable from the root through `properties` alone.
    A schema without annotations (or without a schema at all) gives `{}`.
    """
    found: dict[str, list[str]] = {}
    seen: dict[str, str] = {}
    for path, schema in _schema_positions(input_schema):
        if X_MCP_HEADER not in schema:
            continue
        name = schema[X_MCP_HEADER]
        shown = repr(name) if isinstance(name, str) else f"of type {type(name).__name__}"
        if not path:
            where = "the schema root" if path == () else "a position not reachable through `properties` alone"
            return f"{X_MCP_HEADER} {shown} at {where}"
        where = "/".join(path)
        if not isinstance(name, str) or _TOKEN.fullmatch(name) is None:
            return f"{X_MCP_HEADER} {shown} on property {where!r} is not an HTTP token"
        if _annotatable_type(schema) is None:
            return (
                f"{X_MCP_HEADER} {name!r} on property {where!r} whose type {schema.get('type')!r} "
                "is not string, integer or boolean"
            )
        if (other := seen.get(name.lower())) is not None:
            return f"{X_MCP_HEADER} {name!r} on property {where!r} repeats the one on {other!r}"
        seen[name.lower()] = where
        found[name] = list(path)
    return found


def _value_at(arguments: Any, path: list[str]) -> Any:
    node = arguments
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


class ToolHeaderCache:
    """What the relay remembers of `tools/list` to build the `Mcp-Param-*` headers of `tools/call`.

    Every listed page goes through `filter_tools_page`, which drops tools with invalid annotations (the
    client MUST NOT see them) and remembers the annotations of the others. A tool never listed, or listed
    as invalid, gets no `Mcp-Param-*` headers; the server then answers -32020 and the relay re-lists.
    """

    def __init__(self, forwarded_env: Mapping[str, str] | None = None) -> None:
        self._annotations: dict[str, dict[str, list[str]]] = {}
        # What the proxy itself puts into arguments (`arguments.env`, see envforward.py) is never copied into
        # a header, whatever a server's annotations ask: headers reach every intermediary's logs.
        forwarded = dict(forwarded_env or {})
        self._injected_paths = {("env", name) for name in forwarded}
        self._withheld = frozenset(value for value in forwarded.values() if len(value) >= 4)

    def filter_tools_page(self, result: Any, *, first_page: bool = False) -> tuple[Any, list[str]]:
        """The page without its invalid tools, and one log line per dropped tool.

        Returns `result` itself when nothing was dropped, so the caller may relay the original bytes.
        `first_page` says the request had no cursor: a first page without `nextCursor` is the whole
        listing, and tools missing from it are forgotten.
        """
        if not isinstance(result, dict) or not isinstance(result.get("tools"), list):
            return result, []
        kept: list[Any] = []
        reasons: list[str] = []
        listed: set[str] = set()
        for tool in result["tools"]:
            name = tool.get("name") if isinstance(tool, dict) else None
            if not isinstance(name, str):
                kept.append(tool)  # not ours to judge: the client validates tool shapes
                continue
            outcome = validate_x_mcp_headers(tool.get("inputSchema"))
            if isinstance(outcome, str):
                self._annotations.pop(name, None)
                reasons.append(f"dropping tool {name!r} from tools/list: {outcome}")
                continue
            self._annotations[name] = outcome
            listed.add(name)
            kept.append(tool)
        if first_page and result.get("nextCursor") is None:
            self._annotations = {n: a for n, a in self._annotations.items() if n in listed}
        if not reasons:
            return result, []
        return {**result, "tools": kept}, reasons

    def knows(self, tool_name: str) -> bool:
        """Whether `tool_name` was listed as a valid tool (so its `Mcp-Param-*` headers are known)."""
        return tool_name in self._annotations

    def forget(self) -> None:
        """Drop everything (for a new upstream, or a server that changed era)."""
        self._annotations.clear()

    def param_headers(self, tool_name: str, arguments: Any) -> dict[str, str]:
        """The `Mcp-Param-*` headers of a `tools/call` of `tool_name` with `arguments`."""
        headers: dict[str, str] = {}
        for name, path in self._annotations.get(tool_name, {}).items():
            raw = _value_at(arguments, path)
            if tuple(path) in self._injected_paths or (isinstance(raw, str) and raw in self._withheld):
                continue  # the server then answers -32020; a secret of ours is not worth that header
            value = param_header_value(raw)
            if value is not None:
                headers[f"{PARAM_HEADER_PREFIX}{name}"] = value
        return headers

    def headers_for(self, method: str, params: Any) -> dict[str, str]:
        """The request metadata headers of a modern request: version, method, name and parameters.

        `MCP-Protocol-Version` is taken from `params._meta` and, like `Mcp-Method`, only sent when it is
        a plain header value (these two headers have no Base64 form; the server then answers -32020,
        which is the right answer to such a request). `Mcp-Name` and `Mcp-Param-*` are encoded.
        """
        params = params if isinstance(params, dict) else {}
        headers: dict[str, str] = {}
        meta = params.get("_meta")
        version = meta.get("io.modelcontextprotocol/protocolVersion") if isinstance(meta, dict) else None
        if isinstance(version, str) and is_plain_header_value(version):
            headers[PROTOCOL_VERSION_HEADER] = version
        if is_plain_header_value(method):
            headers[METHOD_HEADER] = method
        name_key = NAME_PARAM_BY_METHOD.get(method)
        if name_key is not None and isinstance(name := params.get(name_key), str):
            headers[NAME_HEADER] = encode_header_value(name)
        if method == "tools/call" and isinstance(name := params.get("name"), str):
            headers.update(self.param_headers(name, params.get("arguments")))
        return headers
