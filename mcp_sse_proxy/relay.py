"""One relay: the client's messages to one upstream server and back, losing nothing and hanging nothing.

Every decision is the relay core's (`relaycore.RelayCore`: the pending table, the queue and outbox,
generations, batches, cancels, timeouts, error answers, the tool filter). `Relay` is its anyio driver: it
feeds the core the events (a client message, a server message, a failed send, a lost session, a
connection attempt's outcome, the timer) and carries out the actions it returns: writing to the client
(with back-pressure), sending upstream (`relaydriver.sender`), connecting (`relaydriver.connector`),
arming the one timer (`relaydriver.timer`) and reporting the upstream's state.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterable, Awaitable, Callable, Mapping
from typing import Any

import anyio
from anyio.abc import TaskGroup

from .awaited import AwaitedReplies
from .config.model import Profile
from .httpclient import build_client
from .protocol.envforward import select_env
from .protocol.messages import Message
from .protocol.urls import display
from .relaycore import Action, CloseStream, Forget, RelayCore, Report, Resolve, Send, Settings, Wake, Write
from .relaydriver.connector import Connector
from .relaydriver.sender import Sender
from .relaydriver.timer import Timer
from .tap import Direction, Tap
from .transports.base import Upstream

log = logging.getLogger("mcp_sse_proxy.relay")

#: Where the relay sends what the client must see (server messages and the relay's own answers).
WriteTo = Callable[[Message], Awaitable[None]]

#: Client messages waiting for the upstream (queue and outbox together); beyond it stdin is not read.
MAX_BUFFERED = 256
SHUTDOWN_GRACE = 2.0
SHUTTING_DOWN = "the proxy is shutting down before the server answered"


class Relay:
    """Relays one client to one upstream profile. `run()` returns when the client's input ends."""

    def __init__(
        self,
        profile: Profile,
        write: WriteTo,
        environ: Mapping[str, str],
        on_state: Callable[[bool, str | None], None] | None = None,
        tap: Tap | None = None,
    ) -> None:
        """`on_state(ready, reason)` is told each time the upstream becomes ready or stops being so; `tap`
        is told every message sent to the server and received from it (the proxy's own included)."""
        self.profile = profile
        self._write = write
        self._tap = tap
        self._on_state = on_state
        settings = Settings(
            request_timeout=profile.request_timeout,
            queue_timeout=profile.queue_timeout,
            reconnect_attempts=profile.reconnect_attempts,
            include_tools=tuple(profile.include_tools),
            exclude_tools=tuple(profile.exclude_tools),
            upstream=display(profile.url),
        )
        self.core = RelayCore(settings, forwarded_env=select_env(environ, profile.env_prefixes))
        self._own = AwaitedReplies(self.core.ids)
        self.upstream: Upstream | None = None
        self.last_activity = 0.0
        self._tg: TaskGroup | None = None
        self._timer = Timer(self._timer_fired)
        self._sender = Sender(self, self._task_group, profile.max_concurrency)
        self._connector = Connector(self, profile)
        #: Scopes of answers being written; shutdown gives them a deadline (before, a slow reader is waited).
        self._writing: set[anyio.CancelScope] = set()
        self._closing = False
        #: Set while the client waits for room in the queue, and while shutdown waits for the answers.
        self._room: anyio.Event | None = None
        self._settled: anyio.Event | None = None
        self._tapped: Message | None = None

    # ---- life cycle ------------------------------------------------------------------------------------

    async def run(self, inbound: AsyncIterable[Message]) -> None:
        """Relay until `inbound` ends, then drain in-flight requests for a short grace and close."""
        self.last_activity = anyio.current_time()
        async with build_client(self.profile) as client, anyio.create_task_group() as tg:
            self._tg = tg
            tg.start_soon(self._connector.run, client, tg)
            tg.start_soon(self._timer.run)
            if self.profile.ping_interval > 0:
                tg.start_soon(self._connector.keepalive)
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
            while len(self.core.pending) or self._writing:
                self._settled = anyio.Event()
                await self._settled.wait()
        await self.carry_out(self.core.shut_down(SHUTTING_DOWN))
        if self.upstream is not None:
            with anyio.move_on_after(SHUTDOWN_GRACE):
                await self.upstream.close()

    def _task_group(self) -> TaskGroup:
        assert self._tg is not None
        return self._tg

    # ---- events ----------------------------------------------------------------------------------------

    async def handle_client(self, message: Message) -> None:
        """Take one message from the client. Waits (so stdin is not read) while `MAX_BUFFERED` messages
        already wait for the upstream."""
        core = self.core
        if len(core.queue) + len(core.outbox) >= MAX_BUFFERED:
            while core.buffered() >= MAX_BUFFERED:
                self._room = anyio.Event()
                await self._room.wait()
            self._room = None
        await self.carry_out(core.client_message(message, anyio.current_time()))

    async def deliver(self, message: Message) -> None:
        """A message from the server (the transports' `deliver`)."""
        if self._tap is not None:
            self._tap(Direction.SERVER_TO_PROXY, self.profile.name, message)
        now = anyio.current_time()
        self.last_activity = now
        await self.carry_out(self.core.upstream_message(message, now))

    def upstream_lost(self, reason: str) -> None:
        """The session ended on its own (the transports' `on_lost`). Transports stop the streams of a
        replaced session before opening a new one, so a report always concerns the current session."""
        self.carry_out_nowait(self.core.session_lost(self.core.generation, reason))

    async def _timer_fired(self, now: float) -> None:
        if self.core.next_deadline() <= now:
            await self.carry_out(self.core.timer_fired(now))
        self._timer.arm(self.core.next_deadline())
        self._sender.order_check(now)

    # ---- carrying out the core's actions ---------------------------------------------------------------

    async def carry_out(self, actions: list[Action]) -> None:
        self._settle()
        for action in actions:
            if type(action) is Write:
                await (self._answer(action.message) if action.answer else self._write(action.message))
            else:
                self._do(action)

    def carry_out_nowait(self, actions: list[Action]) -> None:
        """For callers that cannot wait: the writes go on in a task of their own, in order."""
        self._settle()
        writes = [action for action in actions if type(action) is Write]
        for action in actions:
            if type(action) is not Write:
                self._do(action)
        if writes:
            self._task_group().start_soon(self.carry_out, writes)

    def _settle(self) -> None:
        """After the core changed: start what its outbox holds, arm the timer, let waiting callers on."""
        core = self.core
        if core.outbox:
            self._sender.pump()
        self._timer.arm(core.next_deadline())
        self.made_room()
        if self._settled is not None and not len(core.pending) and not self._writing:
            self._settled.set()

    def _do(self, action: Action) -> None:
        if type(action) is Send:
            self._sender.start(action)
        elif type(action) is CloseStream:
            self._sender.close(action.request_id)
        elif type(action) is Forget:
            if self.upstream is not None:
                self.upstream.forget(action.request_id)
        elif type(action) is Wake:
            self._connector.wake()
        elif type(action) is Report:
            self._report_state(action.ready, action.reason)
        elif type(action) is Resolve:
            self._own.resolve(action.message)

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
            if self._settled is not None:
                self._settle()

    def _report_state(self, ready: bool, reason: str | None) -> None:
        if self._on_state is not None:
            try:
                self._on_state(ready, reason)
            except Exception:  # an observer's bug must not stop the relay
                log.exception("state observer failed")

    # ---- what the sender and the connector ask of the relay ----------------------------------------------

    def tap_out(self, message: Message) -> None:
        if self._tap is not None:
            if message is self._tapped:
                self._tapped = None  # the connector recorded it already
                return
            self._tap(Direction.PROXY_TO_SERVER, self.profile.name, message)

    def made_room(self) -> None:
        room = self._room
        if room is not None and self.core.buffered() < MAX_BUFFERED:
            room.set()

    def arm(self, at: float) -> None:
        self._timer.arm(at)

    def timer_at(self) -> float:
        return self._timer.at

    def wake_connector(self) -> None:
        self._connector.wake()

    def connected_to(self, upstream: Upstream, tapped: Message | None) -> None:
        """Detection chose `upstream`; `tapped`: the first message, recorded but still to be sent."""
        self.upstream = upstream
        self._tapped = tapped
        settings = dataclasses.replace(self.core.settings, upstream=display(upstream.url))
        self.core.settings = settings

    async def write_note(self, message: Message) -> None:
        await self._write(message)

    async def send_own(self, message: Message) -> None:
        """Send a message of the proxy's own (the replayed handshake, a keepalive ping), tapped as any."""
        upstream = self.upstream
        assert upstream is not None
        self.tap_out(message)
        await upstream.send(message)

    async def own_request(self, method: str, params: dict[str, Any] | None, timeout: float) -> Message:
        """A request of the proxy's own; its response never reaches the client. `NoReply` after
        `timeout` seconds without one."""
        return await self._own.ask(self.send_own, method, params, timeout=timeout)

    # ---- what observers ask ------------------------------------------------------------------------------

    @property
    def is_ready(self) -> bool:
        """Whether the upstream session is established and messages go out at once."""
        return self.core.ready

    @property
    def last_error(self) -> str | None:
        return self.core.last_error

    def reconnect_now(self) -> None:
        """Skip the current reconnect backoff (someone wants this upstream now)."""
        self._connector.wake()
