"""A handshake-era client in front of a 2026-07-28-only server: the rules `HandshakeToModern` applies.

`_meta` added to every request, `initialize` answered from `server/discover`, `input_required` rounds
turned into requests to the client (at most `MAX_INPUT_ROUNDS`), and one `subscriptions/listen` standing in
for `resources/subscribe` and `list_changed` (its notifications stripped of the listen's id).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .spec import (
    CLIENT_CAPABILITIES_KEY,
    CLIENT_INFO_KEY,
    HANDSHAKE_VERSIONS,
    LATEST_HANDSHAKE_VERSION,
    LOG_LEVEL_KEY,
    PROTOCOL_VERSION_KEY,
    SERVER_INFO_KEY,
    SUBSCRIPTION_ID_KEY,
    UNKNOWN_IMPLEMENTATION,
    as_dict,
)


def modern_client_capabilities(capabilities: Any) -> dict[str, Any]:
    """A handshake client's `initialize` capabilities as a 2026-07-28 `clientCapabilities` object.

    Keeps `sampling`, `elicitation`, `roots` (the proxy fulfils them by asking the client on stdio),
    `experimental` and `extensions`; drops `tasks` (not a 2026 capability) and `roots.listChanged`
    (2026 has no roots notification).
    """
    capabilities = as_dict(capabilities)
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
    meta = dict(as_dict(out.get("_meta")))
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
    server_info = as_dict(discover_result.get("_meta")).get(SERVER_INFO_KEY)
    result: dict[str, Any] = {
        "protocolVersion": version,
        "capabilities": dict(as_dict(discover_result.get("capabilities"))),
        "serverInfo": dict(server_info) if isinstance(server_info, dict) else dict(UNKNOWN_IMPLEMENTATION),
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
    for key, entry in as_dict(result.get("inputRequests")).items():
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


def listen_filter(server_capabilities: Any, resource_uris: Iterable[str]) -> dict[str, Any]:
    """The `notifications` filter of the one `subscriptions/listen` standing in for a handshake client's
    interest: every list change the server announces (`listChanged`), and the subscribed URIs when the
    server supports `resources.subscribe`. Empty when there is nothing to listen for."""
    caps = as_dict(server_capabilities)
    wanted: dict[str, Any] = {}
    for capability, field in (
        ("tools", "toolsListChanged"),
        ("prompts", "promptsListChanged"),
        ("resources", "resourcesListChanged"),
    ):
        if as_dict(caps.get(capability)).get("listChanged"):
            wanted[field] = True
    uris = list(dict.fromkeys(resource_uris))
    if uris and as_dict(caps.get("resources")).get("subscribe"):
        wanted["resourceSubscriptions"] = uris
    return wanted


def strip_subscription_id(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A listen notification's params without `subscriptionId` (and without `_meta` if that empties it)."""
    if params is None:
        return None
    out = dict(params)
    meta = {k: v for k, v in as_dict(out.get("_meta")).items() if k != SUBSCRIPTION_ID_KEY}
    if meta:
        out["_meta"] = meta
    else:
        out.pop("_meta", None)
    return out
