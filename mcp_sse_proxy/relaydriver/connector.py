"""Connects the relay's upstream, rebuilds the session after a loss, and keeps an idle one alive.

The decisions (whether to connect, what the first message is, what a failure means for the waiting
requests) are the core's (`relaycore.lifecycle`); this carries out one attempt at a time with a bound on
it, waits out the backoff, replays the client's handshake on a new session and sends the keepalive ping.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import anyio
import httpx2
from anyio.abc import TaskGroup

from ..config.model import Profile
from ..errors import UpstreamError, UpstreamHTTPError, UpstreamUnavailable, describe
from ..protocol import messages as jsonrpc
from ..protocol.backoff import backoff_delay
from ..protocol.messages import Message
from ..protocol.urls import display
from ..relaycore import Action, RelayCore
from ..transports import detect
from ..transports.base import Upstream

log = logging.getLogger("mcp_sse_proxy.relay")


class Host(Protocol):
    """What the connector needs of the relay around it."""

    core: RelayCore
    upstream: Upstream | None
    last_activity: float

    def carry_out(self, actions: list[Action]) -> Awaitable[None]: ...

    def carry_out_nowait(self, actions: list[Action]) -> None: ...

    async def deliver(self, message: Message) -> None: ...

    def upstream_lost(self, reason: str) -> None: ...

    async def write_note(self, message: Message) -> None: ...

    async def send_own(self, message: Message) -> None: ...

    async def own_request(self, method: str, params: dict[str, Any] | None, timeout: float) -> Message: ...

    def tap_out(self, message: Message) -> None: ...

    def connected_to(self, upstream: Upstream, tapped: Message | None) -> None: ...


class Connector:
    def __init__(self, host: Host, profile: Profile) -> None:
        self._host = host
        self._core = host.core
        self._profile = profile
        self._wake = anyio.Event()

    def wake(self) -> None:
        """Something to connect for (a message waits, a session was lost), or skip the backoff."""
        self._wake.set()

    async def _sleep_until_woken(self, limit: float | None = None) -> None:
        if limit is None:
            await self._wake.wait()
        else:
            with anyio.move_on_after(limit):
                await self._wake.wait()
        self._wake = anyio.Event()

    async def run(self, client: httpx2.AsyncClient, task_group: TaskGroup) -> None:
        core, host = self._core, self._host
        while True:
            idle = False
            while not core.connect_needed():
                await self._sleep_until_woken()
                idle = True
            if core.failures and not idle:
                # A new message or reconnect_now() cuts the wait short: a caller is waiting. One that woke
                # an idle connector is waiting already (its wake-up was spent leaving the idle loop).
                await self._sleep_until_woken(self._backoff(core.failures))
            first: Message | None = None
            first_sent = False
            try:
                if host.upstream is None:
                    first = core.first_attempt()
                    if first is None:
                        continue
                    host.tap_out(first)  # detection may send it: recorded before its answer can come
                    with self._attempt_deadline("connecting"):
                        upstream, first_sent = await detect.connect(
                            self._profile, client, task_group, host.deliver, host.upstream_lost, first
                        )
                    host.connected_to(upstream, None if first_sent else first)
                else:
                    upstream = host.upstream
                    core.reconnect_attempt()
                    with self._attempt_deadline("reconnecting"):
                        await upstream.open()
                    await self._replay(upstream)
                    log.warning("upstream session re-established at %s", display(upstream.url))
            except detect.NoTransport as exc:
                # A verdict (the server answered, in no transport we know): retrying will not change it.
                answer = exc.error_message
                await host.carry_out(
                    core.connect_failed(first, describe(exc), may_come_up=False, answer=answer)
                )
                continue
            except UpstreamError as exc:
                await host.carry_out(core.connect_failed(first, describe(exc), may_come_up=_may_come_up(exc)))
                continue
            except Exception:  # a bug must cost one attempt (and its first message), not the whole relay
                log.exception("internal error while connecting to %s", display(self._profile.url))
                reason = "internal error in the proxy while connecting (see its log)"
                await host.carry_out(core.connect_failed(first, reason, may_come_up=False))
                continue
            actions = core.connected(
                first,
                first_sent,
                loses_in_flight=upstream.loses_in_flight_on_session_loss,
                cancels_by_notification=upstream.cancels_by_notification,
            )
            await host.carry_out(actions)

    async def _replay(self, upstream: Upstream) -> None:
        """Rebuild the client's session on a new server session, answering nothing to the client."""
        memory, host = self._core.memory, self._host
        if memory.initialize is None or memory.init_result is None:
            return
        timeout = self._profile.read_timeout
        response = await host.own_request("initialize", memory.initialize.params, timeout)
        result = response.body.get("result")
        if not isinstance(result, dict):
            raise UpstreamError(f"the server refused the replayed initialize: {response.body.get('error')}")
        await host.send_own(memory.initialized or jsonrpc.notification("notifications/initialized"))
        warnings, notes = memory.changes_after_replay(result)
        for warning in warnings:
            log.warning("after reconnecting: %s", warning)
        for note in notes:
            await host.write_note(note)
        for method, params in memory.restore_requests():
            try:
                reply = await host.own_request(method, params, timeout)
            except UpstreamError as exc:
                log.warning("could not restore %s after reconnecting: %s", method, exc.reason)
                continue
            if "error" in reply.body:
                log.warning("could not restore %s after reconnecting: %s", method, reply.body["error"])

    @contextmanager
    def _attempt_deadline(self, doing: str) -> Iterator[None]:
        """Bounds one connection attempt: a server that accepts and never answers must not stall it."""
        limit = self._profile.connect_timeout + self._profile.read_timeout
        try:
            with anyio.fail_after(limit):
                yield
        except TimeoutError:
            # A verdict on this attempt, as the transports' own read limits are: answered at once.
            raise UpstreamError(
                f"no answer from {display(self._profile.url)} within {limit:g} s while {doing}"
            ) from None

    def _backoff(self, failures: int) -> float:
        profile = self._profile
        return backoff_delay(failures, profile.reconnect_initial_backoff, profile.reconnect_max_backoff)

    async def keepalive(self) -> None:
        """Pings after `ping_interval` seconds without a message from the server; a failed ping on an
        upstream whose stream carries the answers (or that cannot be reached) ends the session."""
        interval = self._profile.ping_interval
        core, host = self._core, self._host
        while True:
            # A deadline, not a poll: it moves with every message from the server, and fires only after
            # `interval` seconds of silence.
            await anyio.sleep(max(0.0, host.last_activity + interval - anyio.current_time()))
            if anyio.current_time() - host.last_activity < interval:
                continue
            host.last_activity = anyio.current_time()
            if not core.ready or core.memory.init_result is None:
                continue
            generation = core.generation
            try:
                await host.own_request("ping", None, min(self._profile.read_timeout, max(interval, 5.0)))
                log.debug("keepalive ping answered")
            except UpstreamError as exc:
                log.warning("keepalive ping failed: %s", exc.reason)
                upstream = host.upstream
                if core.generation != generation:
                    continue  # the session it was sent on is gone already; the new one is not this one's
                if upstream is not None and (
                    upstream.loses_in_flight_on_session_loss or isinstance(exc, UpstreamUnavailable)
                ):
                    await upstream.close()
                    reason = f"the keepalive ping failed ({exc.reason})"
                    host.carry_out_nowait(core.session_lost(generation, reason))
            except Exception:  # a bug must cost one ping, not the whole relay
                log.exception("internal error in the keepalive ping")


def _may_come_up(exc: UpstreamError) -> bool:
    """Whether a failed first connection may succeed soon: nothing listens yet, or a gateway says so."""
    return isinstance(exc, UpstreamUnavailable) or (
        isinstance(exc, UpstreamHTTPError) and exc.status in (502, 503, 504)
    )
