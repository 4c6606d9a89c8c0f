"""Legacy HTTP+SSE upstream (spec 2024-11-05): one GET event stream per session, POSTs to its endpoint."""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator

import anyio
import httpx2
from anyio.abc import TaskGroup, TaskStatus

from ..config.model import Profile
from ..errors import (
    SessionExpired,
    TransportMismatch,
    UpstreamError,
    UpstreamHTTPError,
)
from ..protocol.messages import InvalidMessage, JsonId, Message, parse
from ..protocol.urls import display, resolve_endpoint
from .base import Deliver, SessionLostCallback
from .http import (
    Event,
    describe_status,
    event_message,
    event_source,
    event_text,
    is_event_stream,
    request_error,
    retry_after,
)

log = logging.getLogger("mcp_sse_proxy.sse")

SSE_ACCEPT = {"Accept": "text/event-stream", "Cache-Control": "no-store"}
JSON_HEADERS = {"Content-Type": "application/json"}


class SseUpstream:
    """A legacy HTTP+SSE server. Each `open()` starts a new stream and so a new server session."""

    name = "sse"
    loses_in_flight_on_session_loss = True
    cancels_by_notification = True

    def __init__(
        self,
        client: httpx2.AsyncClient,
        url: str,
        profile: Profile,
        task_group: TaskGroup,
        deliver: Deliver,
        on_lost: SessionLostCallback,
    ) -> None:
        self._client = client
        self.url = url
        self._profile = profile
        self._tg = task_group
        self._deliver = deliver
        self._on_lost = on_lost
        self.endpoint: str | None = None
        self._scope: anyio.CancelScope | None = None

    async def open(self) -> None:
        await self.close_stream()
        self.endpoint = None
        await self._tg.start(self._run_stream)

    async def _run_stream(self, *, task_status: TaskStatus[None]) -> None:
        started = False
        reason = "the SSE stream ended"
        where = f"GET {display(self.url)}"
        opening_limit = self._profile.connect_timeout + self._profile.read_timeout
        with anyio.CancelScope() as scope:
            self._scope = scope
            try:
                # One deadline for the headers and the endpoint event; lifted once the session is open.
                with anyio.CancelScope(deadline=anyio.current_time() + opening_limit) as opening:
                    timeout = httpx2.Timeout(self._profile.connect_timeout, read=None)
                    async with self._client.stream(
                        "GET", self.url, headers=SSE_ACCEPT, timeout=timeout
                    ) as resp:
                        await self._check_stream_response(resp, where)
                        events = event_source(resp, self._profile.max_message_size).__aiter__()
                        async for sse in events:
                            if sse.event == "endpoint":
                                self.endpoint = resolve_endpoint(self.url, event_text(sse.data).strip())
                                break
                            log.debug("ignoring %r event before the endpoint event", sse.event)
                        if self.endpoint is None:
                            raise UpstreamError(f"{where}: the stream ended before the endpoint event")
                        log.debug("legacy SSE session endpoint %s", display(self.endpoint))
                        opening.deadline = math.inf
                        started = True
                        task_status.started()
                        await self._relay_events(events)
                if opening.cancelled_caught and not started:
                    raise UpstreamError(f"{where}: no endpoint event within {opening_limit:g} s")
            except httpx2.HTTPError as exc:
                if not started:
                    raise request_error(exc, "GET", display(self.url)) from None
                reason = f"the SSE stream failed: {type(exc).__name__}: {exc}"
        if scope.cancel_called:
            return
        if started:
            self._on_lost(reason)

    async def _check_stream_response(self, resp: httpx2.Response, where: str) -> None:
        if resp.status_code != 200:
            await resp.aread()
            if resp.status_code in (400, 404, 405):
                raise TransportMismatch(
                    f"{where} answered {describe_status(resp)}: not a legacy SSE endpoint",
                    status=resp.status_code,
                )
            raise UpstreamHTTPError(
                f"{where} answered {describe_status(resp)}",
                status=resp.status_code,
                challenge=resp.headers.get("www-authenticate"),
                retry_after=retry_after(resp),
            )
        if not is_event_stream(resp):
            raise TransportMismatch(
                f"{where} answered {resp.headers.get('content-type')!r}, not an event stream"
            )

    async def _relay_events(self, events: AsyncIterator[Event]) -> None:
        async for sse in events:
            if sse.event != "message" or not sse.data:
                continue
            try:
                message = parse(event_message(sse.data))
            except InvalidMessage as exc:
                log.warning("skipping an SSE message that is not JSON-RPC: %s", exc.reason)
                continue
            del sse  # a large event's text is not kept alive while the next one is read
            await self._deliver(message)
            del message

    async def send(self, message: Message, *, probing: bool = False, deliver: Deliver | None = None) -> None:
        """POST `message` to the session's endpoint. Its replies come on the session's stream, whatever
        `deliver` says; `probing` changes nothing (the stream's GET already proved the transport)."""
        endpoint = self.endpoint
        if endpoint is None:
            raise UpstreamError("the legacy SSE session has no message endpoint yet")
        timeout = self._profile.request_timeout if message.is_request else self._profile.read_timeout
        try:
            resp = await self._client.post(
                endpoint,
                content=message.raw,
                headers=JSON_HEADERS,
                timeout=httpx2.Timeout(self._profile.connect_timeout, read=timeout, write=timeout),
            )
        except httpx2.HTTPError as exc:
            raise request_error(exc, "POST", display(endpoint)) from None
        if 200 <= resp.status_code < 300:
            return
        if resp.status_code == 404:
            raise SessionExpired(f"POST {display(endpoint)} answered {describe_status(resp)}", status=404)
        raise UpstreamHTTPError(
            f"POST answered {describe_status(resp)}",
            status=resp.status_code,
            challenge=resp.headers.get("www-authenticate"),
            retry_after=retry_after(resp),
            body=resp.content[:2048],
        )

    async def close_stream(self) -> None:
        if self._scope is not None:
            self._scope.cancel()
            self._scope = None

    def forget(self, request_id: JsonId) -> None:
        """Nothing is kept per call here."""

    async def close(self) -> None:
        await self.close_stream()
