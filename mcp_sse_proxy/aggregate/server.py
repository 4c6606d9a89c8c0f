"""The aggregator: several profiles shown to the client as one MCP server.

One unchanged `Relay` per profile (see `member.py`); this layer answers `initialize`, `server/discover` and
`ping` itself, merges the lists, routes calls by name and URI tables (`catalog.py`), translates ids
(`router.py`) and keeps watch over each profile: a profile whose relay reports its upstream lost is down at
once and contributes nothing (the client hears a debounced `list_changed`); when the relay reports it ready
again its lists are re-read and the client hears `list_changed`. A call to a down profile asks its relay to
reconnect now and waits briefly for it. Nothing one profile does can block or fail another's traffic.

Eras: a client that opens with `initialize` gets a handshake-era aggregate (each profile is initialized with
the client's params); one that opens with a 2026-07-28 request (`_meta` protocol version, usually
`server/discover`) gets a modern one: each profile is joined with `server/discover` and read with the client's
`_meta`, its requests pass to the relays unchanged (each relay bridges eras for its own server), and
`list_changed` reaches the client on its `subscriptions/listen` streams.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
from anyio.abc import TaskGroup

from .. import __version__
from ..config.model import Profile
from ..protocol import eras
from ..protocol import messages as jsonrpc
from ..protocol.backoff import backoff_delay
from ..protocol.messages import InvalidMessage, JsonId, Kind, Message
from .catalog import (
    CAPABILITY,
    CHANGE_NOTIFICATION,
    KIND_OF_METHOD,
    KINDS,
    KINDS_OF_NOTIFICATION,
    LIST_METHODS,
    PROMPTS,
    TOOLS,
    Catalog,
    Source,
)
from .cursors import CursorError, Pager, list_version
from .member import Member, MemberError, State, Waiter, relay_error_reason
from .names import SEPARATOR, check_aliases
from .router import Outbound, Router, id_key

log = logging.getLogger("mcp_sse_proxy.aggregate")

Write = Callable[[Message], Awaitable[None]]

HANDSHAKE_VERSIONS = eras.HANDSHAKE_VERSIONS
#: What `server/discover` offers: the modern versions, then the handshake ones served through `initialize`.
SUPPORTED_VERSIONS = (*reversed(eras.MODERN_VERSIONS), *reversed(eras.HANDSHAKE_VERSIONS))
#: The list changes the aggregator announces on a client's `subscriptions/listen` (and asks its profiles for).
LISTEN_FILTER = {"toolsListChanged": True, "promptsListChanged": True, "resourcesListChanged": True}
CAPABILITIES: dict[str, Any] = {
    "tools": {"listChanged": True},
    "prompts": {"listChanged": True},
    "resources": {"subscribe": True, "listChanged": True},
    "completions": {},
    "logging": {},
}
ROUTED = frozenset(
    {
        "tools/call",
        "prompts/get",
        "resources/read",
        "resources/subscribe",
        "resources/unsubscribe",
        "completion/complete",
    }
)


@dataclass(frozen=True, slots=True)
class Settings:
    """Timings and limits of the aggregate; the defaults suit interactive clients."""

    #: How long `initialize` / `server/discover` (and a first list request, for lazy profiles) waits for
    #: profiles to join.
    grace: float = 2.0
    #: Seconds between health checks of a profile that is up: a fallback, as the relay reports a lost
    #: upstream itself when it can tell (a broken SSE stream, a session the server forgot).
    health_interval: float = 15.0
    health_timeout: float = 5.0
    #: Backoff of the aggregator's own attempts (first join; a profile whose relay still calls itself ready).
    retry_initial: float = 0.5
    retry_max: float = 5.0
    #: How long a call to a down profile waits for the immediate reconnection it triggers.
    call_wait: float = 1.5
    initialize_timeout: float = 30.0
    #: Quiet time after a profile's `list_changed` before its list is re-read.
    debounce: float = 0.2
    list_timeout: float = 30.0
    max_pages: int = 1000
    #: Items per page of merged lists; None serves each list as one page.
    page_size: int | None = None
    server_name: str = "mcp-sse-proxy"


class RequestError(Exception):
    """A client request the aggregator answers with a JSON-RPC error."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


class _Joining(Exception):
    """The owner of a routed request is still joining: answer once it is in (or its time is up)."""


class Aggregator:
    """Several profiles behind one stdio server; the same shape as `Relay`."""

    def __init__(
        self,
        profiles: Sequence[Profile],
        write: Write,
        environ: Mapping[str, str],
        settings: Settings | None = None,
    ) -> None:
        check_aliases([profile.alias for profile in profiles])
        self.settings = settings or Settings()
        self._write = write
        self._router = Router()
        self.members = [
            Member(profile, self._router, self._from_member, environ, self._relay_state)
            for profile in profiles
        ]
        self._by_alias = {member.alias: member for member in self.members}
        self.catalog = Catalog(
            [
                Source(p.alias, p.max_name_length, tuple(p.include_tools), tuple(p.exclude_tools))
                for p in profiles
            ]
        )
        self._pager = Pager(self.settings.page_size)
        self._init_params: dict[str, Any] | None = None
        self._client_init = anyio.Event()
        self._client_initialized = anyio.Event()
        self._log_level: dict[str, Any] | None = None
        #: The version of each merged list the client last saw (or was told about).
        self._announced: dict[str, str] = {}
        self._announcing = False
        #: "handshake" after `initialize`, "modern" after a valid 2026-07-28 request; None before either.
        self._era: str | None = None
        #: The 2026-07-28 client's envelope (version, capabilities, client info), sent with our own requests.
        self._modern_meta: dict[str, Any] = {}
        #: Until when the first `initialize` / `server/discover` waits for profiles to join.
        self._join_deadline = 0.0
        #: The client's open `subscriptions/listen` requests: id key → (id, acknowledged filter).
        self._listens: dict[Any, tuple[JsonId, dict[str, Any]]] = {}
        self._closing = False
        self._tg: TaskGroup | None = None

    # ----------------------------------------------------------------------------------------------
    # Life cycle

    async def run(self, inbound: AsyncIterable[Message]) -> None:
        """Serve until `inbound` ends; then every relay answers what is pending and stops."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            for member in self.members:
                tg.start_soon(self._run_relay, member)
            watch = anyio.CancelScope()
            tg.start_soon(self._supervise_all, watch)
            try:
                async for message in inbound:
                    await self._on_client(message)
            finally:
                self._closing = True
                watch.cancel()
                for member in self.members:
                    self._stop_listening(member)
                    member.close()
                    # Release requests waiting for profiles to join: nobody joins any more.
                    member.initialize_done.set()
                    member.attempted.set()

    async def _run_relay(self, member: Member) -> None:
        try:
            await member.run_relay()
        except Exception:
            log.exception("the relay of profile %s failed; its traffic is answered with errors", member.alias)
            member.close("internal error in the proxy's relay for this profile")
            self._set_down(member, member.stopped_reason or "")
            for out in self._router.pending_for(member.alias):
                self._router.abandon(out)
                if out.client_id is not None:
                    await self._answer_unavailable(member, out.client_id, out.method)
                else:
                    reason = member.reason or "relay failed"
                    error = jsonrpc.error_response(
                        out.upstream_id, jsonrpc.INTERNAL_ERROR, reason, {"upstream": ""}
                    )
                    out.context.resolve(error)
            await self._announce_changes()

    def _spawn(self, func: Callable[..., Awaitable[Any]], *args: Any) -> None:
        assert self._tg is not None
        self._tg.start_soon(func, *args)

    # ----------------------------------------------------------------------------------------------
    # Client → aggregator

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
            await self._client_notification(message)
        elif kind is Kind.RESPONSE:
            target = self._router.take_client_answer(message.id)
            if target is None:
                log.debug("dropping the client's answer to unknown id %r", message.id)
                return
            alias, server_id = target
            self._post_quietly(self._by_alias[alias], message.with_id(server_id))

    async def _client_request(self, message: Message) -> None:
        assert message.id is not None and message.method is not None
        client_id, method = message.id, message.method
        if self._router.client_id_in_use(client_id):
            await self._write(
                jsonrpc.error_response(
                    client_id, jsonrpc.INVALID_REQUEST, "request id is already in use by a pending request"
                )
            )
            return
        if eras.request_era(message) == "modern":
            refusal = eras.modern_request_error(message)
            if refusal is not None:
                await self._write(refusal)
                return
            if self._era is None:
                self._begin_modern(message)
        if method == "subscriptions/listen":
            await self._open_listen(message)
            return
        if method in ROUTED:
            try:
                await self._route(message, joined=False)
            except (RequestError, _Joining):
                # A profile still joining may have it: look again once joining profiles are in.
                self._router.begin_local(client_id)
                self._spawn(self._route_when_joined, message)
            return
        handler = self._local_handler(method)
        if handler is None:
            await self._write(
                jsonrpc.error_response(client_id, jsonrpc.METHOD_NOT_FOUND, f"unknown method {method}")
            )
            return
        self._router.begin_local(client_id)
        self._spawn(self._answer_local, message, handler)

    def _local_handler(self, method: str) -> Callable[[Message], Awaitable[dict[str, Any]]] | None:
        if method in KIND_OF_METHOD:
            return self._list
        return {
            "initialize": self._initialize,
            "server/discover": self._discover,
            "ping": self._ping,
            "logging/setLevel": self._set_level,
        }.get(method)

    async def _answer_local(
        self, message: Message, handler: Callable[[Message], Awaitable[dict[str, Any]]]
    ) -> None:
        assert message.id is not None
        try:
            result = await handler(message)
            if eras.request_era(message) == "modern":
                result = eras.modernize_result(message.method, result, self._server_info())
            reply = jsonrpc.from_obj({"jsonrpc": "2.0", "id": message.id, "result": result})
        except RequestError as exc:
            reply = jsonrpc.error_response(message.id, exc.code, exc.message, exc.data)
        if self._router.end_local(message.id):
            await self._write(reply)

    async def _client_notification(self, message: Message) -> None:
        method = message.method
        if method == "notifications/initialized":
            self._client_initialized.set()
            for member in self.members:
                if member.init_result is not None and not member.initialized_sent:
                    member.initialized_sent = True
                    self._post_quietly(member, message)
            await self._announce_changes()
        elif method == "notifications/cancelled":
            request_id = message.params.get("requestId")
            if isinstance(request_id, (str, int)) and self._listens.pop(id_key(request_id), None):
                self._router.end_local(request_id)  # a closed listen stream ends without a response
                return
            out = self._router.cancel(request_id) if isinstance(request_id, (str, int)) else None
            if out is not None:
                params = dict(message.params)
                params["requestId"] = out.upstream_id
                self._post_quietly(self._by_alias[out.alias], jsonrpc.notification(method, params))
        else:
            # roots/list_changed and anything else concern every profile that has a session.
            for member in self.members:
                if member.init_result is not None:
                    self._post_quietly(member, message)

    @staticmethod
    def _post_quietly(member: Member, message: Message) -> None:
        try:
            member.post(message)
        except MemberError:
            log.debug("profile %s no longer takes messages", member.alias)

    # ----------------------------------------------------------------------------------------------
    # Requests the aggregator answers itself

    async def _initialize(self, message: Message) -> dict[str, Any]:
        if self._era == "modern":
            raise RequestError(jsonrpc.INVALID_REQUEST, "this session already speaks 2026-07-28")
        if self._init_params is not None:
            raise RequestError(jsonrpc.INVALID_REQUEST, "initialize was already received")
        self._init_params = dict(message.params)
        self._era = "handshake"
        self._start_members()
        await self._await_joining()
        requested = self._init_params.get("protocolVersion")
        version = requested if requested in HANDSHAKE_VERSIONS else HANDSHAKE_VERSIONS[-1]
        result = self._merged_init_result(version)
        self._log_ready("initialize")
        return result

    async def _discover(self, message: Message) -> dict[str, Any]:
        """`server/discover` (2026-07-28): the merged server, answered within the grace like `initialize`."""
        # A valid modern request has set the era (and started the profiles) by now; one without the
        # `_meta` envelope decides nothing and is answered with what is known.
        await self._await_joining()
        self._log_ready("server/discover")
        merged = self._merged_init_result(HANDSHAKE_VERSIONS[-1])
        # Resource subscriptions travel on listen streams in 2026-07-28, and the aggregate's listen does not
        # offer them (yet): do not promise them.
        merged["capabilities"] = {**CAPABILITIES, "resources": {"listChanged": True}}
        return eras.discover_result_from_initialize(merged, SUPPORTED_VERSIONS)

    def _begin_modern(self, message: Message) -> None:
        """A 2026-07-28 client: join every profile with `server/discover` under the client's `_meta`."""
        meta = eras.request_meta(message.params)
        keys = (eras.PROTOCOL_VERSION_KEY, eras.CLIENT_CAPABILITIES_KEY, eras.CLIENT_INFO_KEY)
        self._modern_meta = {key: meta[key] for key in keys if key in meta}
        self._era = "modern"
        self._start_members()
        self._client_initialized.set()  # 2026-07-28 has no `notifications/initialized`

    def _start_members(self) -> None:
        self._join_deadline = anyio.current_time() + self.settings.grace
        for member in self.members:
            member.join_deadline = self._join_deadline
            if not member.profile.lazy:
                member.wanted.set()
        self._client_init.set()

    async def _await_joining(self) -> None:
        """Wait (until the join deadline at most) for the profiles connecting at start."""
        with anyio.move_on_after(max(0.0, self._join_deadline - anyio.current_time())):
            for member in self.members:
                if not member.profile.lazy:
                    await member.initialize_done.wait()

    def _merged_init_result(self, version: str) -> dict[str, Any]:
        result: dict[str, Any] = {
            "protocolVersion": version,
            "capabilities": CAPABILITIES,
            "serverInfo": self._server_info(),
        }
        instructions = self._instructions()
        if instructions:
            result["instructions"] = instructions
        return result

    def _server_info(self) -> dict[str, Any]:
        return {"name": self.settings.server_name, "version": __version__}

    def _log_ready(self, what: str) -> None:
        ready = [m.alias for m in self.members if m.init_result is not None]
        log.info("answering %s with %d of %d profiles ready (%s)", what, len(ready), len(self.members), ready)

    def _instructions(self) -> str:
        parts = []
        for member in self.members:
            text = (member.init_result or {}).get("instructions")
            if isinstance(text, str) and text.strip():
                parts.append(f"[{member.alias}]\n{text.strip()}")
        return "\n\n".join(parts)

    async def _ping(self, message: Message) -> dict[str, Any]:
        return {}

    async def _set_level(self, message: Message) -> dict[str, Any]:
        self._log_level = dict(message.params)
        async with anyio.create_task_group() as tg:
            for member in self.members:
                if member.init_result is not None:
                    tg.start_soon(self._quiet_request, member, "logging/setLevel", self._log_level)
        return {}

    async def _quiet_request(self, member: Member, method: str, params: dict[str, Any] | None) -> None:
        try:
            await member.request(method, self._own_params(params), self.settings.health_timeout)
        except MemberError as exc:
            log.info("profile %s: %s", member.alias, exc.reason)

    async def _open_listen(self, message: Message) -> None:
        """A client's `subscriptions/listen`: acknowledged here; the merged list changes are sent on it.

        Resource subscriptions are not offered on it (left out of the acknowledgement, as the spec allows).
        """
        assert message.id is not None
        requested = message.params.get("notifications")
        requested = requested if isinstance(requested, dict) else {}
        honoured = {key: True for key in LISTEN_FILTER if requested.get(key) is True}
        self._router.begin_local(message.id)
        self._listens[id_key(message.id)] = (message.id, honoured)
        await self._write(jsonrpc.from_obj(eras.listen_acknowledgement(message.id, honoured)))

    def _own_params(self, params: dict[str, Any] | None) -> dict[str, Any] | None:
        """Params of a request of the aggregator's own, with the client's `_meta` in a 2026-07-28 session."""
        if self._era != "modern":
            return params
        meta = self._modern_meta
        return eras.add_modern_meta(
            params,
            meta.get(eras.PROTOCOL_VERSION_KEY, eras.LATEST_MODERN_VERSION),
            meta.get(eras.CLIENT_CAPABILITIES_KEY) or {},
            meta.get(eras.CLIENT_INFO_KEY),
            None,
        )

    async def _list(self, message: Message) -> dict[str, Any]:
        assert message.method is not None
        kind = KIND_OF_METHOD[message.method]
        await self._await_members()
        listing = self.catalog.listing(kind)
        cursor = message.params.get("cursor")
        try:
            page = self._pager.page(kind, listing, cursor if isinstance(cursor, str) else None)
        except CursorError as exc:
            raise RequestError(jsonrpc.INVALID_PARAMS, str(exc)) from None
        self._announced[kind] = list_version(listing)
        result: dict[str, Any] = {kind: page.items}
        if page.next_cursor is not None:
            result["nextCursor"] = page.next_cursor
        return result

    async def _await_members(self) -> None:
        """Wake lazy profiles and wait for profiles joining now (bounded), so a list shows them."""
        now = anyio.current_time()
        for member in self.members:
            if not member.wanted.is_set():
                member.join_deadline = now + self.settings.grace
                member.wanted.set()
        async with anyio.create_task_group() as tg:
            for member in self.members:
                if not member.attempted.is_set():
                    tg.start_soon(self._await_member, member)

    async def _await_member(self, member: Member) -> None:
        with anyio.move_on_after(max(0.0, member.join_deadline - anyio.current_time())):
            await member.initialize_done.wait()
        if member.init_result is None:
            return
        with anyio.move_on_after(self.settings.list_timeout):
            await member.attempted.wait()

    # ----------------------------------------------------------------------------------------------
    # Requests routed to one profile

    async def _route_when_joined(self, message: Message) -> None:
        assert message.id is not None
        await self._await_members()
        if not self._router.end_local(message.id):
            return  # cancelled meanwhile
        try:
            await self._route(message, joined=True)
        except RequestError as exc:
            await self._write(jsonrpc.error_response(message.id, exc.code, exc.message, exc.data))

    async def _route(self, message: Message, *, joined: bool, waited: bool = False) -> None:
        """Forward a routed request to its owner, or answer it; `_Joining` if that should wait."""
        assert message.id is not None and message.method is not None
        method = message.method
        params = dict(message.params)
        member, context = self._target(method, params)
        if not member.is_up and not joined and member.wanted.is_set() and not member.attempted.is_set():
            raise _Joining
        if not member.is_up:
            if waited:
                await self._answer_unavailable(member, message.id, method)
                return
            # A call to a down profile triggers an immediate attempt and waits a little for it.
            self._wake(member)
            self._router.begin_local(message.id)
            self._spawn(self._route_after_attempt, message, member)
            return
        meta = params.get("_meta")
        token = meta.get("progressToken") if isinstance(meta, dict) else None
        out = self._router.forward(member.alias, message.id, method, token, context)
        try:
            member.post(jsonrpc.request(out.upstream_id, method, params))
        except MemberError:
            self._router.abandon(out)
            await self._answer_unavailable(member, message.id, method)

    def _target(self, method: str, params: dict[str, Any]) -> tuple[Member, Any]:
        """The owning profile of a routed request; rewrites `params` to the server's names."""
        if method in ("tools/call", "prompts/get"):
            name = params.get("name")
            table = self.catalog.tools if method == "tools/call" else self.catalog.prompts
            route = table.route(name) if isinstance(name, str) else None
            if route is None:
                what = "tool" if method == "tools/call" else "prompt"
                raise RequestError(jsonrpc.INVALID_PARAMS, f"unknown {what}: {name!r}")
            params["name"] = route.original
            return self._by_alias[route.alias], name
        if method == "completion/complete":
            ref = params.get("ref")
            if not isinstance(ref, dict):
                raise RequestError(jsonrpc.INVALID_PARAMS, "completion/complete needs a ref")
            if ref.get("type") == "ref/prompt" and isinstance(ref.get("name"), str):
                route = self.catalog.prompts.route(ref["name"])
                if route is None:
                    raise RequestError(jsonrpc.INVALID_PARAMS, f"unknown prompt: {ref['name']!r}")
                params["ref"] = {**ref, "name": route.original}
                return self._by_alias[route.alias], None
            if ref.get("type") == "ref/resource" and isinstance(ref.get("uri"), str):
                owner = self.catalog.uris.resolve(ref["uri"])
                if owner is None:
                    raise RequestError(jsonrpc.INVALID_PARAMS, f"unknown resource: {ref['uri']!r}")
                params["ref"] = {**ref, "uri": owner.uri}
                return self._by_alias[owner.alias], None
            raise RequestError(jsonrpc.INVALID_PARAMS, "unsupported completion ref")
        uri = params.get("uri")
        owner = self.catalog.uris.resolve(uri) if isinstance(uri, str) else None
        if owner is None:
            raise RequestError(jsonrpc.INVALID_PARAMS, f"unknown resource: {uri!r}")
        params["uri"] = owner.uri
        return self._by_alias[owner.alias], uri

    async def _route_after_attempt(self, message: Message, member: Member) -> None:
        assert message.id is not None
        up = await member.wait_outcome(self.settings.call_wait)
        if not self._router.end_local(message.id):
            return  # cancelled meanwhile
        if not up:
            log.info("profile %s is still down; answering %s with an error", member.alias, message.method)
        try:
            await self._route(message, joined=True, waited=True)
        except RequestError as exc:
            await self._write(jsonrpc.error_response(message.id, exc.code, exc.message, exc.data))

    @staticmethod
    def _wake(member: Member) -> None:
        """Someone wants this profile now: an immediate attempt by the supervisor and by the relay."""
        member.wanted.set()
        member.check.set()
        member.relay.reconnect_now()

    async def _answer_unavailable(self, member: Member, client_id: JsonId, method: str) -> None:
        reason = member.reason or member.relay.last_error or "it is not connected"
        text = f"The server of profile {member.describe()} is unavailable: {reason}"
        if method == "tools/call":
            result: dict[str, Any] = {"content": [{"type": "text", "text": text}], "isError": True}
            if self._era == "modern":
                result["resultType"] = "complete"
            await self._write(jsonrpc.from_obj({"jsonrpc": "2.0", "id": client_id, "result": result}))
        else:
            data = {"profile": member.profile.name, "reason": reason}
            await self._write(jsonrpc.error_response(client_id, jsonrpc.INTERNAL_ERROR, text, data))

    # ----------------------------------------------------------------------------------------------
    # Profile → aggregator

    async def _from_member(self, member: Member, message: Message) -> None:
        try:
            if message.kind is Kind.RESPONSE:
                await self._member_response(member, message)
            elif message.kind is Kind.NOTIFICATION:
                await self._member_notification(member, message)
            elif message.kind is Kind.REQUEST:
                await self._member_request(member, message)
            else:
                log.warning("profile %s: dropping a batch from the server", member.alias)
        except Exception:
            # One profile's odd message must never take the others down.
            log.exception("profile %s: could not relay a message from the server", member.alias)

    async def _member_response(self, member: Member, message: Message) -> None:
        out = self._router.take_response(member.alias, message.id)
        if out is None:
            log.debug("profile %s: dropping a response for unknown id %r", member.alias, message.id)
            return
        if out.client_id is None:
            out.context.resolve(message)
            return
        body = dict(message.body)
        body["id"] = out.client_id
        reason = relay_error_reason(body)
        if reason is not None:
            self._wake(member)  # perhaps down: find out now
            if out.method == "tools/call":
                text = f"The server of profile {member.describe()} is unavailable: {reason}"
                body.pop("error", None)
                body["result"] = {"content": [{"type": "text", "text": text}], "isError": True}
                if self._era == "modern":
                    body["result"]["resultType"] = "complete"
        elif "result" in body:
            body["result"] = self.catalog.expose_result(member.alias, out.method, body["result"])
        await self._write(jsonrpc.from_obj(body))

    async def _member_notification(self, member: Member, message: Message) -> None:
        method = message.method
        params = message.params
        if method == "notifications/progress":
            if self._router.progress_target(member.alias, params.get("progressToken")) is None:
                log.debug("profile %s: dropping progress for a token it was not given", member.alias)
                return
            await self._write(message)
        elif method in KINDS_OF_NOTIFICATION:
            self._list_changed(member, set(KINDS_OF_NOTIFICATION[method]))
        elif method == "notifications/subscriptions/acknowledged":
            log.debug("profile %s acknowledged the aggregator's listen: %s", member.alias, params)
        elif method == "notifications/message":
            logger = params.get("logger")
            new = dict(params)
            new["logger"] = f"{member.alias}/{logger}" if isinstance(logger, str) and logger else member.alias
            await self._write(jsonrpc.notification(method, new))
        elif method == "notifications/resources/updated" and isinstance(params.get("uri"), str):
            new = dict(params)
            new["uri"] = self.catalog.expose_uri(member.alias, params["uri"])
            await self._write(jsonrpc.notification(method, new))
        elif method == "notifications/cancelled":
            proxy_id = self._router.server_cancelled(member.alias, params.get("requestId"))
            if proxy_id is not None:
                await self._write(jsonrpc.notification(method, {**params, "requestId": proxy_id}))
        else:
            await self._write(message)

    async def _member_request(self, member: Member, message: Message) -> None:
        assert message.id is not None
        if message.method == "ping":
            self._post_quietly(member, jsonrpc.from_obj({"jsonrpc": "2.0", "id": message.id, "result": {}}))
            return
        proxy_id = self._router.server_request(member.alias, message.id)
        await self._write(message.with_id(proxy_id))

    # ----------------------------------------------------------------------------------------------
    # Watching each profile: connect, detect failure, recover

    async def _supervise_all(self, scope: anyio.CancelScope) -> None:
        with scope:
            async with anyio.create_task_group() as tg:
                for member in self.members:
                    tg.start_soon(self._supervise, member)

    async def _supervise(self, member: Member) -> None:
        await member.wanted.wait()
        await self._client_init.wait()
        failures = 0
        while True:
            member.check = anyio.Event()
            if member.init_result is not None and not member.is_up and not member.relay.is_ready:
                # The relay rebuilds its upstream session by itself (with its own backoff) and reports when
                # it is ready (`_relay_state` sets `check`); a call cuts its backoff short.
                member.attempted.set()
                with anyio.move_on_after(self.settings.health_interval):
                    await member.check.wait()
                continue
            try:
                up = await self._attempt(member)
            except Exception:
                # A bug must cost this profile its attempt, never the other profiles their traffic.
                log.exception("profile %s: the connection attempt failed", member.alias)
                self._set_down(member, "internal error in the proxy (see its log)")
                up = False
            if up:
                failures = 0
                delay = self.settings.health_interval
            else:
                failures += 1
                delay = self._backoff(failures)
            member.attempted.set()
            with anyio.move_on_after(delay):
                await member.check.wait()

    def _backoff(self, failures: int) -> float:
        return backoff_delay(failures, self.settings.retry_initial, self.settings.retry_max)

    def _relay_state(self, member: Member, ready: bool, reason: str | None) -> None:
        """The relay of `member` reports its upstream ready or lost (called from inside the relay)."""
        if self._closing or member.init_result is None:
            return  # before the first join the supervisor's own request tells the outcome
        if ready:
            if not member.is_up:
                log.info("profile %s: connected again; re-reading its lists", member.alias)
                member.check.set()
            return
        was_up = member.is_up
        reason = reason or member.relay.last_error or "the connection was lost"
        self._set_down(member, reason, failed=not member.session_lost)
        if was_up:
            self._announce_soon()

    async def _attempt(self, member: Member) -> bool:
        """One connection attempt or health check; whether the profile is up afterwards."""
        fresh = member.init_result is None
        losses = member.losses
        try:
            if fresh:
                if member.state is State.IDLE:
                    member.state = State.CONNECTING
                try:
                    result = await self._join(member)
                finally:
                    member.initialize_done.set()
                member.init_result = result
                log.info("profile %s joined (%s)", member.alias, _server_name(result))
            else:
                await self._health_check(member)
            if member.is_up:
                if self._era == "modern":
                    self._keep_listening(member)
                return True
            await self._client_initialized.wait()
            if self._era == "handshake" and not member.initialized_sent:
                member.initialized_sent = True
                member.post(jsonrpc.notification("notifications/initialized"))
            if fresh and self._log_level is not None:
                await self._quiet_request(member, "logging/setLevel", self._log_level)
            member.dirty.clear()
            await self._load_lists(member, KINDS)
        except MemberError as exc:
            self._set_down(member, exc.reason)
            await self._announce_changes()
            return False
        if member.losses != losses and not member.relay.is_ready:
            # Lost again while its lists were read: wait for the relay's next report.
            self._set_down(member, member.relay.last_error or "the connection was lost", failed=False)
            return False
        if member.state is State.DOWN:
            log.warning("profile %s is back", member.alias)
        member.state = State.UP
        member.reason = None
        self.catalog.set_up(member.alias, True)
        member.signal()
        if self._era == "modern":
            self._keep_listening(member)
        await self._announce_changes()
        return True

    async def _join(self, member: Member) -> dict[str, Any]:
        """A profile's first exchange: `initialize` with the client's params, or (2026-07-28) `server/discover`;
        the result in the shape of an initialize result."""
        timeout = self.settings.initialize_timeout
        if self._era == "modern":
            discovered = await member.request("server/discover", self._own_params(None), timeout)
            return eras.initialize_result_from_discover(discovered, None)
        assert self._init_params is not None
        return await member.request("initialize", self._init_params, timeout, cancellable=False)

    async def _health_check(self, member: Member) -> None:
        """`MemberError` if the profile cannot be reached; an error answer from its server means it is alive.

        A fallback: the relay reports a lost upstream itself when it can tell. 2026-07-28 has no `ping`, so
        a modern session re-reads the tools (which also reaches a server behind an era bridge, and catches
        changes its listen stream does not carry: a bridge forwards only what the server's capabilities
        promise).
        """
        if self._era != "modern":
            method = "ping"
        elif "tools" in member.capabilities:
            try:
                tools = await self._read_all(member, TOOLS, self.settings.health_timeout)
            except MemberError as exc:
                if exc.unreachable:
                    raise
                return
            if member.is_up:
                self.catalog.set_list(member.alias, TOOLS, tools)
                await self._announce_changes()
            return
        else:
            method = "server/discover"
        try:
            await member.request(method, self._own_params(None), self.settings.health_timeout)
        except MemberError as exc:
            if exc.unreachable:
                raise

    def _keep_listening(self, member: Member) -> None:
        """Keep one `subscriptions/listen` open on a profile (2026-07-28) so its list changes reach us."""
        if member.listen is not None or member.listen_refused:
            return
        waiter = Waiter()
        out = self._router.own(member.alias, "subscriptions/listen", waiter)
        params = self._own_params({"notifications": dict(LISTEN_FILTER)})
        try:
            member.post(jsonrpc.request(out.upstream_id, "subscriptions/listen", params))
        except MemberError:
            self._router.abandon(out)
            return
        member.listen = (out, waiter)
        self._spawn(self._listen_ended, member, out, waiter)

    def _stop_listening(self, member: Member) -> None:
        """Close the aggregator's listen on a profile (at exit: the relay need not wait for it)."""
        if member.listen is None:
            return
        out, waiter = member.listen
        member.listen = None
        self._router.abandon(out)
        note = {"requestId": out.upstream_id, "reason": "the client went away"}
        self._post_quietly(member, jsonrpc.notification("notifications/cancelled", note))
        waiter.resolve(jsonrpc.from_obj({"jsonrpc": "2.0", "id": out.upstream_id, "result": {}}))

    async def _listen_ended(self, member: Member, out: Outbound, waiter: Waiter) -> None:
        await waiter.done.wait()
        if member.listen is not None and member.listen[0] is out:
            member.listen = None
        body = waiter.response.body if waiter.response is not None else {}
        if self._closing:
            return
        if relay_error_reason(body) is not None:
            log.info("profile %s: the listen stream was lost: %s", member.alias, relay_error_reason(body))
            self._wake(member)  # is it still there? The listen is reopened once it is up
        elif isinstance(body.get("error"), dict):
            log.warning(
                "profile %s refuses subscriptions/listen (%s); its list changes are seen at health checks",
                member.alias,
                body["error"].get("message"),
            )
            member.listen_refused = True
        else:
            log.info("profile %s closed the listen stream; reopening it at the next check", member.alias)

    def _set_down(self, member: Member, reason: str, *, failed: bool = True) -> None:
        """Mark a profile down; `failed`: an attempt failed (not merely a session lost and being rebuilt)."""
        if member.state is not State.DOWN or member.reason != reason:
            log.warning("profile %s is unavailable: %s", member.alias, reason)
        member.state = State.DOWN
        member.reason = reason
        self.catalog.set_up(member.alias, False)
        if failed:
            member.failures += 1
        member.signal()

    async def _load_lists(self, member: Member, kinds: Sequence[str]) -> None:
        """Re-read `kinds` of a profile to their last page; `MemberError` if it cannot be reached."""
        for kind in kinds:
            if CAPABILITY[kind] not in member.capabilities:
                self.catalog.set_list(member.alias, kind, [])
                continue
            try:
                items = await self._read_all(member, kind)
            except MemberError as exc:
                if exc.unreachable:
                    raise
                log.warning("profile %s: %s; showing none", member.alias, exc.reason)
                items = []
            self.catalog.set_list(member.alias, kind, items)
            if kind in (TOOLS, PROMPTS):
                self._log_names(member, kind)

    def _log_names(self, member: Member, kind: str) -> None:
        """The name mapping at info level: how many names, and each one that is not plain `alias__name`."""
        table = self.catalog.tools if kind == TOOLS else self.catalog.prompts
        mapping = table.mapping(member.alias)
        renamed = [
            f"{original!r} as {exposed}"
            for original, exposed in mapping.items()
            if exposed != f"{member.alias}{SEPARATOR}{original}"
        ]
        log.info(
            "profile %s: %d %s exposed as %s%s<name>%s",
            member.alias,
            len(mapping),
            kind,
            member.alias,
            SEPARATOR,
            ("; renamed: " + ", ".join(renamed)) if renamed else "",
        )

    async def _read_all(self, member: Member, kind: str, timeout: float | None = None) -> list[Any]:
        items: list[Any] = []
        seen: set[str] = set()
        cursor: str | None = None
        for _ in range(self.settings.max_pages):
            params = {"cursor": cursor} if cursor is not None else None
            result = await member.request(
                LIST_METHODS[kind], self._own_params(params), timeout or self.settings.list_timeout
            )
            page = result.get(kind)
            if isinstance(page, list):
                items.extend(page)
            next_cursor = result.get("nextCursor")
            if not isinstance(next_cursor, str) or not next_cursor:
                return items
            if next_cursor in seen:
                log.warning(
                    "profile %s: %s repeats cursor %r; stopping there",
                    member.alias,
                    LIST_METHODS[kind],
                    next_cursor,
                )
                return items
            seen.add(next_cursor)
            cursor = next_cursor
        log.warning(
            "profile %s: %s has over %d pages; showing the first ones",
            member.alias,
            LIST_METHODS[kind],
            self.settings.max_pages,
        )
        return items

    def _list_changed(self, member: Member, kinds: set[str]) -> None:
        if not member.is_up:
            member.check.set()  # a relay announces lists after rebuilding a session: the profile may be back
            return
        member.dirty |= kinds
        if not member.reloading:
            member.reloading = True
            self._spawn(self._reload, member)

    async def _reload(self, member: Member) -> None:
        try:
            await anyio.sleep(self.settings.debounce)
            while member.dirty and member.is_up:
                kinds = [kind for kind in KINDS if kind in member.dirty]
                member.dirty.clear()
                try:
                    await self._load_lists(member, kinds)
                except MemberError:
                    member.check.set()
                    return
                await self._announce_changes()
        finally:
            member.reloading = False

    def _announce_soon(self) -> None:
        """Announce changes after the debounce delay (a profile that flaps within it costs nothing)."""
        if self._announcing:
            return
        self._announcing = True
        self._spawn(self._announce_later)

    async def _announce_later(self) -> None:
        try:
            await anyio.sleep(self.settings.debounce)
        finally:
            self._announcing = False
        await self._announce_changes()

    async def _announce_changes(self) -> None:
        """Tell the client about each merged list that changed since it last saw it."""
        if not self._client_initialized.is_set():
            return
        notes: list[str] = []
        for kind, version in self.catalog.versions().items():
            # Only lists the client has read can be out of date on its side.
            if kind in self._announced and self._announced[kind] != version:
                self._announced[kind] = version
                if CHANGE_NOTIFICATION[kind] not in notes:
                    notes.append(CHANGE_NOTIFICATION[kind])
        for note in notes:
            if self._era != "modern":
                await self._write(jsonrpc.notification(note))
                continue
            # 2026-07-28: notifications travel on the client's listen streams that asked for them.
            for listen_id, honoured in list(self._listens.values()):
                if eras.listen_wants(honoured, note, None):
                    await self._write(jsonrpc.notification(note, eras.tag_subscription(None, listen_id)))


def _server_name(result: dict[str, Any]) -> str:
    info = result.get("serverInfo")
    if isinstance(info, dict):
        return f"{info.get('name')} {info.get('version')}"
    return "unnamed server"
