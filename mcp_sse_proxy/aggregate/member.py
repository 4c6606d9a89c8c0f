"""One aggregated profile: its relay, fed through a bounded stream of its own, and what is known of it.

The relay is used through its public API only (`run`, `is_ready`, `last_error`, `reconnect_now`,
`on_state`): the member is its client. Requests the aggregator makes for itself (initialize or
`server/discover`, list reads, health checks) go through the same stream under ids from the profile's own
id space. A member's state changes only through its methods, which keep the flags and events consistent.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import anyio

from ..config.model import Profile
from ..protocol import messages as jsonrpc
from ..protocol.messages import Message
from ..relay import Relay
from ..tap import Tap
from .router import Outbound, Router


class State(enum.Enum):
    IDLE = "idle"  # lazy, not used yet
    CONNECTING = "connecting"
    UP = "up"
    DOWN = "down"


class MemberError(Exception):
    """A request of the aggregator's own to a profile failed; `reason` is written for the user."""

    def __init__(self, reason: str, *, unreachable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        #: True when the relay (not the server) answered: the upstream could not be reached.
        self.unreachable = unreachable


class MemberBusy(MemberError):
    """The profile's relay took no message for too long: its stream stayed full."""


class Waiter:
    __slots__ = ("done", "response")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.response: Message | None = None

    def resolve(self, response: Message) -> None:
        self.response = response
        self.done.set()


def relay_error_reason(body: Any) -> str | None:
    """The reason of an error the relay wrote itself (upstream unreachable, lost, timed out), else None."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or error.get("code") != jsonrpc.INTERNAL_ERROR:
        return None
    data = error.get("data")
    if isinstance(data, dict) and "upstream" in data:
        return str(error.get("message") or "the upstream failed")
    return None


class Member:
    def __init__(
        self,
        profile: Profile,
        router: Router,
        on_message: Callable[[Member, Message], Awaitable[None]],
        environ: Mapping[str, str],
        on_state: Callable[[Member, bool, str | None], None] | None = None,
        *,
        queue_size: int = 64,
        queue_wait: float = 10.0,
        tap: Tap | None = None,
    ) -> None:
        self.profile = profile
        self.alias = profile.alias
        self._router = router
        self._on_message = on_message
        self._on_state = on_state
        self._queue_wait = queue_wait
        self._send, self._receive = anyio.create_memory_object_stream[Message](queue_size)
        self.relay = Relay(profile, self._deliver, environ, on_state=self._relay_state, tap=tap)
        self.state = State.IDLE
        self.reason: str | None = None
        self.init_result: dict[str, Any] | None = None
        self._initialized_sent = False
        #: Set when the member should connect (at once, or at first use for a lazy profile).
        self.wanted = anyio.Event()
        #: Wakes the supervisor for an immediate attempt (replaced at each round: `arm_check`).
        self._check = anyio.Event()
        #: The first `initialize` got an answer (or failed); the first full attempt finished.
        self.initialize_done = anyio.Event()
        self.attempted = anyio.Event()
        #: Until when a list request waits for this member to join (set when it starts connecting).
        self.join_deadline = math.inf
        self.stopped_reason: str | None = None
        self._dirty: set[str] = set()
        self._reloading = False
        #: Set (and replaced) each time an attempt ends: the profile came up or was found down.
        self._changed = anyio.Event()
        #: The `subscriptions/listen` the aggregator keeps open on this profile (2026-07-28 sessions).
        self.listen: tuple[Outbound, Waiter] | None = None
        self.listen_refused = False
        #: How many times the relay reported its upstream lost (an attempt compares it before and after).
        self.losses = 0
        #: The relay's last report (None before any), and whether its last not-ready report was the loss of
        #: a session that was up (the relay then reconnects at once) rather than a failed attempt.
        self.relay_ready: bool | None = None
        self.session_lost = False
        #: How many attempts failed (the aggregator's own, or the relay's connection attempts).
        self.failures = 0

    @property
    def capabilities(self) -> dict[str, Any]:
        caps = (self.init_result or {}).get("capabilities")
        return caps if isinstance(caps, dict) else {}

    @property
    def is_up(self) -> bool:
        return self.state is State.UP

    def describe(self) -> str:
        return self.alias if self.alias == self.profile.name else f"{self.profile.name} ({self.alias})"

    # ---- life cycle -----------------------------------------------------------------------------------

    def want(self, join_deadline: float | None = None, *, connect: bool = True) -> None:
        """Connect now (a lazy profile: at first use); a list waits for it until `join_deadline`."""
        if join_deadline is not None:
            self.join_deadline = join_deadline
        if connect:
            self.wanted.set()

    def wake(self) -> None:
        """Someone wants this profile now: an immediate attempt by the supervisor and by the relay."""
        self.wanted.set()
        self._check.set()
        self.relay.reconnect_now()

    def poke(self) -> None:
        """Ask the supervisor for an attempt now (the relay reported something worth a look)."""
        self._check.set()

    def arm_check(self) -> None:
        """Start a supervision round: later `poke`s end its wait."""
        self._check = anyio.Event()

    async def wait_check(self, timeout: float) -> None:
        with anyio.move_on_after(timeout):
            await self._check.wait()

    def begin_join(self) -> None:
        if self.state is State.IDLE:
            self.state = State.CONNECTING

    def joined(self, init_result: dict[str, Any]) -> None:
        self.init_result = init_result

    def join_finished(self) -> None:
        self.initialize_done.set()

    def attempt_finished(self) -> None:
        self.attempted.set()

    def mark_up(self) -> bool:
        """The profile is up; whether it was down before (worth a log line)."""
        was_down = self.state is State.DOWN
        self.state = State.UP
        self.reason = None
        self._signal()
        return was_down

    def mark_down(self, reason: str, *, failed: bool = True) -> bool:
        """The profile is down for `reason`; `failed`: an attempt failed (not a session being rebuilt).

        Whether this is news (another state or reason than before).
        """
        news = self.state is not State.DOWN or self.reason != reason
        self.state = State.DOWN
        self.reason = reason
        if failed:
            self.failures += 1
        self._signal()
        return news

    def take_initialized(self) -> bool:
        """True once, when `notifications/initialized` is due to this profile (it has joined)."""
        if self.init_result is None or self._initialized_sent:
            return False
        self._initialized_sent = True
        return True

    def stop(self, reason: str | None = None) -> None:
        """End the relay's input (it answers what is pending and stops); release whoever waits to join."""
        self.close(reason)
        self.initialize_done.set()
        self.attempted.set()

    def _signal(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def wait_outcome(self, timeout: float) -> bool:
        """Wait (at most `timeout` s) until the profile is up or an attempt fails; whether it is up.

        A session loss reported meanwhile does not end the wait: the relay is reconnecting right then.
        """
        failures = self.failures
        with anyio.move_on_after(timeout):
            while not self.is_up and self.failures == failures:
                await self._changed.wait()
        return self.is_up

    # ---- list changes and the listen stream -------------------------------------------------------------

    def mark_dirty(self, kinds: Iterable[str]) -> bool:
        """Lists to re-read; True when the caller must start the reload (none is running)."""
        self._dirty.update(kinds)
        if self._reloading:
            return False
        self._reloading = True
        return True

    def take_dirty(self, order: Iterable[str]) -> list[str]:
        kinds = [kind for kind in order if kind in self._dirty]
        self._dirty.clear()
        return kinds

    def clear_dirty(self) -> None:
        self._dirty.clear()

    def reload_finished(self) -> None:
        self._reloading = False

    def listening(self, out: Outbound, waiter: Waiter) -> None:
        self.listen = (out, waiter)

    def listen_ended(self, out: Outbound) -> None:
        if self.listen is not None and self.listen[0] is out:
            self.listen = None

    def take_listen(self) -> tuple[Outbound, Waiter] | None:
        listen, self.listen = self.listen, None
        return listen

    def refuse_listen(self) -> None:
        self.listen_refused = True

    @property
    def may_listen(self) -> bool:
        return self.listen is None and not self.listen_refused

    # ---- the relay ----------------------------------------------------------------------------------------

    async def run_relay(self) -> None:
        async with self._receive:
            await self.relay.run(self._receive)

    async def _deliver(self, message: Message) -> None:
        await self._on_message(self, message)

    def _relay_state(self, ready: bool, reason: str | None) -> None:
        if not ready:
            self.losses += 1
            self.session_lost = self.relay_ready is True
        self.relay_ready = ready
        if self._on_state is not None:
            self._on_state(self, ready, reason)

    async def post(self, message: Message) -> None:
        """Hand a message to the relay, waiting for room (back-pressure) for the queue wait at most.

        `MemberBusy` when the stream stayed full that long, `MemberError` once the relay has stopped.
        """
        try:
            self.post_nowait(message)
            return
        except MemberBusy:
            pass
        try:
            with anyio.fail_after(self._queue_wait):
                await self._send.send(message)
        except TimeoutError:
            raise MemberBusy(self._busy_reason(), unreachable=True) from None
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            raise MemberError(self.stopped_reason or "the proxy is shutting down", unreachable=True) from None

    def post_nowait(self, message: Message) -> None:
        """Hand a message to the relay if there is room now (`MemberBusy` otherwise).

        For messages posted while the relay is delivering (a `ping` answer): waiting there could wait for
        the relay itself.
        """
        try:
            self._send.send_nowait(message)
        except anyio.WouldBlock:
            raise MemberBusy(self._busy_reason(), unreachable=True) from None
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            raise MemberError(self.stopped_reason or "the proxy is shutting down", unreachable=True) from None

    def _busy_reason(self) -> str:
        return f"the proxy's relay for profile {self.describe()} is not taking messages (its queue is full)"

    def close(self, reason: str | None = None) -> None:
        """End the relay's input: it answers what is pending and stops."""
        if reason is not None:
            self.stopped_reason = reason
        self._send.close()

    # ---- the aggregator's own requests -------------------------------------------------------------------

    async def request(
        self, method: str, params: dict[str, Any] | None, timeout: float, *, cancellable: bool = True
    ) -> dict[str, Any]:
        """The result of one request of the aggregator's own; `MemberError` on error, failure or timeout."""
        waiter = Waiter()
        out = self._router.own(self.alias, method, waiter)
        try:
            with anyio.fail_after(timeout):
                await self.post(jsonrpc.request(out.upstream_id, method, params))
                await waiter.done.wait()
        except TimeoutError:
            self._router.abandon(out)
            if cancellable:
                note = {"requestId": out.upstream_id, "reason": "timed out in the aggregator"}
                try:
                    self.post_nowait(jsonrpc.notification("notifications/cancelled", note))
                except MemberError:
                    pass
            raise MemberError(f"no answer to {method} within {timeout:g} s", unreachable=True) from None
        except BaseException:
            self._router.abandon(out)
            raise
        assert waiter.response is not None
        body = waiter.response.body
        reason = relay_error_reason(body)
        if reason is not None:
            raise MemberError(reason, unreachable=True)
        error = body.get("error")
        if isinstance(error, dict):
            raise MemberError(
                f"{method} failed: {error.get('message')} ({error.get('code')})", unreachable=False
            )
        result = body.get("result")
        return result if isinstance(result, dict) else {}
