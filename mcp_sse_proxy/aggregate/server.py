"""The aggregator: several profiles shown to the client as one MCP server.

One `Relay` per profile (`member.py`) behind: a supervisor (`supervisor.py`: life cycle, backoff, health),
the merged lists and their announcements (`catalog.py`, `reading.py`, `announcements.py`), the routing of
requests and of what servers send back (`routing.py`, ids in `router.py`) and the session façade answering
`initialize`, `server/discover`, `ping` and `logging/setLevel` (`session.py`). This module takes the client's
messages and gives every client request one boundary that always answers it exactly once.

Eras: a client that opens with `initialize` gets a handshake-era aggregate (each profile is initialized with
the client's params); one that opens with a 2026-07-28 request (`_meta` protocol version, usually
`server/discover`) gets a modern one: each profile is joined with `server/discover` and read with the client's
`_meta`, its requests pass to the relays unchanged (each relay bridges eras for its own server), and
`list_changed` reaches the client on its `subscriptions/listen` streams.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, Awaitable, Callable, Mapping, Sequence
from typing import Any

import anyio
from anyio.abc import TaskGroup

from ..config.model import Profile
from ..protocol import eras
from ..protocol import messages as jsonrpc
from ..protocol.messages import InvalidMessage, JsonId, Kind, Message
from ..tap import Tap
from .announcements import Announcer
from .catalog import MergedLists, Source
from .member import Member, MemberError
from .names import check_aliases
from .reading import ListReader
from .router import Router
from .routing import Joining, Routing
from .session import Handler, Session
from .settings import ROUTED, RequestError, Settings
from .supervisor import Supervisor

__all__ = ["Aggregator", "RequestError", "Settings"]

log = logging.getLogger("mcp_sse_proxy.aggregate")

Write = Callable[[Message], Awaitable[None]]


class Aggregator:
    """Several profiles behind one stdio server; the same shape as `Relay`."""

    def __init__(
        self,
        profiles: Sequence[Profile],
        write: Write,
        environ: Mapping[str, str],
        settings: Settings | None = None,
        tap: Tap | None = None,
    ) -> None:
        """`tap` is told of every message each profile's relay sends upstream and receives."""
        check_aliases([profile.alias for profile in profiles])
        self.settings = settings = settings or Settings()
        self._write = write
        self._router = Router(
            max_server_requests=settings.max_server_requests, server_request_ttl=settings.server_request_ttl
        )
        self._tg: TaskGroup | None = None
        self.lists = MergedLists(
            [
                Source(p.alias, p.max_name_length, tuple(p.include_tools), tuple(p.exclude_tools))
                for p in profiles
            ]
        )
        self.members = [
            Member(
                profile,
                self._router,
                self._from_member,
                environ,
                self._relay_state,
                queue_size=settings.member_queue,
                queue_wait=settings.member_queue_wait,
                tap=tap,
            )
            for profile in profiles
        ]
        by_alias = {member.alias: member for member in self.members}
        self.session = Session(self.members, settings)
        self.announcer = Announcer(self.lists, self.session, write, self._spawn, settings)
        reader = ListReader(
            self.lists, settings, self.session.own_params, self.announcer.changes, self._spawn
        )
        self.routing: Routing | None = None
        self.supervisor = Supervisor(
            self.members,
            settings,
            self.session,
            self.lists,
            reader,
            self.announcer,
            self._router,
            self._spawn,
            self._fail_pending,
        )
        self.session.bind(self.supervisor, self.announcer)
        self.routing = Routing(
            by_alias,
            settings,
            self.session,
            self.lists,
            reader,
            self._router,
            self.supervisor,
            write,
            self._answer,
            self._spawn_request,
        )

    async def run(self, inbound: AsyncIterable[Message]) -> None:
        """Serve until `inbound` ends; then every relay answers what is pending and stops."""
        assert self.routing is not None
        async with anyio.create_task_group() as tg:
            self._tg = tg
            for member in self.members:
                tg.start_soon(self.supervisor.run_relay, member)
            watch = anyio.CancelScope()
            tg.start_soon(self._watch, watch)
            try:
                async for message in inbound:
                    await self._on_client(message)
            finally:
                watch.cancel()
                self.supervisor.stop()

    async def _watch(self, scope: anyio.CancelScope) -> None:
        assert self.routing is not None
        with scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self.supervisor.supervise_all)
                tg.start_soon(self.routing.expire_server_requests)

    # ---- tasks and the request boundary -------------------------------------------------------------------

    def _spawn(self, func: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """A background task: its failure is logged, never the end of the aggregate."""
        assert self._tg is not None
        self._tg.start_soon(self._logged, func, args)

    async def _logged(self, func: Callable[..., Awaitable[Any]], args: tuple[Any, ...]) -> None:
        try:
            await func(*args)
        except Exception:
            log.exception("a task of the aggregator failed (%s)", getattr(func, "__name__", func))

    def _spawn_request(self, client_id: JsonId, func: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Work on a client request in a task of its own, behind that request's boundary."""
        assert self._tg is not None
        self._tg.start_soon(self._bounded, client_id, func, args)

    async def _bounded(
        self, client_id: JsonId, func: Callable[..., Awaitable[Any]], args: tuple[Any, ...]
    ) -> None:
        """The boundary of one client request: whatever fails, the client gets exactly one answer.

        From its arrival until its answer a request is in the router's table (local, or forwarded to a
        profile); an exception leaves it there, and it is answered here with an internal error.
        """
        try:
            await func(*args)
        except Exception:
            log.exception("the aggregator failed on request %r; answering it with an error", client_id)
            forwarded = self._router.cancel(client_id) if not self._router.is_local(client_id) else None
            if forwarded is not None or self._router.end_local(client_id):
                text = "internal error in the proxy's aggregator (see its log)"
                await self._write(jsonrpc.error_response(client_id, jsonrpc.INTERNAL_ERROR, text))

    async def _answer(self, client_id: JsonId, reply: Message) -> None:
        """Write the aggregator's own answer to `client_id`, unless it was cancelled (or answered)."""
        if self._router.end_local(client_id):
            await self._write(reply)

    # ---- client → aggregator ------------------------------------------------------------------------------

    async def _on_client(self, message: Message) -> None:
        kind = message.kind
        if kind is Kind.BATCH:
            for item in message.body:
                try:
                    part = jsonrpc.from_obj(item)
                except InvalidMessage as exc:
                    await self._write(jsonrpc.error_response(exc.id, exc.code, exc.reason))
                    continue
                await self._on_client(part)
        elif kind is Kind.REQUEST:
            await self._client_request(message)
        elif kind is Kind.NOTIFICATION:
            try:
                await self._client_notification(message)
            except Exception:
                log.exception("the aggregator failed on the client's %s", message.method)
        elif kind is Kind.RESPONSE:
            assert self.routing is not None
            await self.routing.client_answered(message)

    async def _client_request(self, message: Message) -> None:
        client_id = message.id
        assert client_id is not None and message.method is not None
        if self._router.client_id_in_use(client_id):
            text = "request id is already in use by a pending request"
            await self._write(jsonrpc.error_response(client_id, jsonrpc.INVALID_REQUEST, text))
            return
        self._router.begin_local(client_id)
        await self._bounded(client_id, self._dispatch, (message,))

    async def _dispatch(self, message: Message) -> None:
        assert message.id is not None and message.method is not None and self.routing is not None
        client_id, method = message.id, message.method
        if eras.request_era(message) == "modern":
            refusal = eras.modern_request_error(message)
            if refusal is not None:
                await self._answer(client_id, refusal)
                return
            if self.session.era is None:
                self.session.begin_modern(message)
        if method == "subscriptions/listen":
            # Stays in the table (unanswered) until the client cancels it: a listen has no response.
            await self._write(self.announcer.open_listen(message))
            return
        if method in ROUTED:
            try:
                await self.routing.route(message, joined=False)
            except (RequestError, Joining):
                # A profile still joining may have it: look again once joining profiles are in.
                self._spawn_request(client_id, self.routing.route_when_joined, message)
            return
        handler = self.session.handler(method)
        if handler is None:
            error = jsonrpc.error_response(client_id, jsonrpc.METHOD_NOT_FOUND, f"unknown method {method}")
            await self._answer(client_id, error)
            return
        self._spawn_request(client_id, self._answer_local, message, handler)

    async def _answer_local(self, message: Message, handler: Handler) -> None:
        assert message.id is not None
        try:
            result = await handler(message)
            if eras.request_era(message) == "modern":
                result = eras.modernize_result(message.method, result, self.session.server_info())
            reply = jsonrpc.from_obj({"jsonrpc": "2.0", "id": message.id, "result": result})
        except RequestError as exc:
            reply = jsonrpc.error_response(message.id, exc.code, exc.message, exc.data)
        await self._answer(message.id, reply)

    async def _client_notification(self, message: Message) -> None:
        assert self.routing is not None
        method = message.method
        if method == "notifications/initialized":
            self.session.client_initialized.set()
            for member in self.members:
                if member.take_initialized():
                    await _post_or_log(member, message)
            await self.announcer.changes()
        elif method == "notifications/cancelled":
            request_id = message.params.get("requestId")
            if isinstance(request_id, (str, int)) and self.announcer.close_listen(request_id):
                self._router.end_local(request_id)  # a closed listen stream ends without a response
                return
            self.routing.client_cancelled(message)
        else:
            # roots/list_changed and anything else concern every profile that has a session.
            for member in self.members:
                if member.init_result is not None:
                    await _post_or_log(member, message)

    # ---- hooks for the members ----------------------------------------------------------------------------

    async def _from_member(self, member: Member, message: Message) -> None:
        assert self.routing is not None
        await self.routing.from_member(member, message)

    def _relay_state(self, member: Member, ready: bool, reason: str | None) -> None:
        self.supervisor.relay_state(member, ready, reason)

    async def _fail_pending(self, member: Member) -> None:
        assert self.routing is not None
        await self.routing.fail_pending(member)


async def _post_or_log(member: Member, message: Message) -> None:
    try:
        await member.post(message)
    except MemberError as exc:
        log.debug("profile %s: %s", member.alias, exc.reason)
