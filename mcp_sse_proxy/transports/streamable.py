"""Streamable HTTP upstream, handshake era (2025-03-26 … 2025-11-25): the POST of each client message.

Every client message is its own POST; a request's answer comes as a JSON body or as an SSE stream that is
relayed as it arrives. Session id and protocol version headers follow the handshake. The event streams (an
SSE answer, its resumption with `Last-Event-ID`, the optional GET stream) are in `streamable_streams.py`;
the exchange record and body reading in `streamable_post.py`.
"""

from __future__ import annotations

import logging
import os

import anyio
import httpx2
from anyio.abc import TaskGroup

from ..config.model import Profile
from ..errors import (
    SessionExpired,
    StreamLost,
    TransportMismatch,
    UpstreamError,
    UpstreamHTTPError,
)
from ..protocol.envforward import select_env
from ..protocol.headers import ToolHeaderCache
from ..protocol.messages import (
    PROTOCOL_VERSION_META,
    InvalidMessage,
    JsonId,
    Kind,
    Message,
    parse,
)
from ..protocol.messages import request as jsonrpc_request
from ..protocol.urls import display
from ..redaction import register_secret
from .base import Deliver, SessionLostCallback
from .http import describe_status, is_event_stream, is_json, request_error, retry_after
from .streamable_post import Exchange, is_modern_error, jsonrpc_error, read_limited
from .streamable_streams import EventStreams

log = logging.getLogger("mcp_sse_proxy.streamable")

POST_ACCEPT = "application/json, text/event-stream"
HEADER_MISMATCH = -32020
#: How long to keep reading a response stream after its response arrived (lets the connection be reused).
DRAIN_AFTER_RESPONSE = 0.5
ERROR_BODY_LIMIT = 64 * 1024


class StreamableUpstream(EventStreams):
    """A Streamable HTTP server at one URL. `open()` forgets the session so the next initialize starts one."""

    name = "streamable-http"
    loses_in_flight_on_session_loss = False
    cancels_by_notification = False

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
        self.session_id: str | None = None
        self.protocol_version: str | None = None
        self._get_scope: anyio.CancelScope | None = None
        self._retry_ms: int | None = None
        #: Tool input schemas from every modern `tools/list` page, for the `Mcp-Param-*` headers.
        self.tool_headers = ToolHeaderCache(select_env(os.environ, profile.env_prefixes))

    async def open(self) -> None:
        self._stop_get_stream()
        self.session_id = None
        self.protocol_version = None

    def _headers(self, accept: str) -> dict[str, str]:
        headers = {"Accept": accept}
        if self.session_id is not None:
            headers["Mcp-Session-Id"] = self.session_id
        if self.protocol_version is not None:
            headers["MCP-Protocol-Version"] = self.protocol_version
        return headers

    async def send(self, message: Message, *, probing: bool = False, deliver: Deliver | None = None) -> None:
        """POST `message`; for a request, deliver everything up to its response before returning.

        With `probing`, a 400/404/405 or a reply that is not MCP raises `TransportMismatch` (auto-detection).
        `deliver` overrides where this exchange's replies go (the era bridge reads them itself).
        """
        deliver = deliver or self._deliver
        exchange = Exchange(message, deliver)
        await self._exchange(exchange, probing)
        if exchange.mismatch is not None:
            # HeaderMismatch: our Mcp-Param headers came from a stale tool list. Re-read it, retry once.
            held = exchange.mismatch
            await self._relist_tools(exchange.modern_version or "")
            retry = Exchange(message, deliver)
            await self._exchange(retry, probing)
            if retry.mismatch is not None:
                await deliver(held)

    def _post_headers(self, exchange: Exchange) -> dict[str, str]:
        if exchange.modern_version is not None:
            sent = exchange.sent
            headers = {"Accept": POST_ACCEPT, "MCP-Protocol-Version": exchange.modern_version}
            headers.update(self.tool_headers.headers_for(sent.method or "", sent.params))
        else:
            headers = self._headers(POST_ACCEPT)
        headers["Content-Type"] = "application/json"
        return headers

    async def _exchange(self, exchange: Exchange, probing: bool) -> None:
        message = exchange.sent
        wanted = exchange.wanted
        headers = self._post_headers(exchange)
        had_session = "Mcp-Session-Id" in headers
        # A request's stream may stay silent for minutes; only the handshake and notifications get a read
        # limit (a detection probe must not hang on a URL that accepts a POST and never answers).
        short = not wanted or message.method in ("initialize", "server/discover")
        read = self._profile.read_timeout if short else None
        timeout = httpx2.Timeout(self._profile.connect_timeout, read=read, write=self._profile.read_timeout)
        last_event_id: str | None = None
        try:
            async with self._client.stream(
                "POST", self.url, content=message.raw, headers=headers, timeout=timeout
            ) as resp:
                if message.method == "initialize":
                    sid = resp.headers.get("mcp-session-id")
                    if sid:
                        register_secret(sid)  # whoever holds it can act in our session: masked in every log
                        self.session_id = sid
                status = resp.status_code
                if status == 202 or (status == 200 and not wanted and not is_event_stream(resp)):
                    await resp.aread()
                    self._after_accepted(message)
                    return
                if status >= 400:
                    await self._raise_for_status(resp, exchange, had_session, probing)
                    return
                if is_json(resp):
                    await self._deliver_json(resp, exchange)
                elif is_event_stream(resp):
                    last_event_id = await self._consume(resp, exchange)
                else:
                    await resp.aread()
                    reason = f"POST {display(self.url)} answered {resp.headers.get('content-type')!r}"
                    if probing:
                        raise TransportMismatch(reason + ": not an MCP endpoint", status=status)
                    raise UpstreamError(reason + ", neither JSON nor an event stream", status=status)
        except httpx2.HTTPError as exc:
            if not wanted or not exchange.streaming:
                raise request_error(exc, "POST", display(self.url)) from None
            if exchange.last_event_id is None or exchange.modern_version is not None:
                raise StreamLost(
                    f"the response stream broke before the response ({type(exc).__name__})"
                ) from None
            log.debug("response stream broke (%s); resuming from event %s", exc, exchange.last_event_id)
            last_event_id = exchange.last_event_id
        if wanted:
            if exchange.modern_version is not None:
                # 2026-07-28 streams cannot be resumed: the request is lost (the relay decides on re-issue).
                raise StreamLost("the server closed the response stream before answering")
            await self._resume(exchange, last_event_id)

    async def _relist_tools(self, version: str) -> None:
        """Re-read every `tools/list` page (modern era) so the header cache matches the server again."""
        cursor: str | None = None
        for page in range(100):
            params: dict[str, object] = {"_meta": {PROTOCOL_VERSION_META: version}}
            if cursor is not None:
                params["cursor"] = cursor
            replies: list[Message] = []

            async def capture(reply: Message, replies: list[Message] = replies) -> None:
                replies.append(reply)

            listing = Exchange(jsonrpc_request(f"mcp-sse-proxy-relist-{page}", "tools/list", params), capture)
            try:
                await self._exchange(listing, probing=False)
            except UpstreamError as exc:
                log.warning("re-reading the tool list after a header mismatch failed: %s", exc.reason)
                return
            result = next((r.body.get("result") for r in replies if r.kind is Kind.RESPONSE), None)
            if not isinstance(result, dict):
                return
            next_cursor = result.get("nextCursor")
            if not isinstance(next_cursor, str) or not next_cursor:
                return
            cursor = next_cursor

    def _after_accepted(self, message: Message) -> None:
        if message.method == "notifications/initialized" and self.session_id is not None:
            self._start_get_stream()

    async def _raise_for_status(
        self, resp: httpx2.Response, exchange: Exchange, had_session: bool, probing: bool
    ) -> None:
        message = exchange.sent
        body = await read_limited(resp, ERROR_BODY_LIMIT)
        status = resp.status_code
        if status == 404 and had_session:
            raise SessionExpired(
                f"the server no longer knows our session ({describe_status(resp)})", status=404
            )
        error_message = jsonrpc_error(body)
        if probing and status in (400, 404, 405) and not is_modern_error(status, error_message):
            exc = TransportMismatch(
                f"POST {display(self.url)} answered {describe_status(resp)}", status=status
            )
            exc.error_message = error_message  # type: ignore[attr-defined]
            raise exc
        if error_message is not None and message.kind is Kind.REQUEST and status not in (401, 403):
            # A JSON-RPC error body (often with id null) answers the request it was sent for.
            reply = error_message.with_id(message.id) if error_message.id != message.id else error_message
            await self._handle_incoming(reply, exchange)
            return
        raise UpstreamHTTPError(
            f"{describe_status(resp)} from POST {display(self.url)}",
            status=status,
            challenge=resp.headers.get("www-authenticate"),
            retry_after=retry_after(resp),
            body=body,
        )

    async def _deliver_json(self, resp: httpx2.Response, exchange: Exchange) -> None:
        body = await read_limited(resp, self._profile.max_message_size)
        try:
            reply = parse(body)
        except InvalidMessage as exc:
            raise UpstreamError(f"POST {display(self.url)} answered invalid JSON-RPC: {exc.reason}") from None
        await self._handle_incoming(reply, exchange)

    async def _handle_incoming(self, reply: Message, exchange: Exchange) -> None:
        sent = exchange.sent
        if reply.kind is Kind.RESPONSE:
            exchange.wanted.discard(reply.id)
            if reply.id == sent.id:
                reply = self._inspect_response(reply, exchange)
                if exchange.mismatch is not None:
                    return
        elif reply.kind is Kind.BATCH:
            for item in reply.body:
                if isinstance(item, dict) and "method" not in item:
                    exchange.wanted.discard(item.get("id"))
        await exchange.deliver(reply)

    def _inspect_response(self, reply: Message, exchange: Exchange) -> Message:
        """Learn from the response to what we sent: negotiated version, tool schemas, header mismatches.

        Only small responses are decoded here; a large tool result passes through untouched.
        """
        sent = exchange.sent
        if sent.method == "initialize":
            result = reply.body.get("result")
            if isinstance(result, dict) and isinstance(result.get("protocolVersion"), str):
                self.protocol_version = result["protocolVersion"]
        elif exchange.modern_version is not None:
            if sent.method == "tools/list" and not reply.is_error:
                body = reply.body
                page, dropped = self.tool_headers.filter_tools_page(
                    body.get("result"), first_page="cursor" not in sent.params
                )
                for reason in dropped:
                    log.warning("%s", reason)
                if page is not body.get("result"):
                    return reply.with_body({**body, "result": page})
            elif sent.method == "tools/call" and reply.is_error:
                if reply.body["error"].get("code") == HEADER_MISMATCH:
                    exchange.mismatch = reply
        return reply

    async def _consume(self, resp: httpx2.Response, exchange: Exchange) -> str | None:
        """Relay an SSE response stream as it arrives; return the last event id seen."""
        last_event_id: str | None = None
        exchange.streaming = True
        events = self._events(resp)
        async for event_id, reply in events:
            if event_id:
                last_event_id = exchange.last_event_id = event_id
            if reply is not None:
                await self._handle_incoming(reply, exchange)
                if not exchange.wanted:
                    break
        if not exchange.wanted:
            with anyio.move_on_after(DRAIN_AFTER_RESPONSE):
                async for _event_id, reply in events:
                    if reply is not None:
                        await exchange.deliver(reply)
        return last_event_id

    def forget(self, request_id: JsonId) -> None:
        """Nothing is kept per call here."""

    async def close(self) -> None:
        self._stop_get_stream()
        if self.session_id is None:
            return
        with anyio.move_on_after(2.0, shield=True):
            try:
                await self._client.delete(
                    self.url, headers=self._headers("application/json, text/event-stream"), timeout=2.0
                )
            except httpx2.HTTPError as exc:
                log.debug("DELETE of the session failed: %s", exc)
        self.session_id = None
