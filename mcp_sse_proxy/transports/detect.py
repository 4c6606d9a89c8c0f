"""Choosing the upstream transport: forced by the profile, or detected as the spec's fallback procedure says.

Detection POSTs the client's first message (normally `initialize`) as Streamable HTTP; a 400, 404 or 405
makes it try a legacy SSE GET on the same URL. A bare `http://host:port` tries `/mcp`, `/sse`, then itself.
Network errors are not a verdict: they propagate, and the relay retries later.
"""

from __future__ import annotations

import logging

import httpx2
from anyio.abc import TaskGroup

from ..config.model import Profile
from ..errors import TransportMismatch, UpstreamError
from ..protocol.messages import Message
from ..protocol.urls import candidate_urls, display
from .base import Deliver, SessionLostCallback, Upstream
from .sse import SseUpstream
from .streamable import StreamableUpstream

log = logging.getLogger("mcp_sse_proxy.detect")


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
) -> tuple[Upstream, bool]:
    """An open upstream and whether `first` was already sent through it (Streamable HTTP probes send it)."""
    if profile.transport == "auto":
        candidates = candidate_urls(profile.url)
    else:
        candidates = [(profile.transport, profile.url)]
    probing = len(candidates) > 1
    tried: list[str] = []
    error_message: Message | None = None
    for kind, url in candidates:
        try:
            if kind == "sse":
                sse = SseUpstream(client, url, profile, task_group, deliver, on_lost)
                await sse.open()
                _log_choice(profile, sse, tried)
                return sse, False
            streamable = StreamableUpstream(client, url, profile, task_group, deliver, on_lost)
            await streamable.send(first, probing=probing)
            _log_choice(profile, streamable, tried)
            return streamable, True
        except TransportMismatch as exc:
            tried.append(f"{kind} {display(url)}: {exc.reason}")
            error_message = error_message or getattr(exc, "error_message", None)
            log.debug("transport detection: %s", tried[-1])
    raise NoTransport(
        "no MCP transport answered at " + display(profile.url) + " (tried " + "; ".join(tried) + ")",
        error_message,
    )


def _log_choice(profile: Profile, upstream: Upstream, tried: list[str]) -> None:
    log.info(
        "profile %s: using %s at %s%s",
        profile.name,
        upstream.name,
        display(upstream.url),
        f" (after {len(tried)} other attempt{'s' if len(tried) != 1 else ''})" if tried else "",
    )
