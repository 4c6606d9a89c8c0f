"""Which era a peer speaks: per stdio request, from the HTTP `server/discover` probe, and the checks the proxy
owes a modern request as a modern stdio server."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from ..messages import INVALID_PARAMS, JsonId, Message, error_response
from .spec import (
    CLIENT_CAPABILITIES_KEY,
    HANDSHAKE_VERSIONS,
    MODERN_VERSIONS,
    PROTOCOL_VERSION_KEY,
    UNSUPPORTED_PROTOCOL_VERSION,
    Era,
    as_dict,
    is_modern_error,
    request_meta,
)

ProbeVerdict = Literal["modern", "handshake", "unknown"]


def request_era(message: Message | Mapping[str, Any]) -> Era | None:
    """The era a stdio request belongs to on its own: modern when `params._meta` carries the protocol
    version key, handshake for `initialize`, None when the request alone does not say."""
    body = message.body if isinstance(message, Message) else message
    body = as_dict(body)
    if PROTOCOL_VERSION_KEY in request_meta(body.get("params")):
        return "modern"
    if body.get("method") == "initialize":
        return "handshake"
    return None


def _verdict_from_unsupported_version(data: Any) -> ProbeVerdict:
    supported = as_dict(data).get("supported")
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
    body = as_dict(body)
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
