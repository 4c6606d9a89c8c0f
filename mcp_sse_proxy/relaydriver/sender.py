"""Sends upstream what the relay core asks for, and tells the core how each send failed.

Ordered sends (client requests and notifications) leave the core's outbox in client order: each starts
once the previous one's request is on the wire (`REQUEST_WRITTEN`), or after `ORDER_WAIT` (a slow connect),
and each request holds one of `max_concurrency` slots until its send returns. Nothing per request is
created beyond the send's task and the scope that lets a cancel close its response stream: the order wait
is a field the relay's one timer checks.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Protocol

import anyio
from anyio.abc import TaskGroup

from ..errors import SessionExpired, StreamLost, UpstreamError, UpstreamHTTPError, describe
from ..httpclient import REQUEST_WRITTEN
from ..protocol import messages as jsonrpc
from ..protocol.messages import InvalidMessage, JsonId, Kind, Message
from ..relaycore import Action, Failure, RelayCore, Send
from ..transports.base import Upstream

log = logging.getLogger("mcp_sse_proxy.relay")

#: How long the next message waits for the previous one's request to be written (a slow connect).
ORDER_WAIT = 2.0


class Host(Protocol):
    """What the sender needs of the relay around it."""

    core: RelayCore
    upstream: Upstream | None
    last_activity: float

    def tap_out(self, message: Message) -> None: ...

    def carry_out(self, actions: list[Action]) -> Awaitable[None]: ...

    def made_room(self) -> None: ...

    def arm(self, at: float) -> None: ...

    def timer_at(self) -> float: ...

    def wake_connector(self) -> None: ...


class Sender:
    def __init__(self, host: Host, task_group: Callable[[], TaskGroup], max_concurrency: int) -> None:
        self._host = host
        self._core = host.core
        self._tg = task_group
        self._max = max_concurrency
        self._active = 0
        self._seq = 0
        #: The ordered send whose request the next one waits to see written (0: none), and since when.
        self._awaiting = 0
        self._since = 0.0
        #: The cancel scope of each client request's send in progress (closing it frees its stream).
        self._scopes: dict[tuple[bool, JsonId], anyio.CancelScope] = {}

    def start(self, send: Send) -> None:
        """An unordered send (a response, a cancellation, a retry): at once."""
        self._tg().start_soon(self._run, send, 0, False)

    def close(self, request_id: JsonId) -> None:
        """Stop the send in progress for `request_id`: its connection and slot are free at once."""
        scope = self._scopes.get((isinstance(request_id, str), request_id))
        if scope is not None:
            scope.cancel()

    def pump(self) -> None:
        """Start ordered sends from the core's outbox while the order and the slots allow."""
        core = self._core
        took = False
        while core.outbox and not self._awaiting:
            send = core.take_outbox()
            if send is None:
                break
            took = True
            if not core.is_current(send):
                # The session was lost while this waited: it goes out on the next one, in order.
                core.unsent([send])
                self._host.wake_connector()
                continue
            slot = send.request_id is not None or send.message.kind is Kind.BATCH
            if slot:
                if self._active >= self._max:
                    core.put_back(send)
                    break
                self._active += 1
            self._seq += 1
            self._awaiting = self._seq
            now = anyio.current_time()
            self._since = now
            if self._host.timer_at() > now + 2 * ORDER_WAIT:
                self._host.arm(now + ORDER_WAIT)
            self._tg().start_soon(self._run, send, self._seq, slot)
        if took:
            self._host.made_room()

    def order_check(self, now: float) -> None:
        """From the timer: a send whose request is not written after `ORDER_WAIT` lets the next one go."""
        if not self._awaiting:
            return
        if now - self._since >= ORDER_WAIT:
            self._written(self._awaiting)
        else:
            self._host.arm(self._since + ORDER_WAIT)

    def _written(self, seq: int) -> None:
        if seq == self._awaiting:
            self._awaiting = 0
            self.pump()

    async def _run(self, send: Send, seq: int, slot: bool) -> None:
        host = self._host
        if send.delay > 0:
            await anyio.sleep(send.delay)
        upstream = host.upstream
        assert upstream is not None
        token = REQUEST_WRITTEN.set(partial(self._written, seq) if seq else None)
        failed: list[Action] | None = None
        try:
            if not self._core.wants(send):
                # Answered or cancelled before this task ran (no stream to close then): nothing goes out.
                return
            host.tap_out(send.message)
            if send.request_id is not None:
                key = (isinstance(send.request_id, str), send.request_id)
                with anyio.CancelScope() as scope:
                    self._scopes[key] = scope
                    try:
                        await upstream.send(send.message)
                    finally:
                        if self._scopes.get(key) is scope:
                            del self._scopes[key]
            else:
                await upstream.send(send.message)
            host.last_activity = anyio.current_time()
        except SessionExpired as exc:
            failed = self._core.send_failed(send, Failure.SESSION_EXPIRED, exc.reason)
        except StreamLost as exc:
            failed = self._core.send_failed(send, Failure.STREAM_LOST, describe(exc))
        except UpstreamError as exc:
            busy = isinstance(exc, UpstreamHTTPError) and exc.status in (429, 503)
            failure = Failure.BUSY if busy else Failure.FAILED
            failed = self._core.send_failed(send, failure, describe(exc), retry_after=exc.retry_after)
        except InvalidMessage as exc:  # a large message found undecodable where a rule needed its body
            reason = f"cannot relay the message: {exc.reason}"
            failed = self._core.send_failed(send, Failure.UNDECODABLE, reason, code=exc.code)
        except Exception:  # a bug must cost one answer, not the whole relay
            log.exception("internal error while sending a %s", send.message.method or "message")
            reason = "internal error in the proxy (see its log)"
            failed = self._core.send_failed(send, Failure.FAILED, reason, code=jsonrpc.INTERNAL_ERROR)
        finally:
            REQUEST_WRITTEN.reset(token)
            if slot:
                self._active -= 1
            if seq:
                self._written(seq)
            if slot:
                self.pump()
        if failed:
            await host.carry_out(failed)
