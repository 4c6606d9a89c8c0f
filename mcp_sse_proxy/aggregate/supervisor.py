"""Watching each profile: run its relay, join it, check its health, notice it down, bring it back.

A profile whose relay reports its upstream lost is down at once and contributes nothing (the client hears a
debounced `list_changed`); when the relay reports it ready again its lists are re-read. The relay rebuilds
its upstream itself (with its own backoff); the supervisor retries only its own attempts (the first join, a
profile whose relay still calls itself ready), with the one backoff policy of `protocol.backoff`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio

from ..protocol import eras
from ..protocol import messages as jsonrpc
from ..protocol.backoff import backoff_delay
from .announcements import Announcer
from .catalog import KINDS, TOOLS, MergedLists
from .member import Member, MemberError, Waiter, relay_error_reason
from .reading import ListReader
from .router import Outbound, Router
from .session import Session
from .settings import LISTEN_FILTER, Settings

log = logging.getLogger("mcp_sse_proxy.aggregate")


class Supervisor:
    def __init__(
        self,
        members: Sequence[Member],
        settings: Settings,
        session: Session,
        lists: MergedLists,
        reader: ListReader,
        announcer: Announcer,
        router: Router,
        spawn: Callable[..., None],
        fail_pending: Callable[[Member], Awaitable[None]],
    ) -> None:
        self._members = members
        self._settings = settings
        self._session = session
        self._lists = lists
        self._reader = reader
        self._announcer = announcer
        self._router = router
        self._spawn = spawn
        self._fail_pending = fail_pending
        self.closing = False

    # ---- the relays and the watch -------------------------------------------------------------------------

    async def run_relay(self, member: Member) -> None:
        try:
            await member.run_relay()
        except Exception:
            log.exception("the relay of profile %s failed; its traffic is answered with errors", member.alias)
            member.close("internal error in the proxy's relay for this profile")
            self.set_down(member, member.stopped_reason or "")
            await self._fail_pending(member)
            await self._announcer.changes()

    async def supervise_all(self) -> None:
        async with anyio.create_task_group() as tg:
            for member in self._members:
                tg.start_soon(self._supervise, member)

    async def _supervise(self, member: Member) -> None:
        await member.wanted.wait()
        await self._session.client_init.wait()
        failures = 0
        while True:
            member.arm_check()
            if member.init_result is not None and not member.is_up and not member.relay.is_ready:
                # The relay rebuilds its upstream session by itself and reports when it is ready
                # (`relay_state` pokes the member); a call cuts its backoff short.
                member.attempt_finished()
                await member.wait_check(self._settings.health_interval)
                continue
            try:
                up = await self._attempt(member)
            except Exception:
                # A bug must cost this profile its attempt, never the other profiles their traffic.
                log.exception("profile %s: the connection attempt failed", member.alias)
                self.set_down(member, "internal error in the proxy (see its log)")
                up = False
            if up:
                failures = 0
                delay = self._settings.health_interval
            else:
                failures += 1
                delay = backoff_delay(failures, self._settings.retry_initial, self._settings.retry_max)
            member.attempt_finished()
            await member.wait_check(delay)

    def relay_state(self, member: Member, ready: bool, reason: str | None) -> None:
        """The relay of `member` reports its upstream ready or lost (called from inside the relay)."""
        if self.closing or member.init_result is None:
            return  # before the first join the supervisor's own request tells the outcome
        if ready:
            if not member.is_up:
                log.info("profile %s: connected again; re-reading its lists", member.alias)
                member.poke()
            return
        was_up = member.is_up
        reason = reason or member.relay.last_error or "the connection was lost"
        self.set_down(member, reason, failed=not member.session_lost)
        if was_up:
            self._announcer.soon()

    def set_down(self, member: Member, reason: str, *, failed: bool = True) -> None:
        """Mark a profile down; `failed`: an attempt failed (not merely a session lost and being rebuilt)."""
        if member.mark_down(reason, failed=failed):
            log.warning("profile %s is unavailable: %s", member.alias, reason)
        self._lists.set_up(member.alias, False)

    def stop(self) -> None:
        """The client went away: close each listen and each relay's input; release whoever waits."""
        self.closing = True
        for member in self._members:
            self._stop_listening(member)
            member.stop()

    # ---- one attempt ------------------------------------------------------------------------------------

    async def _attempt(self, member: Member) -> bool:
        """One connection attempt or health check; whether the profile is up afterwards."""
        fresh = member.init_result is None
        losses = member.losses
        try:
            if fresh:
                member.begin_join()
                try:
                    result = await self._join(member)
                finally:
                    member.join_finished()
                member.joined(result)
                log.info("profile %s joined (%s)", member.alias, _server_name(result))
            else:
                await self._health_check(member)
            if member.is_up:
                if self._session.is_modern:
                    self._keep_listening(member)
                return True
            await self._session.client_initialized.wait()
            if self._session.era == "handshake" and member.take_initialized():
                await member.post(jsonrpc.notification("notifications/initialized"))
            if fresh and self._session.log_level is not None:
                await self.quiet_request(member, "logging/setLevel", self._session.log_level)
            member.clear_dirty()
            await self._reader.load(member, KINDS)
        except MemberError as exc:
            self.set_down(member, exc.reason)
            await self._announcer.changes()
            return False
        if member.losses != losses and not member.relay.is_ready:
            # Lost again while its lists were read: wait for the relay's next report.
            self.set_down(member, member.relay.last_error or "the connection was lost", failed=False)
            return False
        if member.mark_up():
            log.warning("profile %s is back", member.alias)
        self._lists.set_up(member.alias, True)
        if self._session.is_modern:
            self._keep_listening(member)
        await self._announcer.changes()
        return True

    async def _join(self, member: Member) -> dict[str, Any]:
        """A profile's first exchange: `initialize` with the client's params, or (2026-07-28) `server/discover`;
        the result in the shape of an initialize result."""
        timeout = self._settings.initialize_timeout
        if self._session.is_modern:
            discovered = await member.request("server/discover", self._session.own_params(None), timeout)
            return eras.initialize_result_from_discover(discovered, None)
        assert self._session.init_params is not None
        return await member.request("initialize", self._session.init_params, timeout, cancellable=False)

    async def _health_check(self, member: Member) -> None:
        """`MemberError` if the profile cannot be reached; an error answer from its server means it is alive.

        A fallback: the relay reports a lost upstream itself when it can tell. 2026-07-28 has no `ping`, so
        a modern session re-reads the tools (which also reaches a server behind an era bridge, and catches
        changes its listen stream does not carry: a bridge forwards only what the server's capabilities
        promise).
        """
        if not self._session.is_modern:
            method = "ping"
        elif "tools" in member.capabilities:
            try:
                tools = await self._reader.read_all(member, TOOLS, self._settings.health_timeout)
            except MemberError as exc:
                if exc.unreachable:
                    raise
                return
            if member.is_up:
                self._lists.set_list(member.alias, TOOLS, tools)
                await self._announcer.changes()
            return
        else:
            method = "server/discover"
        try:
            await member.request(method, self._session.own_params(None), self._settings.health_timeout)
        except MemberError as exc:
            if exc.unreachable:
                raise

    async def quiet_request(self, member: Member, method: str, params: dict[str, Any] | None) -> None:
        """A request of the aggregator's own whose failure is only logged (`logging/setLevel`)."""
        try:
            await member.request(method, self._session.own_params(params), self._settings.health_timeout)
        except MemberError as exc:
            log.info("profile %s: %s", member.alias, exc.reason)

    # ---- waiting for profiles -------------------------------------------------------------------------------

    async def await_members(self) -> None:
        """Wake lazy profiles and wait for profiles joining now (bounded), so a list shows them."""
        now = anyio.current_time()
        for member in self._members:
            if not member.wanted.is_set():
                member.want(now + self._settings.grace)
        async with anyio.create_task_group() as tg:
            for member in self._members:
                if not member.attempted.is_set():
                    tg.start_soon(self._await_member, member)

    async def _await_member(self, member: Member) -> None:
        with anyio.move_on_after(max(0.0, member.join_deadline - anyio.current_time())):
            await member.initialize_done.wait()
        if member.init_result is None:
            return
        with anyio.move_on_after(self._settings.list_timeout):
            await member.attempted.wait()

    # ---- the listen stream on each profile (2026-07-28) ---------------------------------------------------

    def _keep_listening(self, member: Member) -> None:
        """Keep one `subscriptions/listen` open on a profile so its list changes reach us."""
        if not member.may_listen:
            return
        waiter = Waiter()
        out = self._router.own(member.alias, "subscriptions/listen", waiter)
        params = self._session.own_params({"notifications": dict(LISTEN_FILTER)})
        try:
            member.post_nowait(jsonrpc.request(out.upstream_id, "subscriptions/listen", params))
        except MemberError:
            self._router.abandon(out)
            return  # tried again at the next health check
        member.listening(out, waiter)
        self._spawn(self._listen_ended, member, out, waiter)

    def _stop_listening(self, member: Member) -> None:
        """Close the aggregator's listen on a profile (at exit: the relay need not wait for it)."""
        listen = member.take_listen()
        if listen is None:
            return
        out, waiter = listen
        self._router.abandon(out)
        note = {"requestId": out.upstream_id, "reason": "the client went away"}
        try:
            member.post_nowait(jsonrpc.notification("notifications/cancelled", note))
        except MemberError:
            log.debug("profile %s no longer takes messages", member.alias)
        waiter.resolve(jsonrpc.from_obj({"jsonrpc": "2.0", "id": out.upstream_id, "result": {}}))

    async def _listen_ended(self, member: Member, out: Outbound, waiter: Waiter) -> None:
        await waiter.done.wait()
        member.listen_ended(out)
        body = waiter.response.body if waiter.response is not None else {}
        if self.closing:
            return
        if relay_error_reason(body) is not None:
            log.info("profile %s: the listen stream was lost: %s", member.alias, relay_error_reason(body))
            member.wake()  # is it still there? The listen is reopened once it is up
        elif isinstance(body.get("error"), dict):
            log.warning(
                "profile %s refuses subscriptions/listen (%s); its list changes are seen at health checks",
                member.alias,
                body["error"].get("message"),
            )
            member.refuse_listen()
        else:
            log.info("profile %s closed the listen stream; reopening it at the next check", member.alias)


def _server_name(result: dict[str, Any]) -> str:
    info = result.get("serverInfo")
    if isinstance(info, dict):
        return f"{info.get('name')} {info.get('version')}"
    return "unnamed server"
