"""Choosing the upstream transport: forced by the profile, or detected as the spec's fallback procedure says.

Detection POSTs the client's first message (normally `initialize`) as Streamable HTTP; a 400, 404 or 405
makes it try a legacy SSE GET on the same URL. A bare `http://host:port` tries `/mcp`, `/sse`, then itself.
Network errors are not a verdict: they propagate, and the relay retries later.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx2
from anyio.abc import TaskGroup

from ..config.model import Profile
from ..errors import TransportMismatch, UpstreamError
from ..protocol import eras
from ..protocol import messages as jsonrpc
from ..protocol.messages import Kind, Message
from ..protocol.urls import candidate_urls, display
from .base import Deliver, SessionLostCallback, Upstream
from .bridge import HandshakeToModern, ModernToHandshake
from .sse import SseUpstream
from .streamable import StreamableUpstream

log = logging.getLogger("mcp_sse_proxy.detect")


@dataclass(frozen=True)
class Attempt:
    """One candidate detection tried: its wire transport, its URL, and why it was passed over (None: chosen)."""

    transport: str
    url: str
    reason: str | None = None


#: Told of each candidate as detection settles it (`--check` lists them); never raises.
AttemptCallback = Callable[[Attempt], None]


def _ignore(attempt: Attempt) -> None:
    pass


class NoTransport(UpstreamError):
    """No candidate URL spoke a transport we know; `error_message` is a JSON-RPC error body if one came."""

    def __init__(self, reason: str, error_message: Message | None) -> None:
        super().__init__(reason)
        self.error_message = error_message


async def connect(
    profile: Profile,
    client: httpx2.AsyncClient,
    task_group: TaskGroup,
    deliver: Deliver,
    on_lost: SessionLostCallback,
    first: Message,
    on_attempt: AttemptCallback = _ignore,
) -> tuple[Upstream, bool]:
    """An open upstream and whether `first` was already sent through it (Streamable HTTP probes send it).

    `on_attempt` hears of each candidate passed over and, last, of the one chosen.
    """
    if profile.transport == "auto":
        candidates = candidate_urls(profile.url)
    else:
        candidates = [(profile.transport, profile.url)]
    probing = len(candidates) > 1
    tried: list[str] = []
    error_message: Message | None = None
    modern_client = eras.request_era(first) == "modern"
    for kind, url in candidates:
        try:
            if kind == "sse" and modern_client:
                # HTTP+SSE belongs to the handshake era: a 2026-07-28 client reaches it through the bridge.
                bridge = ModernToHandshake(task_group, deliver, eras.request_meta(first.params))
                bridged = SseUpstream(client, url, profile, task_group, bridge.from_upstream, on_lost)
                bridge.attach(bridged)
                await bridged.open()
                await bridge.handshake()
                _chosen(profile, bridge, tried, on_attempt, kind, url)
                return bridge, False
            if kind == "sse":
                sse = SseUpstream(client, url, profile, task_group, deliver, on_lost)
                await sse.open()
                _chosen(profile, sse, tried, on_attempt, kind, url)
                return sse, False
            streamable = StreamableUpstream(client, url, profile, task_group, deliver, on_lost)
            if first.method == "initialize" and profile.protocol != "handshake":
                chosen, first_sent = await _initialize_or_bridge(
                    profile, streamable, task_group, deliver, first, probing
                )
                _chosen(profile, chosen, tried, on_attempt, kind, url)
                return chosen, first_sent
            if modern_client:
                chosen, first_sent = await _modern_or_bridge(
                    profile, client, streamable, task_group, deliver, on_lost, first, probing
                )
                _chosen(profile, chosen, tried, on_attempt, kind, url)
                return chosen, first_sent
            await streamable.send(first, probing=probing)
            _chosen(profile, streamable, tried, on_attempt, kind, url)
            return streamable, True
        except TransportMismatch as exc:
            tried.append(f"{kind} {display(url)}: {exc.reason}")
            error_message = error_message or getattr(exc, "error_message", None)
            log.debug("transport detection: %s", tried[-1])
            on_attempt(Attempt(kind, url, exc.reason))
    raise NoTransport(
        "no MCP transport answered at " + display(profile.url) + " (tried " + "; ".join(tried) + ")",
        error_message,
    )


async def _initialize_or_bridge(
    profile: Profile,
    streamable: StreamableUpstream,
    task_group: TaskGroup,
    deliver: Deliver,
    first: Message,
    probing: bool,
) -> tuple[Upstream, bool]:
    """A handshake client's `initialize`: sent as is, unless the server turns out to be 2026-07-28-only.

    The handshake is tried first (no extra round trip for the servers most people run); only when it is
    refused does a `server/discover` probe decide whether to bridge the eras.
    """
    captured, capture = _collector()
    mismatch: TransportMismatch | None = None
    if profile.protocol != "modern":
        try:
            await streamable.send(first, probing=probing, deliver=capture)
        except TransportMismatch as exc:
            mismatch = exc
        answer = _response_to(captured, first)
        if mismatch is None and answer is not None and "result" in answer.body:
            for message in captured:
                await deliver(message)
            return streamable, True
    discovered = await _probe_discover(streamable)
    if discovered is not None:
        discover_result, version = discovered
        log.info("the server speaks only 2026-07-28: bridging the handshake-era client")
        await streamable.open()  # forget whatever the refused handshake left behind
        return HandshakeToModern(streamable, task_group, deliver, discover_result, version), False
    if mismatch is not None:
        raise mismatch
    for message in captured:
        await deliver(message)
    return streamable, True


async def _modern_or_bridge(
    profile: Profile,
    client: httpx2.AsyncClient,
    streamable: StreamableUpstream,
    task_group: TaskGroup,
    deliver: Deliver,
    on_lost: SessionLostCallback,
    first: Message,
    probing: bool,
) -> tuple[Upstream, bool]:
    """A 2026-07-28 client: relay statelessly to a modern server, bridge to a handshake-era one.

    The client's own `server/discover` is the probe when it opens with one; any other first request
    (which may have side effects) waits behind a probe of the proxy's own.
    """
    meta = eras.request_meta(first.params)
    if profile.protocol != "handshake":
        probe = first if first.method == "server/discover" else _discover_request(meta)
        captured, capture = _collector()
        verdict = "handshake"
        try:
            await streamable.send(probe, probing=probing, deliver=capture)
            answer = _response_to(captured, probe)
            verdict = eras.probe_verdict(200, answer.body if answer is not None else None)
        except TransportMismatch:
            pass
        if verdict == "modern" or profile.protocol == "modern":
            if probe is first:
                for message in captured:
                    await deliver(message)
                return streamable, True
            return streamable, False
    bridge = ModernToHandshake(task_group, deliver, meta)
    inner = StreamableUpstream(client, streamable.url, profile, task_group, bridge.from_upstream, on_lost)
    bridge.attach(inner)
    await bridge.handshake(probing=probing)
    log.info("the server speaks the handshake era: bridging the 2026-07-28 client")
    return bridge, False


def _collector() -> tuple[list[Message], Deliver]:
    """A list and a `deliver` that appends to it: the replies of an exchange the proxy reads itself."""
    collected: list[Message] = []

    async def collect(message: Message) -> None:
        collected.append(message)

    return collected, collect


def _response_to(replies: list[Message], request: Message) -> Message | None:
    return next((m for m in replies if m.kind is Kind.RESPONSE and m.id == request.id), None)


def _discover_request(meta: dict[str, Any]) -> Message:
    """A `server/discover` probe carrying the client's `_meta` keys where it has them, ours otherwise."""
    from .. import __version__

    probe_meta = {
        eras.PROTOCOL_VERSION_KEY: meta.get(eras.PROTOCOL_VERSION_KEY, eras.LATEST_MODERN_VERSION),
        eras.CLIENT_CAPABILITIES_KEY: meta.get(eras.CLIENT_CAPABILITIES_KEY, {}),
        eras.CLIENT_INFO_KEY: meta.get(
            eras.CLIENT_INFO_KEY, {"name": "mcp-sse-proxy", "version": __version__}
        ),
    }
    return jsonrpc.request(
        f"mcp-sse-proxy-probe-{secrets.token_hex(4)}", "server/discover", {"_meta": probe_meta}
    )


async def _probe_discover(streamable: StreamableUpstream) -> tuple[dict[str, Any], str] | None:
    """(DiscoverResult, version to use) when the URL is a 2026-07-28 server; None when it is not."""
    version = eras.MODERN_VERSIONS[-1]
    for _attempt in range(2):
        probe = _discover_request({eras.PROTOCOL_VERSION_KEY: version})
        replies, capture = _collector()
        try:
            await streamable.send(probe, probing=True, deliver=capture)
        except TransportMismatch:
            return None
        answer = _response_to(replies, probe)
        if answer is None:
            return None
        result = answer.body.get("result")
        if isinstance(result, dict):
            supported = result.get("supportedVersions") or []
            modern = [v for v in eras.MODERN_VERSIONS if v in supported]
            return (result, modern[-1]) if modern else None
        error = answer.body.get("error") or {}
        if error.get("code") == eras.UNSUPPORTED_PROTOCOL_VERSION:
            data = error.get("data") or {}
            mutual = [v for v in eras.MODERN_VERSIONS if v in (data.get("supported") or [])]
            if mutual and mutual[-1] != version:
                version = mutual[-1]
                continue
        return None
    return None


def _chosen(
    profile: Profile, upstream: Upstream, tried: list[str], on_attempt: AttemptCallback, kind: str, url: str
) -> None:
    on_attempt(Attempt(kind, url))
    log.info(
        "profile %s: using %s at %s%s",
        profile.name,
        upstream.name,
        display(upstream.url),
        f" (after {len(tried)} other attempt{'s' if len(tried) != 1 else ''})" if tried else "",
    )
