"""The two eras of MCP and the bridge between them, as pure functions on plain dicts.

Handshake era: 2024-11-05 … 2025-11-25 (`initialize`, sessions). Modern era: 2026-07-28 (no handshake;
version, capabilities and client info in every request's `_meta`; `server/discover`; MRTR instead of
server→client requests). Sources: basic/versioning.mdx, basic/index.mdx, server/discover.mdx,
basic/patterns/mrtr.mdx, basic/patterns/subscriptions.mdx, server/utilities/caching.mdx (2026-07-28).

Era detection
    `request_era` (stdio, per request), `probe_verdict` (HTTP `server/discover` probe),
    `modern_request_error` (the checks the proxy as a modern stdio server owes a request).
Handshake client → modern server
    `modern_client_capabilities`, `add_modern_meta`, `initialize_result_from_discover`,
    `input_required_to_client_requests`, `retry_params` (MRTR, at most `MAX_INPUT_ROUNDS`),
    `listen_params` (the one `subscriptions/listen` standing in for `resources/subscribe` and
    `list_changed`), `strip_subscription_id` (its notifications, for a client that knows no listen).
Modern client → handshake server
    `discover_result_from_initialize`, `modernize_result`, `map_error_to_modern`,
    `initialize_params_from_modern`, `strip_modern_meta`, `unsupported_version_error`,
    `input_required_result` / `mrtr_retry_parts` (a held server request shown as `input_required`),
    `acknowledged_filter` / `listen_wants` / `tag_subscription` / `listen_acknowledgement` /
    `listen_closed_result` (`subscriptions/listen` emulated from `list_changed` and
    `resources/subscribe`), `LOG_LEVELS` / `log_level_allows` / `lowest_log_level` (per-request
    `logLevel` over one process-wide `logging/setLevel`).
Shared
    `request_meta`, `result_type`, `is_modern_error`, `capability_for_input_request`, and the method sets
    `MRTR_METHODS`, `CACHEABLE_METHODS`, `REISSUABLE_METHODS`, `HANDSHAKE_ONLY_METHODS`,
    `HANDSHAKE_ONLY_NOTIFICATIONS`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from mcp_sse_proxy.protocol.messages import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    JsonId,
    Message,
    error_response,
)

Era = Literal["modern", "handshake"]
ProbeVerdict = Literal["modern", "handshake", "unknown"]

MODERN_VERSIONS: tuple[str, ...] = ("2026-07-28",)
"""Modern protocol versions the proxy speaks, oldest first."""
HANDSHAKE_VERSIONS: tuple[str, ...] = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
"""Handshake-era protocol versions the proxy speaks, oldest first."""
LATEST_MODERN_VERSION = MODERN_VERSIONS[-1]
LATEST_HANDSHAKE_VERSION = HANDSHAKE_VERSIONS[-1]

# `_meta` keys (2026-07-28/basic/index.mdx § _meta).
PROTOCOL_VERSION_KEY = "io.modelcontextprotocol/protocolVersion"
CLIENT_CAPABILITIES_KEY = "io.modelcontextprotocol/clientCapabilities"
CLIENT_INFO_KEY = "io.modelcontextprotocol/clientInfo"
LOG_LEVEL_KEY = "io.modelcontextprotocol/logLevel"
SERVER_INFO_KEY = "io.modelcontextprotocol/serverInfo"
SUBSCRIPTION_ID_KEY = "io.modelcontextprotocol/subscriptionId"
PROGRESS_TOKEN_KEY = "progressToken"
REQUEST_META_KEYS: frozenset[str] = frozenset(
    {PROTOCOL_VERSION_KEY, CLIENT_CAPABILITIES_KEY, CLIENT_INFO_KEY, LOG_LEVEL_KEY}
)
"""The per-request envelope keys; other `io.modelcontextprotocol/*` keys belong to extensions."""

# Error codes (2026-07-28/basic/index.mdx § Error Codes).
HEADER_MISMATCH = -32020
MISSING_REQUIRED_CLIENT_CAPABILITY = -32021
UNSUPPORTED_PROTOCOL_VERSION = -32022
MODERN_ERROR_CODES: frozenset[int] = frozenset(
    {HEADER_MISMATCH, MISSING_REQUIRED_CLIENT_CAPABILITY, UNSUPPORTED_PROTOCOL_VERSION}
)
LEGACY_RESOURCE_NOT_FOUND = -32002
"""Resource not found up to 2025-11-25; 2026-07-28 says -32602 and forbids emitting it."""
URL_ELICITATION_REQUIRED = -32042
"""2025-11-25 only; 2026-07-28 forbids emitting it."""
MCP_RESERVED_ERROR_RANGE = range(-32099, -32019)
"""-32099 … -32020: codes only the MCP specification defines."""

MAX_INPUT_ROUNDS = 10
"""Bound on `input_required` rounds for one client request (the SDKs' default)."""

MRTR_METHODS: frozenset[str] = frozenset({"tools/call", "prompts/get", "resources/read"})
"""The only requests a server may answer with `input_required`."""
CACHEABLE_METHODS: frozenset[str] = frozenset(
    {
        "server/discover",
        "tools/list",
        "prompts/list",
        "resources/list",
        "resources/templates/list",
        "resources/read",
    }
)
"""Methods whose `complete` results carry `ttlMs` and `cacheScope` (server/utilities/caching.mdx)."""
REISSUABLE_METHODS: frozenset[str] = CACHEABLE_METHODS | {"prompts/get", "completion/complete"}
"""Requests without side effects, safe to send again under a new id when a response stream breaks."""
HANDSHAKE_ONLY_METHODS: frozenset[str] = frozenset(
    {"initialize", "ping", "logging/setLevel", "resources/subscribe", "resources/unsubscribe"}
)
"""Requests 2026-07-28 removed: a modern server does not know them."""
HANDSHAKE_ONLY_NOTIFICATIONS: frozenset[str] = frozenset(
    {"notifications/initialized", "notifications/roots/list_changed", "notifications/elicitation/complete"}
)
"""Notifications 2026-07-28 removed."""

_CAPABILITY_BY_INPUT_METHOD: Mapping[str, str] = {
    "sampling/createMessage": "sampling",
    "elicitation/create": "elicitation",
    "roots/list": "roots",
}

LOG_LEVELS: tuple[str, ...] = (
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
)
"""Syslog severities, least severe first (server/utilities/logging.mdx)."""

_UNKNOWN_IMPLEMENTATION = {"name": "unknown", "version": "unknown"}


# --- small readers -------------------------------------------------------------------------------


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def request_meta(params: Any) -> dict[str, Any]:
    """The `_meta` object of a request's params, or `{}` when there is none."""
    return _dict(_dict(params).get("_meta"))


def result_type(result: Any) -> str:
    """A result's `resultType`, with an absent one read as `complete` (basic/index.mdx)."""
    value = _dict(result).get("resultType")
    return value if isinstance(value, str) else "complete"


def is_modern_error(error: Any) -> bool:
    """Whether a JSON-RPC error object carries one of the codes only a modern server sends."""
    code = _dict(error).get("code")
    return isinstance(code, int) and not isinstance(code, bool) and code in MODERN_ERROR_CODES


def capability_for_input_request(method: str) -> str | None:
    """The client capability a server→client request needs (`sampling`, `elicitation`, `roots`), if known."""
    return _CAPABILITY_BY_INPUT_METHOD.get(method)


# --- era detection -------------------------------------------------------------------------------


def request_era(message: Message | Mapping[str, Any]) -> Era | None:
    """The era a stdio request belongs to on its own: modern when `params._meta` carries the protocol
    version key, handshake for `initialize`, None when the request alone does not say."""
    body = message.body if isinstance(message, Message) else message
    body = _dict(body)
    if PROTOCOL_VERSION_KEY in request_meta(body.get("params")):
        return "modern"
    if body.get("method") == "initialize":
        return "handshake"
    return None


def _verdict_from_unsupported_version(data: Any) -> ProbeVerdict:
    supported = _dict(data).get("supported")
    if isinstance(supported, list):
        if any(v in MODERN_VERSIONS for v in supported):
            return "modern"
        if any(v in HANDSHAKE_VERSIONS for v in supported):
            return "handshake"  # a dual-era server without our modern version: its initialize will do
    return "modern"  # positive modern evidence even when no version is shared


def probe_verdict(status: int | None, body: Mapping[str, Any] | None) -> ProbeVerdict:
    """The upstream's era from the answer to a `server/discover` probe POSTed at `LATEST_MODERN_VERSION`.

    `status` is the HTTP status (None: no HTTP answer at all, e.g. a network error or a stream that ended
    before its response); `body` the JSON-RPC response, from JSON or from the SSE stream, if any.
    Modern: a recognised modern error (-32020, -32021, -32022; for -32022 unless `data.supported` names
    only handshake versions, where `initialize` is the way in), a 404 carrying -32601, or a DiscoverResult
    naming a modern version the proxy speaks. Handshake: any other 4xx, a 2xx with a non-modern error or
    no response, a DiscoverResult naming no modern version the proxy speaks, or a malformed one.
    Unknown (no verdict, try again later): no answer, 401/403/407 (authorization first), 408, 429, 5xx.
    """
    if status is None or status in (401, 403, 407, 408, 429) or status >= 500:
        return "unknown"
    body = _dict(body)
    error = body.get("error")
    if isinstance(error, dict):
        code = error.get("code")
        if code == UNSUPPORTED_PROTOCOL_VERSION:
            return _verdict_from_unsupported_version(error.get("data"))
        if is_modern_error(error):
            return "modern"
        if status == 404 and code == -32601:
            return "modern"  # a modern server's unknown-method answer (streamable-http.mdx)
        return "handshake"
    result = body.get("result")
    if 200 <= status < 300 and isinstance(result, dict):
        versions = result.get("supportedVersions")
        if isinstance(versions, list) and any(v in MODERN_VERSIONS for v in versions):
            return "modern"
    return "handshake"


def modern_request_error(message: Message, supported: Sequence[str] = MODERN_VERSIONS) -> Message | None:
    """The error the proxy, as a modern stdio server, answers a modern request with, or None if it is fine.

    -32602 when `_meta` lacks a required key or the version is not a string; -32022 (see
    `unsupported_version_error`) when the version is not in `supported`.
    """
    meta = request_meta(message.params)
    missing = [key for key in (PROTOCOL_VERSION_KEY, CLIENT_CAPABILITIES_KEY) if key not in meta]
    if missing:
        return error_response(message.id, INVALID_PARAMS, f"params._meta lacks {', '.join(missing)}")
    version = meta[PROTOCOL_VERSION_KEY]
    if not isinstance(version, str):
        return error_response(message.id, INVALID_PARAMS, f"{PROTOCOL_VERSION_KEY} must be a string")
    if version not in supported:
        return unsupported_version_error(message.id, version)
    return None


def unsupported_version_error(
    msg_id: JsonId | None,
    requested: Any,
    supported: Sequence[str] = (*reversed(MODERN_VERSIONS), *reversed(HANDSHAKE_VERSIONS)),
) -> Message:
    """A -32022 error response with `data.supported` and `data.requested`.

    By default `supported` lists the modern versions and then the handshake versions the proxy serves
    through `initialize`, newest first (as in the spec's example), so a dual-era client can fall back.
    """
    return error_response(
        msg_id,
        UNSUPPORTED_PROTOCOL_VERSION,
        f"Unsupported protocol version {requested!r}",
        {"supported": list(supported), "requested": requested},
    )


# --- handshake client → modern server ------------------------------------------------------------


def modern_client_capabilities(capabilities: Any) -> dict[str, Any]:
    """A handshake client's `initialize` capabilities as a 2026-07-28 `clientCapabilities` object.

    Keeps `sampling`, `elicitation`, `roots` (the proxy fulfils them by asking the client on stdio),
    `experimental` and `extensions`; drops `tasks` (not a 2026 capability) and `roots.listChanged`
    (2026 has no roots notification).
    """
    capabilities = _dict(capabilities)
    modern: dict[str, Any] = {}
    for key in ("experimental", "sampling", "elicitation", "extensions"):
        if isinstance(capabilities.get(key), dict):
            modern[key] = capabilities[key]
    if isinstance(capabilities.get("roots"), dict):
        modern["roots"] = {k: v for k, v in capabilities["roots"].items() if k != "listChanged"}
    return modern


def add_modern_meta(
    params: Mapping[str, Any] | None,
    version: str,
    client_capabilities: Mapping[str, Any],
    client_info: Mapping[str, Any] | None,
    log_level: str | None,
) -> dict[str, Any]:
    """`params` (a copy) with the per-request `_meta` keys a modern server requires.

    Other `_meta` keys (`progressToken`, trace context, extensions) are kept; the envelope keys are set
    from the arguments, `clientInfo` and `logLevel` only when given. Pass capabilities already limited by
    `modern_client_capabilities`.
    """
    out = dict(params or {})
    meta = dict(_dict(out.get("_meta")))
    meta[PROTOCOL_VERSION_KEY] = version
    meta[CLIENT_CAPABILITIES_KEY] = dict(client_capabilities)
    if client_info is not None:
        meta[CLIENT_INFO_KEY] = dict(client_info)
    else:
        meta.pop(CLIENT_INFO_KEY, None)
    if log_level is not None:
        meta[LOG_LEVEL_KEY] = log_level
    else:
        meta.pop(LOG_LEVEL_KEY, None)
    out["_meta"] = meta
    return out


def initialize_result_from_discover(
    discover_result: Mapping[str, Any], client_requested_version: Any
) -> dict[str, Any]:
    """The `initialize` result the proxy answers a handshake client with, built from upstream discovery.

    The version is the client's when the proxy speaks it in the handshake era, else the latest handshake
    version; capabilities and `instructions` come from the DiscoverResult, `serverInfo` from its
    `_meta` (a placeholder when the server sent none: the field is required).
    """
    version = (
        client_requested_version
        if client_requested_version in HANDSHAKE_VERSIONS
        else LATEST_HANDSHAKE_VERSION
    )
    server_info = _dict(discover_result.get("_meta")).get(SERVER_INFO_KEY)
    result: dict[str, Any] = {
        "protocolVersion": version,
        "capabilities": dict(_dict(discover_result.get("capabilities"))),
        "serverInfo": dict(server_info) if isinstance(server_info, dict) else dict(_UNKNOWN_IMPLEMENTATION),
    }
    if isinstance(instructions := discover_result.get("instructions"), str):
        result["instructions"] = instructions
    return result


def input_required_to_client_requests(result: Mapping[str, Any]) -> list[tuple[str, str, Any]]:
    """The `(key, method, params)` of each entry of an `input_required` result's `inputRequests`.

    Entries without a string method are skipped; `params` is passed on as the server sent it (None when
    absent). The caller checks each method against what the client declared
    (`capability_for_input_request`).
    """
    requests: list[tuple[str, str, Any]] = []
    for key, entry in _dict(result.get("inputRequests")).items():
        if isinstance(entry, dict) and isinstance(method := entry.get("method"), str):
            requests.append((key, method, entry.get("params")))
    return requests


def retry_params(
    original_params: Mapping[str, Any] | None,
    input_responses: Mapping[str, Any] | None,
    request_state: str | None,
) -> dict[str, Any]:
    """The params of an MRTR retry: the original params plus this round's `inputResponses` and the
    `requestState` exactly as the server sent it; either key is left out when None (a previous round's
    value never leaks into the next)."""
    out = {k: v for k, v in (original_params or {}).items() if k not in ("inputResponses", "requestState")}
    if input_responses is not None:
        out["inputResponses"] = dict(input_responses)
    if request_state is not None:
        out["requestState"] = request_state
    return out


def listen_params(
    meta: Mapping[str, Any],
    *,
    tools_list_changed: bool = False,
    prompts_list_changed: bool = False,
    resources_list_changed: bool = False,
    resource_uris: Iterable[str] = (),
) -> dict[str, Any]:
    """Params of the `subscriptions/listen` that stands in for a handshake client's subscriptions.

    `meta` is the request `_meta` (see `add_modern_meta`); only the requested kinds appear in the filter.
    """
    notifications: dict[str, Any] = {}
    if tools_list_changed:
        notifications["toolsListChanged"] = True
    if prompts_list_changed:
        notifications["promptsListChanged"] = True
    if resources_list_changed:
        notifications["resourcesListChanged"] = True
    uris = sorted(set(resource_uris))
    if uris:
        notifications["resourceSubscriptions"] = uris
    return {"_meta": dict(meta), "notifications": notifications}


def strip_subscription_id(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A listen notification's params without `subscriptionId` (and without `_meta` if that empties it)."""
    if params is None:
        return None
    out = dict(params)
    meta = {k: v for k, v in _dict(out.get("_meta")).items() if k != SUBSCRIPTION_ID_KEY}
    if meta:
        out["_meta"] = meta
    else:
        out.pop("_meta", None)
    return out


# --- modern client → handshake server ------------------------------------------------------------


def _modern_server_capabilities(capabilities: Any) -> dict[str, Any]:
    # `tasks` is a 2025-11-25 capability with no 2026 counterpart (tasks became an extension), and the
    # proxy does not bridge it; everything else means the same in both eras.
    return {k: v for k, v in _dict(capabilities).items() if k != "tasks"}


def discover_result_from_initialize(
    init_result: Mapping[str, Any], supported_versions: Sequence[str]
) -> dict[str, Any]:
    """The DiscoverResult the proxy answers a modern client with, built from the upstream's initialize.

    Has every required field (`resultType`, `supportedVersions`, `capabilities`, `ttlMs` 0,
    `cacheScope` "private") plus `instructions` when given and `serverInfo` in `_meta`.
    """
    server_info = init_result.get("serverInfo")
    if not isinstance(server_info, dict):
        server_info = _UNKNOWN_IMPLEMENTATION
    result: dict[str, Any] = {
        "resultType": "complete",
        "supportedVersions": list(supported_versions),
        "capabilities": _modern_server_capabilities(init_result.get("capabilities")),
        "ttlMs": 0,
        "cacheScope": "private",
        "_meta": {SERVER_INFO_KEY: dict(server_info)},
    }
    if isinstance(instructions := init_result.get("instructions"), str):
        result["instructions"] = instructions
    return result


def modernize_result(method: str | None, result: Any, server_info: Mapping[str, Any] | None) -> Any:
    """A handshake server's result as a 2026-07-28 result (a copy; non-objects are returned as they are).

    Adds `resultType: "complete"` when absent; for a complete result of a cacheable method, `ttlMs` 0
    and `cacheScope` "private" unless valid values are present (the conservative choice: the proxy cannot
    know whether a result is user-specific); and `serverInfo` in `_meta` unless one is there.
    """
    if not isinstance(result, dict):
        return result
    out = dict(result)
    out.setdefault("resultType", "complete")
    if method in CACHEABLE_METHODS and result_type(out) == "complete":
        ttl = out.get("ttlMs")
        if not (isinstance(ttl, int) and not isinstance(ttl, bool) and ttl >= 0):
            out["ttlMs"] = 0
        if out.get("cacheScope") not in ("public", "private"):
            out["cacheScope"] = "private"
    if server_info is not None:
        meta = dict(_dict(out.get("_meta")))
        meta.setdefault(SERVER_INFO_KEY, dict(server_info))
        out["_meta"] = meta
    return out


def map_error_to_modern(error: Mapping[str, Any]) -> dict[str, Any]:
    """A handshake server's JSON-RPC error object as one a modern client may receive (a copy).

    -32002 (resource not found) becomes -32602. Any code in -32099 … -32020 becomes -32603 with the
    original code named in the message: a handshake server cannot mean what 2026-07-28 assigns there
    (-32020/-32021/-32022 would be taken as era evidence or trigger retries), and the rest (e.g. -32042)
    must not be emitted at all. Every other code, message and `data` pass unchanged.
    """
    out = dict(error)
    code = out.get("code")
    if code == LEGACY_RESOURCE_NOT_FOUND:
        out["code"] = INVALID_PARAMS
    elif isinstance(code, int) and not isinstance(code, bool) and code in MCP_RESERVED_ERROR_RANGE:
        out["code"] = INTERNAL_ERROR
        message = out.get("message")
        out["message"] = f"{message if isinstance(message, str) else 'upstream error'} (upstream code {code})"
    return out


def initialize_params_from_modern(
    meta: Mapping[str, Any],
    protocol_version: str = LATEST_HANDSHAKE_VERSION,
    default_client_info: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The upstream `initialize` params for a modern client, from one of its requests' `_meta`.

    Capabilities carry `sampling`, `elicitation` and `roots` only as the client declared them (the proxy
    turns such server requests into `input_required`), plus `experimental` and `extensions`; `roots` never
    claims `listChanged` (a modern client cannot send that notification). `clientInfo` is the client's,
    else `default_client_info`, else a placeholder.
    """
    capabilities = modern_client_capabilities(meta.get(CLIENT_CAPABILITIES_KEY))
    client_info = meta.get(CLIENT_INFO_KEY)
    if not isinstance(client_info, dict):
        client_info = default_client_info if default_client_info is not None else _UNKNOWN_IMPLEMENTATION
    return {
        "protocolVersion": protocol_version,
        "capabilities": capabilities,
        "clientInfo": dict(client_info),
    }


def strip_modern_meta(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """`params` (a copy) without the per-request envelope keys, for a handshake server.

    Removes protocolVersion, clientCapabilities, clientInfo and logLevel; keeps `progressToken`, trace
    context and every other key (official extensions also live under `io.modelcontextprotocol/`). Drops
    `_meta` when nothing is left in it.
    """
    if params is None:
        return None
    out = dict(params)
    if "_meta" in out:
        meta = {k: v for k, v in _dict(out["_meta"]).items() if k not in REQUEST_META_KEYS}
        if meta:
            out["_meta"] = meta
        else:
            del out["_meta"]
    return out


def input_required_result(
    requests: Iterable[tuple[str, str, Any]],
    request_state: str | None,
    server_info: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An `input_required` result asking the client for `(key, method, params)` requests.

    This is how a server→client request from a handshake server (held by the proxy) reaches a modern
    client; `request_state` lets the proxy recognise the retry. Carries no caching fields.
    """
    inputs: dict[str, Any] = {}
    for key, method, params in requests:
        entry: dict[str, Any] = {"method": method}
        if params is not None:
            entry["params"] = params
        inputs[key] = entry
    result: dict[str, Any] = {"resultType": "input_required"}
    if inputs:
        result["inputRequests"] = inputs
    if request_state is not None:
        result["requestState"] = request_state
    if server_info is not None:
        result["_meta"] = {SERVER_INFO_KEY: dict(server_info)}
    return result


def mrtr_retry_parts(params: Any) -> tuple[dict[str, Any] | None, str | None]:
    """The `inputResponses` and `requestState` of a request (None for each it does not carry)."""
    params = _dict(params)
    responses = params.get("inputResponses")
    state = params.get("requestState")
    return (responses if isinstance(responses, dict) else None, state if isinstance(state, str) else None)


def acknowledged_filter(requested: Any, server_capabilities: Any) -> dict[str, Any]:
    """The part of a `subscriptions/listen` filter a handshake server can honour, judged by its capabilities.

    List changes need `listChanged` on `tools`, `prompts` or `resources`; resource subscriptions need
    `resources.subscribe`. Kinds it cannot honour are left out, as the acknowledgement requires.
    """
    requested = _dict(requested)
    caps = _dict(server_capabilities)
    honoured: dict[str, Any] = {}
    for field, capability in (
        ("toolsListChanged", "tools"),
        ("promptsListChanged", "prompts"),
        ("resourcesListChanged", "resources"),
    ):
        if requested.get(field) is True and _dict(caps.get(capability)).get("listChanged") is True:
            honoured[field] = True
    uris = requested.get("resourceSubscriptions")
    if isinstance(uris, list) and uris and _dict(caps.get("resources")).get("subscribe") is True:
        honoured["resourceSubscriptions"] = [u for u in uris if isinstance(u, str)]
    return honoured


_LIST_CHANGED_FILTER_FIELD: Mapping[str, str] = {
    "notifications/tools/list_changed": "toolsListChanged",
    "notifications/prompts/list_changed": "promptsListChanged",
    "notifications/resources/list_changed": "resourcesListChanged",
}


def listen_wants(listen_filter: Any, method: str, params: Any) -> bool:
    """Whether an upstream notification belongs on a listen stream with this (acknowledged) filter."""
    listen_filter = _dict(listen_filter)
    if (field := _LIST_CHANGED_FILTER_FIELD.get(method)) is not None:
        return listen_filter.get(field) is True
    if method == "notifications/resources/updated":
        uris = listen_filter.get("resourceSubscriptions")
        return isinstance(uris, list) and _dict(params).get("uri") in uris
    return False


def tag_subscription(params: Mapping[str, Any] | None, subscription_id: JsonId) -> dict[str, Any]:
    """`params` (a copy) with `_meta` `subscriptionId` set, replacing any other value (also how a listen
    stream whose request id the proxy changed upstream gets the client's id back)."""
    out = dict(params or {})
    meta = dict(_dict(out.get("_meta")))
    meta[SUBSCRIPTION_ID_KEY] = subscription_id
    out["_meta"] = meta
    return out


def listen_acknowledgement(subscription_id: JsonId, honoured: Mapping[str, Any]) -> dict[str, Any]:
    """The `notifications/subscriptions/acknowledged` message (a JSON-RPC object) opening a listen stream."""
    return {
        "jsonrpc": "2.0",
        "method": "notifications/subscriptions/acknowledged",
        "params": {"_meta": {SUBSCRIPTION_ID_KEY: subscription_id}, "notifications": dict(honoured)},
    }


def listen_closed_result(
    subscription_id: JsonId, server_info: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The result that ends a `subscriptions/listen` gracefully."""
    meta: dict[str, Any] = {SUBSCRIPTION_ID_KEY: subscription_id}
    if server_info is not None:
        meta[SERVER_INFO_KEY] = dict(server_info)
    return {"resultType": "complete", "_meta": meta}


def log_level_allows(level: Any, threshold: Any) -> bool:
    """Whether a message at `level` passes a request's `logLevel` `threshold` (unknown levels pass none)."""
    if level not in LOG_LEVELS or threshold not in LOG_LEVELS:
        return False
    return LOG_LEVELS.index(level) >= LOG_LEVELS.index(threshold)


def lowest_log_level(levels: Iterable[Any]) -> str | None:
    """The least severe of the valid levels given (what one process-wide `logging/setLevel` must ask for)."""
    known = [LOG_LEVELS.index(level) for level in levels if level in LOG_LEVELS]
    return LOG_LEVELS[min(known)] if known else None
