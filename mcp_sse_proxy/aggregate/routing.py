"""Requests routed to one profile and what the profiles send back, with ids translated by `Router`.

A routed request goes to the profile owning the name or URI it mentions (rewritten to the server's own);
a call to a down profile asks its relay to reconnect now and waits briefly for it. The servers' answers,
notifications and requests reach the client with names, URIs and ids in the aggregate's terms; their
requests wait for the client's answer within the router's bounds, and expire with an error to the server.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anyio

from ..protocol import messages as jsonrpc
from ..protocol.messages import JsonId, Kind, Message
from .catalog import KINDS_OF_NOTIFICATION, MergedLists
from .member import Member, MemberError, relay_error_reason
from .reading import ListReader
from .router import Router
from .session import Session
from .settings import RequestError, Settings
from .supervisor import Supervisor

log = logging.getLogger("mcp_sse_proxy.aggregate")

#: Writes the answer to a client request if it is still unanswered (the request boundary's one door).
Answer = Callable[[JsonId, Message], Awaitable[None]]
Write = Callable[[Message], Awaitable[None]]
#: Runs `func(*args)` in a task of its own behind the request boundary of `client_id`.
SpawnRequest = Callable[..., None]


class Joining(Exception):
    """The owner of a routed request is still joining: answer once it is in (or its time is up)."""


class Routing:
    def __init__(
        self,
        members: Mapping[str, Member],
        settings: Settings,
        session: Session,
        lists: MergedLists,
        reader: ListReader,
        router: Router,
        supervisor: Supervisor,
        write: Write,
        answer: Answer,
        spawn_request: SpawnRequest,
    ) -> None:
        self._by_alias = members
        self._settings = settings
        self._session = session
        self._lists = lists
        self._reader = reader
        self._router = router
        self._supervisor = supervisor
        self._write = write
        self._answer = answer
        self._spawn_request = spawn_request
        self._expiry_wake = anyio.Event()

    # ---- client → profile ---------------------------------------------------------------------------------

    async def route(self, message: Message, *, joined: bool, waited: bool = False) -> None:
        """Forward a routed request to its owner, or answer it; `Joining` if that should wait.

        The request is the aggregator's (`Router.is_local`) until it is forwarded.
        """
        assert message.id is not None and message.method is not None
        method = message.method
        params = dict(message.params)
        member, context = self._target(method, params)
        if not member.is_up and not joined and member.wanted.is_set() and not member.attempted.is_set():
            raise Joining
        if not member.is_up:
            if waited:
                await self._answer(message.id, self.unavailable(member, message.id, method))
                return
            # A call to a down profile triggers an immediate attempt and waits a little for it.
            member.wake()
            self._spawn_request(message.id, self._route_after_attempt, message, member)
            return
        meta = params.get("_meta")
        token = meta.get("progressToken") if isinstance(meta, dict) else None
        out = self._router.forward(member.alias, message.id, method, token, context)
        try:
            await member.post(jsonrpc.request(out.upstream_id, method, params))
        except MemberError as exc:
            if self._router.take_response(member.alias, out.upstream_id) is not None:  # not cancelled
                await self._write(self.unavailable(member, message.id, method, exc.reason))

    async def route_when_joined(self, message: Message) -> None:
        """A routed request whose owner may be a profile still joining: look once they are in."""
        assert message.id is not None
        await self._supervisor.await_members()
        await self._route_again(message, waited=False)

    async def _route_after_attempt(self, message: Message, member: Member) -> None:
        up = await member.wait_outcome(self._settings.call_wait)
        if not up and message.id is not None and self._router.is_local(message.id):
            log.info("profile %s is still down; answering %s with an error", member.alias, message.method)
        await self._route_again(message, waited=True)

    async def _route_again(self, message: Message, *, waited: bool) -> None:
        """After a wait: route the request for good, unless the client cancelled it meanwhile."""
        assert message.id is not None
        if not self._router.is_local(message.id):
            return
        try:
            await self.route(message, joined=True, waited=waited)
        except RequestError as exc:
            reply = jsonrpc.error_response(message.id, exc.code, exc.message, exc.data)
            await self._answer(message.id, reply)

    def _target(self, method: str, params: dict[str, Any]) -> tuple[Member, Any]:
        """The owning profile of a routed request; rewrites `params` to the server's names."""
        if method in ("tools/call", "prompts/get"):
            name = params.get("name")
            table = self._lists.tools if method == "tools/call" else self._lists.prompts
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
                route = self._lists.prompts.route(ref["name"])
                if route is None:
                    raise RequestError(jsonrpc.INVALID_PARAMS, f"unknown prompt: {ref['name']!r}")
                params["ref"] = {**ref, "name": route.original}
                return self._by_alias[route.alias], None
            if ref.get("type") == "ref/resource" and isinstance(ref.get("uri"), str):
                owner = self._lists.uris.resolve(ref["uri"])
                if owner is None:
                    raise RequestError(jsonrpc.INVALID_PARAMS, f"unknown resource: {ref['uri']!r}")
                params["ref"] = {**ref, "uri": owner.uri}
                return self._by_alias[owner.alias], None
            raise RequestError(jsonrpc.INVALID_PARAMS, "unsupported completion ref")
        uri = params.get("uri")
        owner = self._lists.uris.resolve(uri) if isinstance(uri, str) else None
        if owner is None:
            raise RequestError(jsonrpc.INVALID_PARAMS, f"unknown resource: {uri!r}")
        params["uri"] = owner.uri
        return self._by_alias[owner.alias], uri

    def unavailable(
        self, member: Member, client_id: JsonId, method: str, reason: str | None = None
    ) -> Message:
        """The answer to a request its profile cannot take: a tool error for a call, else a JSON-RPC error."""
        reason = reason or member.reason or member.relay.last_error or "it is not connected"
        text = f"The server of profile {member.describe()} is unavailable: {reason}"
        if method == "tools/call":
            result: dict[str, Any] = {"content": [{"type": "text", "text": text}], "isError": True}
            if self._session.is_modern:
                result["resultType"] = "complete"
            return jsonrpc.from_obj({"jsonrpc": "2.0", "id": client_id, "result": result})
        data = {"profile": member.profile.name, "reason": reason}
        return jsonrpc.error_response(client_id, jsonrpc.INTERNAL_ERROR, text, data)

    async def fail_pending(self, member: Member) -> None:
        """The relay of `member` failed: answer everything routed to it, and its own requests."""
        for out in self._router.pending_for(member.alias):
            self._router.abandon(out)
            if out.client_id is not None:
                await self._write(self.unavailable(member, out.client_id, out.method))
            else:
                reason = member.reason or "relay failed"
                error = jsonrpc.error_response(
                    out.upstream_id, jsonrpc.INTERNAL_ERROR, reason, {"upstream": ""}
                )
                out.context.resolve(error)

    def client_cancelled(self, message: Message) -> None:
        """The client cancelled a forwarded request: the cancel goes to its profile under its upstream id."""
        request_id = message.params.get("requestId")
        out = self._router.cancel(request_id) if isinstance(request_id, (str, int)) else None
        if out is not None:
            params = {**message.params, "requestId": out.upstream_id}
            _post_quietly(self._by_alias[out.alias], jsonrpc.notification("notifications/cancelled", params))

    async def client_answered(self, message: Message) -> None:
        """The client's answer to a server's request: back to that server under its own id."""
        target = self._router.take_client_answer(message.id)
        if target is None:
            log.debug("dropping the client's answer to unknown id %r", message.id)
            return
        alias, server_id = target
        await _post_or_log(self._by_alias[alias], message.with_id(server_id))

    # ---- profile → client ---------------------------------------------------------------------------------

    async def from_member(self, member: Member, message: Message) -> None:
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
        try:
            reason = relay_error_reason(body)
            if reason is not None:
                member.wake()  # perhaps down: find out now
                if out.method == "tools/call":
                    await self._write(self.unavailable(member, out.client_id, out.method, reason))
                    return
            elif "result" in body:
                body["result"] = self._lists.expose_result(member.alias, out.method, body["result"])
            reply = jsonrpc.from_obj(body)
        except Exception:
            # The route was taken and its entry is gone: this request still gets exactly one answer.
            log.exception("profile %s: could not translate the answer to %s", member.alias, out.method)
            reply = jsonrpc.error_response(
                out.client_id, jsonrpc.INTERNAL_ERROR, "the proxy could not relay the server's answer"
            )
        await self._write(reply)

    async def _member_notification(self, member: Member, message: Message) -> None:
        method = message.method
        params = message.params
        if method == "notifications/progress":
            if self._router.progress_target(member.alias, params.get("progressToken")) is None:
                log.debug("profile %s: dropping progress for a token it was not given", member.alias)
                return
            await self._write(message)
        elif method in KINDS_OF_NOTIFICATION:
            self._reader.changed(member, set(KINDS_OF_NOTIFICATION[method]))
        elif method == "notifications/subscriptions/acknowledged":
            log.debug("profile %s acknowledged the aggregator's listen: %s", member.alias, params)
        elif method == "notifications/message":
            logger = params.get("logger")
            new = dict(params)
            new["logger"] = f"{member.alias}/{logger}" if isinstance(logger, str) and logger else member.alias
            await self._write(jsonrpc.notification(method, new))
        elif method == "notifications/resources/updated" and isinstance(params.get("uri"), str):
            new = dict(params)
            new["uri"] = self._lists.expose_uri(member.alias, params["uri"])
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
            _post_quietly(member, jsonrpc.from_obj({"jsonrpc": "2.0", "id": message.id, "result": {}}))
            return
        proxy_id = self._router.server_request(member.alias, message.id, anyio.current_time())
        if proxy_id is None:
            text = "too many requests of the servers are waiting for the client's answer"
            _post_quietly(member, jsonrpc.error_response(message.id, jsonrpc.INTERNAL_ERROR, text))
            return
        self._expiry_wake.set()
        await self._write(message.with_id(proxy_id))

    async def expire_server_requests(self) -> None:
        """Forever: answer each server request the client leaves unanswered past its time with an error."""
        while True:
            self._expiry_wake = anyio.Event()
            deadline = self._router.next_server_request_deadline()
            if deadline is None:
                await self._expiry_wake.wait()
                continue
            with anyio.move_on_after(max(0.0, deadline - anyio.current_time())):
                await self._expiry_wake.wait()
            for proxy_id, alias, server_id in self._router.expire_server_requests(anyio.current_time()):
                log.warning("profile %s: the client did not answer request %r in time", alias, server_id)
                text = "the client did not answer in time"
                _post_quietly(
                    self._by_alias[alias], jsonrpc.error_response(server_id, jsonrpc.INTERNAL_ERROR, text)
                )
                note = {"requestId": proxy_id, "reason": "the server's request expired in the proxy"}
                await self._write(jsonrpc.notification("notifications/cancelled", note))


def _post_quietly(member: Member, message: Message) -> None:
    """A message that needs no answer or whose loss the peer survives (a `ping` answer, a cancel)."""
    try:
        member.post_nowait(message)
    except MemberError as exc:
        log.debug("profile %s: %s", member.alias, exc.reason)


async def _post_or_log(member: Member, message: Message) -> None:
    try:
        await member.post(message)
    except MemberError as exc:
        log.info("profile %s: %s", member.alias, exc.reason)
