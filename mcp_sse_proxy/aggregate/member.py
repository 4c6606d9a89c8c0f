"""One aggregated profile: its relay, fed through a stream of its own, and what the aggregator knows of it.

The relay is used unchanged: the member is its client. Requests the aggregator makes for itself (initialize
or `server/discover`, list reads, health checks) go through the same stream under ids from the profile's own
id space. The relay reports each change of its upstream's readiness (`on_state`); the member passes it on.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anyio

from ..config.model import Profile
from ..protocol import messages as jsonrpc
from ..protocol.messages import Message
from ..relay import Relay
from .router import Router


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
    ) -> None:
        self.profile = profile
        self.alias = profile.alias
        self._router = router
        self._on_message = on_message
        self._on_state = on_state
        self._send, self._receive = anyio.create_memory_object_stream[Message](math.inf)
        self.relay = Relay(profile, self._deliver, environ, on_state=self._relay_state)
        self.state = State.IDLE
        self.reason: str | None = None
        self.init_result: dict[str, Any] | None = None
        self.initialized_sent = False
        #: Set when the member should connect (at once, or at first use for a lazy profile).
        self.wanted = anyio.Event()
        #: Wakes the supervisor for an immediate attempt.
        self.check = anyio.Event()
        #: The first `initialize` got an answer (or failed); the first full attempt finished.
        self.initialize_done = anyio.Event()
        self.attempted = anyio.Event()
        #: Until when a list request waits for this member to join (set when it starts connecting).
        self.join_deadline = math.inf
        self.stopped_reason: str | None = None
        self.dirty: set[str] = set()
        self.reloading = False
        #: Set (and replaced) each time an attempt ends: the profile came up or was found down.
        self.changed = anyio.Event()
        #: The `subscriptions/listen` the aggregator keeps open on this profile (2026-07-28 sessions).
        self.listen: Any = None
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

    def signal(self) -> None:
        """Wake whoever waits for the outcome of an attempt (`wait_outcome`)."""
        self.changed.set()
        self.changed = anyio.Event()

    async def wait_outcome(self, timeout: float) -> bool:
        """Wait (at most `timeout` s) until the profile is up or an attempt fails; whether it is up.

        A session loss reported meanwhile does not end the wait: the relay is reconnecting right then.
        """
        failures = self.failures
        with anyio.move_on_after(timeout):
            while not self.is_up and self.failures == failures:
                await self.changed.wait()
        return self.is_up

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

    def post(self, message: Message) -> None:
        """Hand a message to the relay; `MemberError` once the relay has stopped."""
        try:
            self._send.send_nowait(message)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            raise MemberError(self.stopped_reason or "the proxy is shutting down", unreachable=True) from None

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
            self.post(jsonrpc.request(out.upstream_id, method, params))
            with anyio.fail_after(timeout):
                await waiter.done.wait()
        except TimeoutError:
            self._router.abandon(out)
            if cancellable:
                note = {"requestId": out.upstream_id, "reason": "timed out in the aggregator"}
                try:
                    self.post(jsonrpc.notification("notifications/cancelled", note))
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
