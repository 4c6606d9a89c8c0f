"""`ModernToHandshake`: a 2026-07-28 client in front of a handshake-era server (legacy SSE or 2025 Streamable).

The bridge runs `initialize` upstream itself (from the client's `_meta`), answers `server/discover` from
its result, strips the modern `_meta` keys, maps results and errors to the modern shapes, turns a request's
`logLevel` into `logging/setLevel`, serves `subscriptions/listen` from list_changed and
`resources/subscribe`, and turns a server request arriving mid-call (sampling, elicitation, roots) into an
`input_required` result, holding it until the client's retry answers it. What is kept per call and per
listen lives in the pure `CallBook` and `ListenBook`; this module only moves messages.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import anyio
from anyio.abc import TaskGroup

from ..awaited import AwaitedReplies
from ..config.model import Profile
from ..errors import UpstreamError
from ..protocol import eras
from ..protocol import messages as jsonrpc
from ..protocol.eras.calls import AnswerServer, AskClient, CallBook, Stale
from ..protocol.eras.listens import ListenBook
from ..protocol.ids import ProxyIds
from ..protocol.messages import JsonId, Kind, Message
from ..transports.base import BridgedUpstream, Deliver

log = logging.getLogger("mcp_sse_proxy.bridge")

LIST_AND_RESOURCE_NOTIFICATIONS = frozenset(
    {
        "notifications/tools/list_changed",
        "notifications/prompts/list_changed",
        "notifications/resources/list_changed",
        "notifications/resources/updated",
    }
)


class ModernToHandshake:
    """Serves a 2026-07-28 client from a handshake-era server (see the module doc)."""

    #: Cancellation is a notification upstream (not a closed stream) through this bridge.
    cancels_by_notification = True

    def __init__(
        self, task_group: TaskGroup, deliver: Deliver, meta: dict[str, Any], profile: Profile
    ) -> None:
        self._tg = task_group
        self._deliver = deliver
        self._meta = meta
        #: Every request the bridge makes on its own is answered within this, or fails.
        self._read_timeout = profile.read_timeout
        self._inner: BridgedUpstream | None = None
        self.name = "handshake bridge"
        self.url = ""
        self._ids = ProxyIds()
        self._own = AwaitedReplies(self._ids)
        self._lock = anyio.Lock()
        self._init_result: dict[str, Any] | None = None
        self._server_info: dict[str, Any] | None = None
        # A held request waits for the client's retry as long as a request may take.
        self._calls = CallBook(self._ids, hold_limit=profile.request_timeout)
        self._listens = ListenBook()
        self._expiry_wake = anyio.Event()
        self._expiry_running = False

    @property
    def loses_in_flight_on_session_loss(self) -> bool:
        return self._inner is not None and self._inner.loses_in_flight_on_session_loss

    def attach(self, inner: BridgedUpstream) -> None:
        self._inner = inner
        self.name = f"{inner.name} (handshake era via bridge)"
        self.url = inner.url

    async def open(self) -> None:
        inner = self._require_inner()
        self._init_result = None  # a new server session: the handshake runs again before the next request
        self._calls.reset()
        await inner.open()

    def forget(self, request_id: JsonId) -> None:
        """The relay gave up on `request_id`: drop its call (or close its listen)."""
        uris = self._listens.close(request_id)
        if uris is not None:
            for uri in uris:
                self._spawn_own("resources/unsubscribe", {"uri": uri})
            return
        self._calls.forget(request_id)

    async def close(self) -> None:
        if self._inner is not None:
            await self._inner.close()

    def _require_inner(self) -> BridgedUpstream:
        if self._inner is None:
            raise UpstreamError("the bridge has no upstream attached")
        return self._inner

    # ------------------------------------------------------------------------------------------
    # The bridge's own exchanges, each bounded by the read timeout

    async def handshake(self, probing: bool = False) -> dict[str, Any]:
        """Run `initialize` and `notifications/initialized` upstream (once per server session).

        With `probing` (auto-detection), a Streamable HTTP URL that is not an MCP endpoint raises
        `TransportMismatch` so the next candidate is tried. Raises `UpstreamError` when the server does not
        answer within the read timeout.
        """
        async with self._lock:
            if self._init_result is not None:
                return self._init_result
            params = eras.initialize_params_from_modern(self._meta)
            reply = await self._own_request("initialize", params, probing=probing)
            result = reply.body.get("result")
            if not isinstance(result, dict):
                raise UpstreamError(f"the server refused the bridged initialize: {reply.body.get('error')}")
            await self._notify("notifications/initialized")
            self._init_result = result
            info = result.get("serverInfo")
            self._server_info = info if isinstance(info, dict) else None
            for uri in self._listens.subscriptions():
                await self._subscribe(uri)
            return result

    async def _notify(self, method: str) -> None:
        inner = self._require_inner()
        try:
            with anyio.fail_after(self._read_timeout):
                await inner.send(jsonrpc.notification(method))
        except TimeoutError:
            raise UpstreamError(
                f"the server did not take the bridge's {method} within {self._read_timeout:g} s"
            ) from None

    async def _own_request(
        self, method: str, params: dict[str, Any] | None, *, probing: bool = False
    ) -> Message:
        inner = self._require_inner()

        async def send(request: Message) -> None:
            await inner.send(request, probing=probing)

        return await self._own.ask(send, method, params, timeout=self._read_timeout, asker="bridge")

    def _spawn_own(self, method: str, params: dict[str, Any]) -> None:
        async def run() -> None:
            try:
                await self._own_request(method, params)
            except UpstreamError as exc:
                log.warning("%s failed: %s", method, exc.reason)

        self._tg.start_soon(run)

    async def _subscribe(self, uri: str) -> None:
        reply = await self._own_request("resources/subscribe", {"uri": uri})
        if "error" in reply.body:
            log.warning("resources/subscribe %s failed: %s", uri, reply.body["error"])

    async def _apply_log_level(self, init: dict[str, Any]) -> None:
        """One process-wide `logging/setLevel` upstream: the lowest level any call in flight asked for."""
        if "logging" not in (init.get("capabilities") or {}):
            return
        level = self._calls.level_to_apply()
        if level is None:
            return
        reply = await self._own_request("logging/setLevel", {"level": level})
        if "error" in reply.body:
            log.warning("the server refused logging/setLevel %s: %s", level, reply.body["error"])

    # ------------------------------------------------------------------------------------------
    # Client → server

    async def send(self, message: Message) -> None:
        inner = self._require_inner()
        if message.kind is Kind.NOTIFICATION:
            await self._client_notification(message)
            return
        if message.kind is not Kind.REQUEST or message.id is None:
            return  # a modern client sends no responses
        meta = eras.request_meta(message.params)
        if meta:
            self._meta = meta
        init = await self.handshake()
        method = message.method or ""
        if method == "server/discover":
            await self._answer(message.id, eras.discover_result_from_initialize(init, eras.MODERN_VERSIONS))
            return
        if method == "subscriptions/listen":
            await self._open_listen(message, init)
            return
        responses, state = eras.mrtr_retry_parts(message.params)
        if state is not None and self._calls.is_ours(state):
            await self._resume(message.id, state, responses)
            return
        level = meta.get(eras.LOG_LEVEL_KEY)
        upstream_id = self._calls.start(message.id, method, level if isinstance(level, str) else None)
        body = {**message.body, "id": upstream_id}
        params = eras.strip_modern_meta(message.params)
        if params is None:
            body.pop("params", None)
        else:
            body["params"] = params

        async def route(reply: Message) -> None:
            # Replies on this call's own stream (Streamable HTTP): a server request there belongs to it.
            await self.from_upstream(reply, upstream_id)

        try:
            await self._apply_log_level(init)
            await inner.send(jsonrpc.from_obj(body), deliver=route)
        except BaseException:
            self._calls.abandon(upstream_id)  # the relay answers the client; nothing may be tied to it
            raise

    async def _client_notification(self, message: Message) -> None:
        if message.method != "notifications/cancelled":
            return  # 2026-07-28 defines no other client notifications
        request_id = message.params.get("requestId")
        if not isinstance(request_id, (str, int)):
            return
        if request_id in self._listens or self._listens.was_closed(request_id):
            self.forget(request_id)
            return
        upstream_id = self._calls.cancel(request_id)
        await self._require_inner().send(
            jsonrpc.notification("notifications/cancelled", {**message.params, "requestId": upstream_id})
        )

    async def _open_listen(self, message: Message, init: dict[str, Any]) -> None:
        assert message.id is not None
        honoured = eras.acknowledged_filter(message.params.get("notifications"), init.get("capabilities"))
        new_uris = self._listens.open(message.id, honoured)
        await self._deliver(jsonrpc.from_obj(eras.listen_acknowledgement(message.id, honoured)))
        for uri in new_uris:
            await self._subscribe(uri)

    async def _resume(self, retry_id: JsonId, state: str, responses: dict[str, Any] | None) -> None:
        """The client's retry answers a held server request; the held call's answer goes to the retry."""
        outcome = self._calls.retry(retry_id, state, responses, anyio.current_time())
        if isinstance(outcome, Stale):
            await self._deliver(jsonrpc.error_response(retry_id, jsonrpc.INVALID_PARAMS, outcome.message))
            return
        for action in outcome:
            await self._carry_out(action)

    async def _carry_out(self, action: AskClient | AnswerServer) -> None:
        if isinstance(action, AskClient):
            question = [(action.key, action.method, action.params)]
            result = eras.input_required_result(question, action.state, self._server_info)
            await self._answer(action.client_id, result)
            self._watch_holds()
            return
        reply: dict[str, Any] = {"jsonrpc": "2.0", "id": action.server_request_id}
        if action.error is not None:
            reply["error"] = action.error
        else:
            reply["result"] = action.result
        await self._require_inner().send(jsonrpc.from_obj(reply))

    async def _answer(self, msg_id: JsonId, result: dict[str, Any]) -> None:
        await self._deliver(jsonrpc.from_obj({"jsonrpc": "2.0", "id": msg_id, "result": result}))

    # ------------------------------------------------------------------------------------------
    # Server → client

    async def from_upstream(self, message: Message, call_id: JsonId | None = None) -> None:
        """Where the inner transport delivers what the server sends (`call_id`: the call whose stream it was)."""
        if message.kind is Kind.RESPONSE:
            await self._server_response(message)
        elif message.kind is Kind.REQUEST:
            await self._server_request(message, call_id)
        elif message.kind is Kind.NOTIFICATION:
            await self._server_notification(message)
        else:
            log.warning("dropping a JSON-RPC batch from the server: the client speaks 2026-07-28")

    async def _server_response(self, message: Message) -> None:
        if self._own.resolve(message) or message.id is None:
            return
        finished = self._calls.server_response(message.id)
        if finished is None:
            log.debug("dropping the server's answer to %r: the client no longer waits for it", message.id)
            return
        body = dict(message.body)
        body["id"] = finished.client_id
        if isinstance(body.get("result"), dict):
            body["result"] = eras.modernize_result(finished.method, body["result"], self._server_info)
        elif isinstance(body.get("error"), dict):
            body["error"] = eras.map_error_to_modern(body["error"])
        await self._deliver(jsonrpc.from_obj(body))

    async def _server_request(self, message: Message, call_id: JsonId | None) -> None:
        assert message.id is not None
        if message.method == "ping":
            await self._carry_out(AnswerServer(message.id, result={}))
            return
        decision = self._calls.server_request(
            message.id, message.method or "", message.params or None, call_id, anyio.current_time()
        )
        if decision is not None:
            await self._carry_out(decision)

    async def _server_notification(self, message: Message) -> None:
        method = message.method or ""
        if method in LIST_AND_RESOURCE_NOTIFICATIONS:
            for listen_id in self._listens.targets(method, message.params):
                tagged = eras.tag_subscription(message.params, listen_id)
                await self._deliver(jsonrpc.notification(method, tagged))
            return
        if method == "notifications/message" and not self._calls.wants_log(message.params.get("level")):
            return  # no request in flight asked for messages at this level
        await self._deliver(message)

    # ------------------------------------------------------------------------------------------
    # Held requests the client never answers

    def _watch_holds(self) -> None:
        self._expiry_wake.set()
        if not self._expiry_running:
            self._expiry_running = True
            self._tg.start_soon(self._expire_holds)

    async def _expire_holds(self) -> None:
        while True:
            deadline = self._calls.next_deadline()
            wait = math.inf if deadline is None else deadline - anyio.current_time()
            if wait > 0:
                with anyio.move_on_after(wait):
                    await self._expiry_wake.wait()
                self._expiry_wake = anyio.Event()
            for refusal in self._calls.expire(anyio.current_time()):
                log.info(
                    "the client did not answer a held %r in time; refusing it", refusal.server_request_id
                )
                try:
                    await self._carry_out(refusal)
                except UpstreamError as exc:
                    log.warning("could not refuse a held server request: %s", exc.reason)
