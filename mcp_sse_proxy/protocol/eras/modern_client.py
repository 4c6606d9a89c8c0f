"""A 2026-07-28 client in front of a handshake-era server: the rules `ModernToHandshake` applies.

`server/discover` answered from `initialize`, results and errors given their modern shapes, the modern
`_meta` keys stripped, a held server request shown as `input_required`, `subscriptions/listen` emulated
from `list_changed` and `resources/subscribe`, and per-request `logLevel` over one `logging/setLevel`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..messages import INTERNAL_ERROR, INVALID_PARAMS, JsonId
from .handshake_client import modern_client_capabilities
from .spec import (
    CACHEABLE_METHODS,
    CLIENT_CAPABILITIES_KEY,
    CLIENT_INFO_KEY,
    LATEST_HANDSHAKE_VERSION,
    LEGACY_RESOURCE_NOT_FOUND,
    LOG_LEVELS,
    MCP_RESERVED_ERROR_RANGE,
    REQUEST_META_KEYS,
    SERVER_INFO_KEY,
    SUBSCRIPTION_ID_KEY,
    UNKNOWN_IMPLEMENTATION,
    as_dict,
    result_type,
)


def _modern_server_capabilities(capabilities: Any) -> dict[str, Any]:
    # `tasks` is a 2025-11-25 capability with no 2026 counterpart (tasks became an extension), and the
    # proxy does not bridge it; everything else means the same in both eras.
    return {k: v for k, v in as_dict(capabilities).items() if k != "tasks"}


def discover_result_from_initialize(
    init_result: Mapping[str, Any], supported_versions: Sequence[str]
) -> dict[str, Any]:
    """The DiscoverResult the proxy answers a modern client with, built from the upstream's initialize.

    Has every required field (`resultType`, `supportedVersions`, `capabilities`, `ttlMs` 0,
    `cacheScope` "private") plus `instructions` when given and `serverInfo` in `_meta`.
    """
    server_info = init_result.get("serverInfo")
    if not isinstance(server_info, dict):
        server_info = UNKNOWN_IMPLEMENTATION
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
        meta = dict(as_dict(out.get("_meta")))
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
        client_info = default_client_info if default_client_info is not None else UNKNOWN_IMPLEMENTATION
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
        meta = {k: v for k, v in as_dict(out["_meta"]).items() if k not in REQUEST_META_KEYS}
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
    params = as_dict(params)
    responses = params.get("inputResponses")
    state = params.get("requestState")
    return (responses if isinstance(responses, dict) else None, state if isinstance(state, str) else None)


def acknowledged_filter(requested: Any, server_capabilities: Any) -> dict[str, Any]:
    """The part of a `subscriptions/listen` filter a handshake server can honour, judged by its capabilities.

    List changes need `listChanged` on `tools`, `prompts` or `resources`; resource subscriptions need
    `resources.subscribe`. Kinds it cannot honour are left out, as the acknowledgement requires.
    """
    requested = as_dict(requested)
    caps = as_dict(server_capabilities)
    honoured: dict[str, Any] = {}
    for field, capability in (
        ("toolsListChanged", "tools"),
        ("promptsListChanged", "prompts"),
        ("resourcesListChanged", "resources"),
    ):
        if requested.get(field) is True and as_dict(caps.get(capability)).get("listChanged") is True:
            honoured[field] = True
    uris = requested.get("resourceSubscriptions")
    if isinstance(uris, list) and uris and as_dict(caps.get("resources")).get("subscribe") is True:
        honoured["resourceSubscriptions"] = [u for u in uris if isinstance(u, str)]
    return honoured


_LIST_CHANGED_FILTER_FIELD: Mapping[str, str] = {
    "notifications/tools/list_changed": "toolsListChanged",
    "notifications/prompts/list_changed": "promptsListChanged",
    "notifications/resources/list_changed": "resourcesListChanged",
}


def listen_wants(listen_filter: Any, method: str, params: Any) -> bool:
    """Whether an upstream notification belongs on a listen stream with this (acknowledged) filter."""
    listen_filter = as_dict(listen_filter)
    if (field := _LIST_CHANGED_FILTER_FIELD.get(method)) is not None:
        return listen_filter.get(field) is True
    if method == "notifications/resources/updated":
        uris = listen_filter.get("resourceSubscriptions")
        return isinstance(uris, list) and as_dict(params).get("uri") in uris
    return False


def tag_subscription(params: Mapping[str, Any] | None, subscription_id: JsonId) -> dict[str, Any]:
    """`params` (a copy) with `_meta` `subscriptionId` set, replacing any other value (also how a listen
    stream whose request id the proxy changed upstream gets the client's id back)."""
    out = dict(params or {})
    meta = dict(as_dict(out.get("_meta")))
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


def log_level_allows(level: Any, threshold: Any) -> bool:
    """Whether a message at `level` passes a request's `logLevel` `threshold` (unknown levels pass none)."""
    if level not in LOG_LEVELS or threshold not in LOG_LEVELS:
        return False
    return LOG_LEVELS.index(level) >= LOG_LEVELS.index(threshold)


def lowest_log_level(levels: Iterable[Any]) -> str | None:
    """The least severe of the valid levels given (what one process-wide `logging/setLevel` must ask for)."""
    known = [LOG_LEVELS.index(level) for level in levels if level in LOG_LEVELS]
    return LOG_LEVELS[min(known)] if known else None
