"""The event streams of a Streamable HTTP upstream (handshake era): a POST's SSE answer decoded into
messages, its resumption with `Last-Event-ID` when it breaks, and the optional GET stream that carries
server-initiated messages. A mixin of `StreamableUpstream`, which holds the state these methods use.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import anyio
import httpx2
from anyio.abc import TaskGroup

from ..config.model import Profile
from ..errors import StreamLost
from ..protocol.messages import InvalidMessage, Message, parse
from ..protocol.urls import display
from .base import Deliver, SessionLostCallback
from .http import describe_status, event_message, event_source, is_event_stream
from .streamable_post import Exchange

log = logging.getLogger("mcp_sse_proxy.streamable")

DEFAULT_RETRY_MS = 1000
MAX_RESUME_FAILURES = 3


class EventStreams:
    """Reading SSE streams for `StreamableUpstream` (see there for the attributes)."""

    url: str
    session_id: str | None
    _client: httpx2.AsyncClient
    _profile: Profile
    _tg: TaskGroup
    _deliver: Deliver
    _on_lost: SessionLostCallback
    _get_scope: anyio.CancelScope | None
    _retry_ms: int | None

    def _headers(self, accept: str) -> dict[str, str]:
        raise NotImplementedError

    async def _handle_incoming(self, reply: Message, exchange: Exchange) -> None:
        raise NotImplementedError

    async def _events(self, resp: httpx2.Response) -> AsyncIterator[tuple[str, Message | None]]:
        source = event_source(resp, self._profile.max_message_size)
        async for sse in source:
            if sse.retry is not None:
                self._retry_ms = sse.retry
            if sse.event != "message" or not sse.data:
                yield sse.id, None  # priming event or another kind: only its id matters
                continue
            try:
                reply = parse(event_message(sse.data))
            except InvalidMessage as exc:
                log.warning("skipping an SSE message that is not JSON-RPC: %s", exc.reason)
                yield sse.id, None
                continue
            event_id = sse.id
            del sse  # a large event's text is not kept alive while the next one is read
            yield event_id, reply
            del reply

    async def _resume(self, exchange: Exchange, last_event_id: str | None) -> None:
        """GET with `Last-Event-ID` until the response arrives (2025-11-25 polling and dropped streams)."""
        failures = 0
        while exchange.wanted:
            if last_event_id is None:
                raise StreamLost(
                    "the server closed the response stream before answering, "
                    "and gave no event id to resume from"
                )
            delay = (self._retry_ms if self._retry_ms is not None else DEFAULT_RETRY_MS) / 1000
            await anyio.sleep(delay * (1 if failures == 0 else 2**failures))
            headers = self._headers("text/event-stream")
            headers["Last-Event-ID"] = last_event_id
            progressed = False
            try:
                timeout = httpx2.Timeout(self._profile.connect_timeout, read=None)
                async with self._client.stream("GET", self.url, headers=headers, timeout=timeout) as resp:
                    if resp.status_code == 404 and self.session_id is not None:
                        raise StreamLost("the session ended while the response stream was being resumed")
                    if resp.status_code != 200 or not is_event_stream(resp):
                        await resp.aread()
                        raise StreamLost(
                            f"the response stream broke and resuming it failed ({describe_status(resp)})"
                        )
                    async for event_id, reply in self._events(resp):
                        if event_id and event_id != last_event_id:
                            last_event_id = event_id
                            progressed = True
                        if reply is not None:
                            progressed = True
                            await self._handle_incoming(reply, exchange)
                            if not exchange.wanted:
                                return
            except httpx2.HTTPError as exc:
                log.debug("resuming %s failed: %s", display(self.url), exc)
            failures = 0 if progressed else failures + 1
            if failures >= MAX_RESUME_FAILURES:
                raise StreamLost(f"the response stream broke and {failures} attempts to resume it failed")

    def _start_get_stream(self) -> None:
        if self._get_scope is None:
            self._get_scope = anyio.CancelScope()
            self._tg.start_soon(self._get_stream, self._get_scope, self.session_id)

    def _stop_get_stream(self) -> None:
        if self._get_scope is not None:
            self._get_scope.cancel()
            self._get_scope = None

    async def _get_stream(self, scope: anyio.CancelScope, session_id: str | None) -> None:
        """The optional GET stream for server-initiated messages, resumed with `Last-Event-ID`."""
        last_event_id: str | None = None
        failures = 0
        with scope:
            while True:
                headers = self._headers("text/event-stream")
                if last_event_id is not None:
                    headers["Last-Event-ID"] = last_event_id
                try:
                    timeout = httpx2.Timeout(self._profile.connect_timeout, read=None)
                    async with self._client.stream("GET", self.url, headers=headers, timeout=timeout) as resp:
                        if resp.status_code == 405:
                            log.debug("%s offers no GET stream (405)", display(self.url))
                            return
                        if resp.status_code == 404 and session_id is not None:
                            self._on_lost("the server no longer knows our session (GET answered 404)")
                            return
                        if resp.status_code != 200 or not is_event_stream(resp):
                            await resp.aread()
                            failures += 1
                        else:
                            failures = 0
                            async for event_id, reply in self._events(resp):
                                if event_id:
                                    last_event_id = event_id
                                if reply is not None:
                                    await self._deliver(reply)
                                    del reply  # not kept alive while the next event is awaited
                except httpx2.ConnectError as exc:
                    if session_id is not None:
                        # The server is gone (restarted or down): the relay rebuilds the session when it
                        # can, and meanwhile reports the upstream as not ready.
                        self._get_scope = None
                        self._on_lost(f"the server became unreachable ({exc})")
                        return
                    failures += 1
                except httpx2.HTTPError as exc:
                    failures += 1
                    log.debug("GET stream of %s failed: %s", display(self.url), exc)
                if failures > 8:
                    log.warning(
                        "giving up the GET stream of %s after %d failures", display(self.url), failures
                    )
                    return
                delay = (self._retry_ms or DEFAULT_RETRY_MS) / 1000
                await anyio.sleep(min(delay * (2 ** max(0, failures - 1)), 30.0))
