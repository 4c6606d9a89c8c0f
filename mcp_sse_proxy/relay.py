"""One relay: the client's messages to one upstream server and back, losing nothing and hanging nothing.

The relay owns what outlives a single HTTP exchange: the table of client requests awaiting answers (each
gets exactly one: the server's, or an error the relay writes), the queue of messages waiting for the
upstream to be ready, the memory needed to rebuild a server session after it is lost, the keepalive and
the proxy's own requests (in an id namespace of their own, never shown to the client).
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import AsyncIterable, Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import anyio
import httpx2
from anyio.abc import TaskGroup

from .awaited import AwaitedReplies
from .config.model import Profile
from .errors import SessionExpired, StreamLost, UpstreamError, UpstreamHTTPError, UpstreamUnavailable
from .httpclient import REQUEST_WRITTEN, build_client
from .protocol import eras
from .protocol import messages as jsonrpc
from .protocol.backoff import backoff_delay
from .protocol.envforward import inject_env, select_env
from .protocol.ids import ProxyIds
from .protocol.messages import InvalidMessage, Kind, Message
from .protocol.pending import Pending, PendingTable
from .protocol.session import SessionMemory
from .protocol.tool_filter import ToolFilter
from .protocol.urls import display
from .tap import Direction, Tap
from .transports import detect
from .transports.base import Upstream

log = logging.getLogger("mcp_sse_proxy.relay")

#: Where the relay sends what the client must see (server messages and the relay's own answers).
Write = Callable[[Message], Awaitable[None]]

#: Requests that may be re-sent (after a 429/503 with Retry-After, or a broken 2026-07-28 response stream):
#: they change nothing on the server. The era rules' set, plus `ping`.
IDEMPOTENT = eras.REISSUABLE_METHODS | {"ping"}
MAX_RETRY_AFTER = 30.0
#: Client messages waiting for the upstream (queue and outbox together); beyond it stdin is not read.
MAX_BUFFERED = 256
SHUTDOWN_GRACE = 2.0
#: How long the next message waits for the previous one's request to be written (a slow connect).
ORDER_WAIT = 2.0


class Relay:
    """Relays one client to one upstream profile. `run()` returns when the client's input ends."""

    def __init__(
        self,
        profile: Profile,
        write: Write,
        environ: Mapping[str, str],
        on_state: Callable[[bool, str | None], None] | None = None,
        tap: Tap | None = None,
    ) -> None:
        """`on_state(ready, reason)` is told each time the upstream becomes ready or stops being so; `tap`
        is told every message sent to the server and received from it."""
        self.profile = profile
        self._tap = tap
        self._filter = ToolFilter(profile.include_tools, profile.exclude_tools)
        #: Ids of the client's tools/list requests, whose results the tool filter edits.
        self._tool_lists: set[tuple[bool, jsonrpc.JsonId]] = set()
        #: Scopes of answers being written; shutdown gives them a deadline (before, a slow reader is waited).
        self._writing: set[anyio.CancelScope] = set()
        self._closing = False
        #: The cancel scope of each client request's send in progress (closing it frees its stream).
        self._scopes: dict[tuple[bool, jsonrpc.JsonId], anyio.CancelScope] = {}
        self._room = anyio.Event()
        self._on_state = on_state
        self._write = write
        self._pending = PendingTable(profile.request_timeout, profile.queue_timeout)
        self._ids = ProxyIds()
        self._own = AwaitedReplies(self._ids)
        #: Ids of re-issued requests → the client's id they answer.
        self._aliases: dict[str, jsonrpc.JsonId] = {}
        self._queue: deque[Message] = deque()
        self._memory = SessionMemory()
        self._forwarded_env = select_env(environ, profile.env_prefixes)
        self._limiter = anyio.CapacityLimiter(profile.max_concurrency)
        self._upstream: Upstream | None = None
        self._ready = False
        self._generation = 0
        self._ever_connected = False
        self._gave_up: str | None = None
        self._last_error: str | None = None
        self._connector_wake = anyio.Event()
        self._outbox_send, self._outbox_receive = anyio.create_memory_object_stream[
            tuple[Message, int, Pending | None]
        ](MAX_BUFFERED + 16)
        self._reaper_wake = anyio.Event()
        self._reaper_at = math.inf
        self._idle = anyio.Event()
        self._idle.set()
        self._last_activity = 0.0
        self._tg: TaskGroup | None = None
        self._client: httpx2.AsyncClient | None = None

    # ----------------------------------------------------------------------------------------------
    # Life cycle

    async def run(self, inbound: AsyncIterable[Message]) -> None:
        """Relay until `inbound` ends, then drain in-flight requests for a short grace and close."""
        self._last_activity = anyio.current_time()
        async with build_client(self.profile) as client, anyio.create_task_group() as tg:
            self._client = client
            self._tg = tg
            tg.start_soon(self._connector)
            tg.start_soon(self._dispatcher)
            tg.start_soon(self._reaper)
            if self.profile.ping_interval > 0:
                tg.start_soon(self._keepalive)
            try:
                async for message in inbound:
                    await self.handle_client(message)
            finally:
                with anyio.CancelScope(shield=True):
                    await self._shutdown()
                tg.cancel_scope.cancel()

    async def _shutdown(self) -> None:
        self._closing = True
        for scope in self._writing:
            scope.deadline = min(scope.deadline, anyio.current_time() + SHUTDOWN_GRACE)
        with anyio.move_on_after(SHUTDOWN_GRACE):
            await self._wait_for_answers()
        self._outbox_send.close()
        for entry in list(self._pending):
            await self._answer_error(entry, "the proxy is shutting down before the server answered")
        if self._upstream is not None:
            with anyio.move_on_after(SHUTDOWN_GRACE):
                await self._upstream.close()

    async def _wait_for_answers(self) -> None:
        while len(self._pending):
            self._idle = anyio.Event()
            await self._idle.wait()

    # ----------------------------------------------------------------------------------------------
    # Client → upstream

    async def handle_client(self, message: Message) -> None:
        """Take one message from the client: register it, then send it or queue it.

        Waits (so stdin is not read) while `MAX_BUFFERED` messages already wait for the upstream.
        """
        await self._wait_for_room()
        try:
            accepted = await self._accept(message)
        except InvalidMessage as exc:
            # Routed undecoded because it is large, then found undecodable when a rule needed its body.
            log.error("invalid input from the client: %s", exc.reason)
            if message.kind is Kind.REQUEST and message.id is not None:
                self._pending.pop(message.id)
                await self._answer(jsonrpc.error_response(message.id, exc.code, exc.reason))
            return
        if accepted is None:
            return
        message = accepted
        if self._gave_up is not None and message.kind is not Kind.NOTIFICATION:
            await self._fail_message(message, self._gave_up)
            return
        if self._ready and not self._queue:
            self._dispatch(message)
        else:
            self._queue.append(message)
            self._connector_wake.set()

    async def _accept(self, message: Message) -> Message | None:
        """Register a client message; the message to send on (maybe edited), or None when it stops here."""
        if message.kind is Kind.REQUEST:
            if not await self._register(message):
                return None
            if message.method == "tools/call" and self._filter.active:
                name = message.params.get("name")
                if self._filter.hides(name):
                    self._pending.pop(message.id)  # type: ignore[arg-type]
                    await self._answer(
                        jsonrpc.error_response(message.id, jsonrpc.INVALID_PARAMS, f"unknown tool: {name}")
                    )
                    return None
            if message.method == "tools/list" and self._filter.active:
                self._tool_lists.add(_key(message.id))  # type: ignore[arg-type]
            if message.method == "tools/call" and self._forwarded_env:
                changed = inject_env(message.body, self._forwarded_env)
                if changed is not None:
                    message = message.with_body(changed)
        elif message.kind is Kind.BATCH:
            batch = await self._register_batch(message)
            if batch is None:
                return None
            message = batch
        elif message.kind is Kind.NOTIFICATION and message.method == "notifications/cancelled":
            if not self._client_cancelled(message):
                return None
        self._memory.observe_client(message)
        return message

    async def _register_batch(self, message: Message) -> Message | None:
        """Register a batch's requests; an id already in use (before or in the batch) is answered with an
        error and left out. The batch to send, or None when nothing of it is left."""
        kept: list[Any] = []
        now = anyio.current_time()
        for item in message.body:
            item_id = item.get("id") if isinstance(item, dict) and "method" in item else None
            if item_id is None:
                kept.append(item)
                continue
            if self._ids.owns(item_id) or item_id in self._pending:
                await self._answer(
                    jsonrpc.error_response(
                        item_id, jsonrpc.INVALID_REQUEST, "request id is already in use by a pending request"
                    )
                )
                continue
            entry = self._pending.add(item_id, str(item["method"]), now)
            self._schedule_reaper(entry.effective_deadline())
            kept.append(item)
        if not kept:
            return None
        return message if len(kept) == len(message.body) else jsonrpc.from_obj(kept)

    async def _wait_for_room(self) -> None:
        while self._buffered() >= MAX_BUFFERED:
            self._room = anyio.Event()
            await self._room.wait()

    def _buffered(self) -> int:
        if len(self._queue) >= MAX_BUFFERED:
            # Requests answered meanwhile (timed out, cancelled) leave their messages behind: drop them.
            self._queue = deque(m for m in self._queue if self._is_live(m))
        return len(self._queue) + self._outbox_send.statistics().current_buffer_used

    def _made_room(self) -> None:
        self._room.set()

    async def _register(self, message: Message) -> bool:
        assert message.id is not None
        if self._ids.owns(message.id) or message.id in self._pending:
            await self._write(
                jsonrpc.error_response(
                    message.id, jsonrpc.INVALID_REQUEST, "request id is already in use by a pending request"
                )
            )
            return False
        token = None
        if message.mentions(b'"progressToken"'):
            meta = message.params.get("_meta")
            token = meta.get("progressToken") if isinstance(meta, dict) else None
        entry = self._pending.add(message.id, message.method or "", anyio.current_time(), token)
        if jsonrpc.modern_version(message) is not None:
            entry.modern = True
        if message.method == "subscriptions/listen":
            entry.deadline = math.inf  # a subscription lasts as long as the client wants it
        self._schedule_reaper(entry.effective_deadline())
        return True

    def _client_cancelled(self, message: Message) -> bool:
        """Bookkeeping for a client's `notifications/cancelled`; False when it need not go upstream."""
        request_id = message.params.get("requestId")
        if not isinstance(request_id, (str, int)):
            return True
        entry = self._pending.get(request_id)
        if entry is None:
            return True
        self._pending.pop(entry.id)  # a late response for it is dropped
        self._idle.set()
        self._made_room()
        if self._upstream is not None and entry.sent:
            self._upstream.forget(entry.id)
        scope = self._scopes.get(_key(entry.id))
        if isinstance(scope, anyio.CancelScope):
            # Close the request's response stream: its connection and concurrency slot are free at once,
            # whether or not the server stops (a stateless server cannot act on the notification).
            scope.cancel()
        if entry.modern and not (self._upstream is not None and self._upstream.cancels_by_notification):
            return False  # 2026-07-28: closing the stream IS the cancellation; nothing is POSTed
        return entry.sent

    def _dispatch(self, message: Message) -> None:
        entry = (
            self._pending.get(message.id) if message.kind is Kind.REQUEST and message.id is not None else None
        )
        if entry is not None:
            entry.sent = True
            entry.generation = self._generation
        elif message.kind is Kind.BATCH:
            self._mark_batch_sent(message, self._generation)
        assert self._tg is not None
        if message.kind is Kind.RESPONSE or message.method == "notifications/cancelled":
            # Nothing before them can depend on these; they must not wait behind a full limiter either
            # (a server waiting for a sampling answer holds the slots the answer would wait for).
            self._tg.start_soon(self._send, message, self._generation, entry)
        else:
            self._outbox_send.send_nowait((message, self._generation, entry))

    def _mark_batch_sent(self, message: Message, generation: int, sent: bool = True) -> None:
        for item in message.body:
            if isinstance(item, dict) and "method" in item and item.get("id") is not None:
                entry = self._pending.get(item["id"])
                if entry is not None:
                    entry.sent = sent
                    entry.generation = generation
                    if not sent:
                        self._schedule_reaper(entry.effective_deadline())

    async def _dispatcher(self) -> None:
        """Starts sends in client order: each begins once the previous one's request is on the wire."""
        assert self._tg is not None
        async with self._outbox_receive:
            async for message, generation, entry in self._outbox_receive:
                self._made_room()
                if entry is not None and self._pending.get(entry.id) is not entry:
                    continue  # cancelled or timed out while waiting here
                borrower: object | None = None
                if entry is not None or message.kind is Kind.BATCH:
                    borrower = object()
                    await self._limiter.acquire_on_behalf_of(borrower)
                if not self._ready or generation != self._generation:
                    # The session was lost while this waited: it goes out on the next one, in order.
                    if borrower is not None:
                        self._limiter.release_on_behalf_of(borrower)
                    self._requeue_front([(message, generation, entry)])
                    continue
                written = anyio.Event()
                self._tg.start_soon(self._send, message, generation, entry, 0, written, borrower)
                with anyio.move_on_after(ORDER_WAIT):
                    await written.wait()

    async def _send(
        self,
        message: Message,
        generation: int,
        entry: Pending | None,
        attempt: int = 0,
        written: anyio.Event | None = None,
        borrower: object | None = None,
    ) -> None:
        upstream = self._upstream
        assert upstream is not None
        token = REQUEST_WRITTEN.set(written.set if written is not None else None)
        if self._tap is not None:
            self._tap(Direction.PROXY_TO_SERVER, self.profile.name, message)
        try:
            if entry is not None:
                with anyio.CancelScope() as scope:
                    self._scopes[_key(entry.id)] = scope
                    try:
                        await upstream.send(message)
                    finally:
                        if self._scopes.get(_key(entry.id)) is scope:
                            del self._scopes[_key(entry.id)]
            else:
                await upstream.send(message)
            self._last_activity = anyio.current_time()
        except SessionExpired as exc:
            if entry is not None and self._pending.get(entry.id) is entry:
                if not entry.resent:
                    # The server never processed it: send it again on the new session.
                    entry.resent = True
                    entry.sent = False
                    self._queue.appendleft(message)
                    self._schedule_reaper(entry.effective_deadline())
                else:
                    await self._answer_error(entry, f"{exc.reason}, again after re-initializing the session")
            self._session_lost(generation, exc.reason)
        except StreamLost as exc:
            if (
                entry is not None
                and entry.modern
                and entry.method in IDEMPOTENT
                and attempt == 0
                and self._pending.get(entry.id) is entry
            ):
                # A 2026-07-28 stream cannot be resumed: re-issue a request without side effects once,
                # under a new id whose answer is mapped back to the client's.
                alias = self._ids.next()
                self._aliases[alias] = entry.id
                log.info("re-issuing %s after a broken response stream", entry.method)
                await self._send(message.with_id(alias), generation, entry, attempt + 1)
                return
            await self._fail_message(message, _describe(exc))
        except UpstreamError as exc:
            if (
                entry is not None
                and isinstance(exc, UpstreamHTTPError)
                and exc.status in (429, 503)
                and entry.method in IDEMPOTENT
                and attempt < 3
                and self._pending.get(entry.id) is entry
            ):
                delay = min(exc.retry_after if exc.retry_after is not None else 2.0**attempt, MAX_RETRY_AFTER)
                log.info("upstream answered %s; retrying %s in %.1f s", exc.status, entry.method, delay)
                await anyio.sleep(delay)
                await self._send(message, generation, entry, attempt + 1)
                return
            await self._fail_message(message, _describe(exc))
        except InvalidMessage as exc:  # a large message found undecodable where a rule needed its body
            await self._fail_message(message, f"cannot relay the message: {exc.reason}", exc.code)
        except Exception:  # a bug must cost one answer, not the whole relay
            log.exception("internal error while sending a %s", message.method or "message")
            await self._fail_message(message, "internal error in the proxy (see its log)")
        finally:
            REQUEST_WRITTEN.reset(token)
            if written is not None:
                written.set()
            if borrower is not None:
                self._limiter.release_on_behalf_of(borrower)

    async def _fail_message(self, message: Message, reason: str, code: int = jsonrpc.INTERNAL_ERROR) -> None:
        if message.kind is Kind.REQUEST and message.id is not None:
            # A re-issued request fails under its new id: the answer goes to the client's.
            client_id = self._aliases.pop(message.id, message.id)  # type: ignore[arg-type]
            entry = self._pending.get(client_id)
            if entry is not None:
                await self._answer_error(entry, reason, code)
        elif message.kind is Kind.BATCH:
            for item in message.body:
                if isinstance(item, dict) and item.get("id") is not None and "method" in item:
                    entry = self._pending.get(item["id"])
                    if entry is not None:
                        await self._answer_error(entry, reason, code)
        else:
            log.warning("could not deliver a %s to the server: %s", message.method or "response", reason)

    async def _answer_error(self, entry: Pending, reason: str, code: int = jsonrpc.INTERNAL_ERROR) -> None:
        if self._pending.get(entry.id) is not entry:
            return
        self._pending.pop(entry.id)
        self._tool_lists.discard(_key(entry.id))
        self._made_room()
        log.warning("answering %s (id %r) with an error: %s", entry.method, entry.id, reason)
        data = {"upstream": display(self._upstream.url if self._upstream else self.profile.url)}
        await self._answer(jsonrpc.error_response(entry.id, code, reason, data))

    async def _answer(self, message: Message) -> None:
        """Write the answer to a request, however slowly the client reads, and never cut off half-way;
        only once shutting down is the wait bounded (`SHUTDOWN_GRACE`)."""
        scope = anyio.CancelScope(shield=True)
        if self._closing:
            scope.deadline = anyio.current_time() + SHUTDOWN_GRACE
        self._writing.add(scope)
        try:
            with scope:
                await self._write(message)
        finally:
            self._writing.discard(scope)
            self._idle.set()

    # ----------------------------------------------------------------------------------------------
    # Upstream → client

    async def _on_upstream(self, message: Message) -> None:
        if self._tap is not None:
            self._tap(Direction.SERVER_TO_PROXY, self.profile.name, message)
        try:
            await self._route_upstream(message)
        except InvalidMessage as exc:
            # A large server message routed undecoded, found undecodable where a rule needed its body.
            entry = self._pending.get(message.id) if message.id is not None else None
            if message.kind is Kind.RESPONSE and entry is not None:
                await self._answer_error(
                    entry, f"the server's answer cannot be decoded: {exc.reason}", exc.code
                )
            else:
                log.error("dropping a server message that cannot be decoded: %s", exc.reason)

    async def _route_upstream(self, message: Message) -> None:
        self._last_activity = anyio.current_time()
        kind = message.kind
        if kind is Kind.RESPONSE:
            msg_id = message.id
            if self._ids.owns(msg_id):
                client_id = self._aliases.pop(msg_id, None)  # type: ignore[arg-type]
                if client_id is not None:
                    await self._route_upstream(message.with_id(client_id))
                    return
                self._own.resolve(message)
                return
            if msg_id is None:
                await self._write(message)
                return
            entry = self._pending.get(msg_id)
            if entry is None:
                log.debug("dropping a response for unknown or finished id %r", msg_id)
                return
            if entry.method == "initialize":
                self._memory.observe_initialize_result(message)
            if self._tool_lists and _key(msg_id) in self._tool_lists:
                filtered = self._filter.filter_list(message.body)
                if filtered is not None:
                    message = jsonrpc.from_obj(filtered)
                self._tool_lists.discard(_key(msg_id))
            self._pending.pop(entry.id)
            self._made_room()
            await self._answer(message)
        elif kind is Kind.BATCH:
            kept: list[Any] = []
            for item in message.body:
                if isinstance(item, dict) and "method" not in item:
                    item_id = item.get("id")
                    if item_id is not None and (
                        self._ids.owns(item_id) or self._pending.pop(item_id) is None
                    ):
                        log.debug("dropping a response for unknown or finished id %r", item_id)
                        continue
                kept.append(item)
            self._made_room()
            if kept:
                await self._answer(message if len(kept) == len(message.body) else jsonrpc.from_obj(kept))
        else:
            if kind is Kind.NOTIFICATION and message.method == "notifications/progress":
                self._pending.touch_progress(message.params.get("progressToken"), anyio.current_time())
            await self._write(message)

    # ----------------------------------------------------------------------------------------------
    # Connecting, detecting, recovering

    def _session_lost(self, generation: int, reason: str) -> None:
        if generation != self._generation or not self._ready:
            return
        self._ready = False
        self._last_error = reason
        self._report_state(False, reason)
        self._requeue_front(self._drain_outbox())
        log.warning("upstream session lost (%s); reconnecting", reason)
        upstream = self._upstream
        if upstream is not None and upstream.loses_in_flight_on_session_loss:
            # Legacy responses travel on the lost stream: nothing sent on it will be answered.
            assert self._tg is not None
            for entry in self._pending.sent_on(generation):
                if entry.method == "subscriptions/listen":
                    continue  # served by the era bridge, which subscribes again on the next session
                self._tg.start_soon(
                    self._answer_error,
                    entry,
                    f"the upstream session was lost before the server answered ({reason})",
                )
        self._connector_wake.set()

    @property
    def is_ready(self) -> bool:
        """Whether the upstream session is established and messages go out at once."""
        return self._ready

    @property
    def last_error(self) -> str | None:
        return self._last_error

    def reconnect_now(self) -> None:
        """Skip the current reconnect backoff (someone wants this upstream now)."""
        self._connector_wake.set()

    def _report_state(self, ready: bool, reason: str | None) -> None:
        if self._on_state is not None:
            try:
                self._on_state(ready, reason)
            except Exception:  # an observer's bug must not stop the relay
                log.exception("state observer failed")

    def _drain_outbox(self) -> list[tuple[Message, int, Pending | None]]:
        drained: list[tuple[Message, int, Pending | None]] = []
        while True:
            try:
                drained.append(self._outbox_receive.receive_nowait())
            except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                return drained

    def _requeue_front(self, items: list[tuple[Message, int, Pending | None]]) -> None:
        """Put messages not yet sent back at the head of the queue, keeping their order."""
        for message, _generation, entry in reversed(items):
            if entry is not None:
                if self._pending.get(entry.id) is not entry:
                    continue
                entry.sent = False
                self._schedule_reaper(entry.effective_deadline())
            self._queue.appendleft(message)
        if items:
            self._connector_wake.set()

    def _upstream_lost(self, reason: str) -> None:
        # Transports stop the streams of a replaced session before opening a new one, so a report
        # always concerns the current session.
        self._session_lost(self._generation, reason)

    def _connect_needed(self) -> bool:
        if self._ready or self._gave_up is not None:
            return False
        if self._upstream is not None and self._ever_connected:
            return True  # a lost session is rebuilt at once, even with nothing queued
        return bool(self._queue)

    async def _connector(self) -> None:
        failures = 0
        while True:
            while not self._connect_needed():
                await self._connector_wake.wait()
                self._connector_wake = anyio.Event()
            if failures:
                # A new message or reconnect_now() cuts the wait short: a caller is waiting.
                with anyio.move_on_after(self._backoff(failures)):
                    await self._connector_wake.wait()
                self._connector_wake = anyio.Event()
            try:
                if self._upstream is None:
                    if not await self._first_connect():
                        continue
                else:
                    await self._reconnect()
            except UpstreamError as exc:
                failures += 1
                self._last_error = _describe(exc)
                log.warning("cannot reach the upstream (attempt %d): %s", failures, self._last_error)
                self._report_state(False, self._last_error)
                await self._after_failed_attempt(exc, failures)
                continue
            failures = 0
            self._ever_connected = True
            self._ready = True
            self._report_state(True, None)
            self._flush()

    async def _first_connect(self) -> bool:
        """Detect the transport with the first queued message; False if nothing was left to send."""
        first = self._next_queued()
        if first is None:
            return False
        entry = self._pending.get(first.id) if first.kind is Kind.REQUEST and first.id is not None else None
        generation = self._generation + 1
        if entry is not None:
            entry.sent = True
            entry.generation = generation
        self._generation = generation
        assert self._client is not None and self._tg is not None
        try:
            with self._attempt_deadline("connecting"):
                upstream, first_sent = await detect.connect(
                    self.profile, self._client, self._tg, self._on_upstream, self._upstream_lost, first
                )
        except detect.NoTransport as exc:
            # A verdict (the server answered, in no transport we know): retrying will not change it.
            if exc.error_message is not None and entry is not None:
                self._pending.pop(entry.id)
                await self._answer(exc.error_message.with_id(entry.id))
            else:
                await self._fail_message(first, _describe(exc))
            raise
        except UpstreamError as exc:
            if not _may_come_up(exc) or first.method == "server/discover":
                # A probe is answered at once: the client decides what to try next (the SDK gives up on
                # it after 10 s).
                await self._fail_message(first, _describe(exc))
                raise
            # Not reachable yet (still starting?): the message waits for the next attempt, up to its
            # queue timeout, as it would for a reconnection.
            if entry is not None:
                entry.sent = False
                self._schedule_reaper(entry.effective_deadline())
            if self._is_live(first):
                self._queue.appendleft(first)
            raise
        self._upstream = upstream
        if not first_sent:
            self._queue.appendleft(first)
            if entry is not None:
                entry.sent = False
        return True

    async def _reconnect(self) -> None:
        upstream = self._upstream
        assert upstream is not None
        self._generation += 1
        with self._attempt_deadline("reconnecting"):
            await upstream.open()
        await self._replay()
        log.warning("upstream session re-established at %s", display(upstream.url))

    async def _replay(self) -> None:
        """Rebuild the client's session on a new server session, answering nothing to the client."""
        memory = self._memory
        if memory.initialize is None or memory.init_result is None:
            return
        response = await self._own_request("initialize", memory.initialize.params, self.profile.read_timeout)
        result = response.body.get("result")
        if not isinstance(result, dict):
            raise UpstreamError(f"the server refused the replayed initialize: {response.body.get('error')}")
        upstream = self._upstream
        assert upstream is not None
        await upstream.send(memory.initialized or jsonrpc.notification("notifications/initialized"))
        warnings, notes = memory.changes_after_replay(result)
        for warning in warnings:
            log.warning("after reconnecting: %s", warning)
        for note in notes:
            await self._write(note)
        for method, params in memory.restore_requests():
            try:
                reply = await self._own_request(method, params, self.profile.read_timeout)
            except UpstreamError as exc:
                log.warning("could not restore %s after reconnecting: %s", method, exc.reason)
                continue
            if "error" in reply.body:
                log.warning("could not restore %s after reconnecting: %s", method, reply.body["error"])

    @contextmanager
    def _attempt_deadline(self, doing: str) -> Iterator[None]:
        """Bounds one connection attempt: a server that accepts and never answers must not stall it."""
        limit = self.profile.connect_timeout + self.profile.read_timeout
        try:
            with anyio.fail_after(limit):
                yield
        except TimeoutError:
            # A verdict on this attempt, as the transports' own read limits are: answered at once.
            raise UpstreamError(
                f"no answer from {display(self.profile.url)} within {limit:g} s while {doing}"
            ) from None

    async def _after_failed_attempt(self, exc: UpstreamError, failures: int) -> None:
        attempts = self.profile.reconnect_attempts
        if attempts and failures >= attempts:
            self._gave_up = f"the upstream is unreachable after {failures} attempts: {_describe(exc)}"
            log.error("giving up on %s: %s", display(self.profile.url), self._gave_up)
            await self._fail_queue(self._gave_up)

    async def _fail_queue(self, reason: str) -> None:
        while self._queue:
            await self._fail_message(self._queue.popleft(), reason)

    def _next_queued(self) -> Message | None:
        while self._queue:
            message = self._queue.popleft()
            self._made_room()
            if self._is_live(message):
                return message
        return None

    def _is_live(self, message: Message) -> bool:
        """Whether a queued message still has to go out (its request was not cancelled or timed out)."""
        if message.kind is Kind.REQUEST and message.id is not None:
            return message.id in self._pending
        return True

    def _flush(self) -> None:
        while self._queue and self._ready:
            message = self._queue.popleft()
            if self._is_live(message):
                self._dispatch(message)

    def _backoff(self, failures: int) -> float:
        return backoff_delay(
            failures, self.profile.reconnect_initial_backoff, self.profile.reconnect_max_backoff
        )

    async def _own_request(self, method: str, params: dict[str, Any] | None, timeout: float) -> Message:
        """A request of the proxy's own; its response never reaches the client."""
        upstream = self._upstream
        assert upstream is not None
        try:
            with anyio.fail_after(timeout):
                return await self._own.ask(upstream.send, method, params)
        except TimeoutError:
            raise UpstreamError(f"no answer to the proxy's {method} within {timeout:g} s") from None

    # ----------------------------------------------------------------------------------------------
    # Timers

    def _schedule_reaper(self, deadline: float) -> None:
        if deadline < self._reaper_at:
            self._reaper_wake.set()

    async def _reaper(self) -> None:
        """Answers every request whose time ran out, queued or sent."""
        while True:
            deadline = self._pending.next_deadline()
            self._reaper_at = deadline if deadline is not None else math.inf
            wait = self._reaper_at - anyio.current_time()
            if wait > 0:
                with anyio.move_on_after(wait):
                    await self._reaper_wake.wait()
                self._reaper_wake = anyio.Event()
            now = anyio.current_time()
            for entry in self._pending.expired(now):
                if entry.sent:
                    reason = f"no response from the server within {self.profile.request_timeout:g} s"
                    await self._answer_error(entry, reason)
                    if self._upstream is not None:
                        self._upstream.forget(entry.id)
                    scope = self._scopes.get(_key(entry.id))
                    if isinstance(scope, anyio.CancelScope):
                        scope.cancel()
                    upstream = self._upstream
                    if (
                        self._ready
                        and upstream is not None
                        and (not entry.modern or upstream.cancels_by_notification)
                    ):
                        cancel = jsonrpc.notification(
                            "notifications/cancelled",
                            {"requestId": entry.id, "reason": "timed out in the proxy"},
                        )
                        self._dispatch(cancel)
                else:
                    reason = f"the upstream was not available within {self.profile.queue_timeout:g} s" + (
                        f" ({self._last_error})" if self._last_error else ""
                    )
                    await self._answer_error(entry, reason)

    async def _keepalive(self) -> None:
        interval = self.profile.ping_interval
        while True:
            # A deadline, not a poll: it moves with every message from the server, and fires only after
            # `interval` seconds of silence.
            await anyio.sleep(max(0.0, self._last_activity + interval - anyio.current_time()))
            if anyio.current_time() - self._last_activity < interval:
                continue
            self._last_activity = anyio.current_time()
            if not self._ready or self._memory.init_result is None:
                continue
            generation = self._generation
            try:
                await self._own_request("ping", None, min(self.profile.read_timeout, max(interval, 5.0)))
                log.debug("keepalive ping answered")
            except UpstreamError as exc:
                log.warning("keepalive ping failed: %s", exc.reason)
                upstream = self._upstream
                if upstream is not None and (
                    upstream.loses_in_flight_on_session_loss or isinstance(exc, UpstreamUnavailable)
                ):
                    await upstream.close()
                    self._session_lost(generation, f"the keepalive ping failed ({exc.reason})")


def _key(msg_id: jsonrpc.JsonId) -> tuple[bool, jsonrpc.JsonId]:
    """1 and "1" are different ids."""
    return (isinstance(msg_id, str), msg_id)


def _may_come_up(exc: UpstreamError) -> bool:
    """Whether a failed first connection may succeed soon: nothing listens yet, or a gateway says so."""
    return isinstance(exc, UpstreamUnavailable) or (
        isinstance(exc, UpstreamHTTPError) and exc.status in (502, 503, 504)
    )


def _describe(exc: UpstreamError) -> str:
    reason = exc.reason
    if isinstance(exc, UpstreamHTTPError) and exc.challenge:
        reason += f" (WWW-Authenticate: {exc.challenge})"
    return reason
