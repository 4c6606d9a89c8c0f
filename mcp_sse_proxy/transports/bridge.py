"""Era bridge: a handshake-era client in front of a 2026-07-28-only server.

The bridge is an `Upstream` wrapping a Streamable HTTP upstream. It answers `initialize`, `ping` and
`logging/setLevel` itself (the initialize result is built from the server's `server/discover`), adds the
`_meta` keys the modern server needs to every request, turns `resources/subscribe` and list-change interest
into one `subscriptions/listen` stream, and turns `input_required` results into requests to the client
(sampling, elicitation, roots), retrying the original request with the answers and the opaque
`requestState` until it completes.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
from anyio.abc import TaskGroup

from ..awaited import AwaitedReplies
from ..errors import UpstreamError
from ..protocol import eras
from ..protocol import messages as jsonrpc
from ..protocol.ids import ProxyIds
from ..protocol.messages import JsonId, Kind, Message
from .base import Deliver, Upstream
from .streamable import StreamableUpstream

log = logging.getLogger("mcp_sse_proxy.bridge")

MAX_INPUT_ROUNDS = eras.MAX_INPUT_ROUNDS
LISTEN_RESTART_DELAY = 1.0


class HandshakeToModern:
    """Serves a handshake-era client from a server that speaks only 2026-07-28."""

    def __init__(
        self,
        inner: StreamableUpstream,
        task_group: TaskGroup,
        deliver: Deliver,
        discover_result: dict[str, Any],
        version: str,
    ) -> None:
        self._inner = inner
        self._tg = task_group
        self._deliver = deliver
        self._discover = discover_result
        self._version = version
        self.name = "streamable-http (2026-07-28 via bridge)"
        self.url = inner.url
        self.loses_in_flight_on_session_loss = False
        self.cancels_by_notification = False
        self._ids = ProxyIds()
        self._client_capabilities: dict[str, Any] = {}
        self._client_info: dict[str, Any] | None = None
        self._log_level: str | None = None
        self._subscriptions: dict[str, None] = {}
        self._questions = AwaitedReplies(self._ids)
        self._calls: dict[object, anyio.CancelScope] = {}
        self._listen_scope: anyio.CancelScope | None = None

    async def open(self) -> None:
        await self._inner.open()

    def forget(self, request_id: JsonId) -> None:
        """Nothing is kept per call here."""

    async def close(self) -> None:
        self._stop_listen()
        await self._inner.close()

    # ------------------------------------------------------------------------------------------

    async def send(self, message: Message) -> None:
        if message.kind is Kind.RESPONSE:
            self._questions.resolve(message)
            return
        if message.kind is Kind.NOTIFICATION:
            await self._notification(message)
            return
        if message.kind is not Kind.REQUEST:
            raise UpstreamError("JSON-RPC batches cannot be bridged to a 2026-07-28 server")
        method = message.method
        if method == "initialize":
            params = message.params
            self._client_capabilities = eras.modern_client_capabilities(params.get("capabilities") or {})
            info = params.get("clientInfo")
            self._client_info = info if isinstance(info, dict) else None
            requested = params.get("protocolVersion")
            result = eras.initialize_result_from_discover(
                self._discover, requested if isinstance(requested, str) else ""
            )
            await self._answer(message, result)
        elif method == "ping":
            await self._answer(message, {})
        elif method == "logging/setLevel":
            level = message.params.get("level")
            self._log_level = level if isinstance(level, str) else None
            await self._answer(message, {})
        elif method in ("resources/subscribe", "resources/unsubscribe"):
            uri = message.params.get("uri")
            if isinstance(uri, str):
                if method == "resources/subscribe":
                    self._subscriptions[uri] = None
                else:
                    self._subscriptions.pop(uri, None)
                self._restart_listen()
            await self._answer(message, {})
        else:
            await self._call(message)

    async def _notification(self, message: Message) -> None:
        if message.method == "notifications/initialized":
            self._restart_listen()
        elif message.method == "notifications/cancelled":
            scope = self._calls.get(message.params.get("requestId"))
            if scope is not None:
                scope.cancel()  # closing the request's stream is the 2026-07-28 cancellation
        # Other client notifications have no meaning for a 2026-07-28 server (roots/list_changed included).

    async def _answer(self, request: Message, result: dict[str, Any]) -> None:
        await self._deliver(jsonrpc.from_obj({"jsonrpc": "2.0", "id": request.id, "result": result}))

    def _meta_params(self, params: dict[str, Any]) -> dict[str, Any]:
        return eras.add_modern_meta(
            params, self._version, self._client_capabilities, self._client_info, self._log_level
        )

    async def _call(self, message: Message) -> None:
        """Relay one request, fulfilling `input_required` rounds by asking the client."""
        params = self._meta_params(message.params)
        with anyio.CancelScope() as scope:
            self._calls[message.id] = scope
            try:
                for _round in range(MAX_INPUT_ROUNDS + 1):
                    reply = await self._exchange(message, params)
                    result = reply.body.get("result")
                    if not isinstance(result, dict) or result.get("resultType") != "input_required":
                        await self._deliver(reply.with_id(message.id) if reply.id != message.id else reply)
                        return
                    responses = await self._ask_client(result)
                    params = eras.retry_params(params, responses, result.get("requestState"))
                await self._deliver(
                    jsonrpc.error_response(
                        message.id,
                        jsonrpc.INTERNAL_ERROR,
                        f"the server asked for input more than {MAX_INPUT_ROUNDS} times; giving up",
                    )
                )
            finally:
                self._calls.pop(message.id, None)
        if scope.cancel_called:
            log.debug("request %r cancelled by the client", message.id)

    async def _exchange(self, message: Message, params: dict[str, Any]) -> Message:
        """Send one attempt under a fresh id; notifications pass to the client, the response is returned."""
        attempt_id = self._ids.next()
        body = {**message.body, "id": attempt_id, "params": params}
        replies: list[Message] = []

        async def route(reply: Message) -> None:
            if reply.kind is Kind.RESPONSE and reply.id == attempt_id:
                replies.append(reply)
            else:
                await self._deliver(reply)

        await self._inner.send(jsonrpc.from_obj(body), deliver=route)
        if not replies:
            raise UpstreamError("the server accepted the request but sent no response")
        return replies[-1]

    async def _ask_client(self, result: dict[str, Any]) -> dict[str, Any]:
        """Send each input request to the client as a request of its own; collect the results by key."""
        questions = eras.input_required_to_client_requests(result)
        responses: dict[str, Any] = {}

        async def ask(key: str, method: str, params: dict[str, Any]) -> None:
            answer = await self._questions.ask(self._deliver, method, params)
            body = answer.body
            if "result" in body:
                responses[key] = body["result"]
            else:
                raise UpstreamError(f"the client refused the server's {method}: {body.get('error')}")

        async with anyio.create_task_group() as tg:
            for key, method, params in questions:
                tg.start_soon(ask, key, method, params)
        return responses

    # ------------------------------------------------------------------------------------------
    # Change notifications: one subscriptions/listen stream stands for list_changed and subscribe.

    def _listen_filter(self) -> dict[str, Any]:
        capabilities = self._discover.get("capabilities") or {}
        wanted: dict[str, Any] = {}
        for kind, key in (
            ("tools", "toolsListChanged"),
            ("prompts", "promptsListChanged"),
            ("resources", "resourcesListChanged"),
        ):
            cap = capabilities.get(kind)
            if isinstance(cap, dict) and cap.get("listChanged"):
                wanted[key] = True
        resources = capabilities.get("resources")
        if self._subscriptions and isinstance(resources, dict) and resources.get("subscribe"):
            wanted["resourceSubscriptions"] = list(self._subscriptions)
        return wanted

    def _stop_listen(self) -> None:
        if self._listen_scope is not None:
            self._listen_scope.cancel()
            self._listen_scope = None

    def _restart_listen(self) -> None:
        self._stop_listen()
        notifications = self._listen_filter()
        if not notifications:
            return
        self._listen_scope = anyio.CancelScope()
        self._tg.start_soon(self._listen, self._listen_scope, notifications)

    async def _listen(self, scope: anyio.CancelScope, notifications: dict[str, Any]) -> None:
        with scope:
            while True:
                listen_id = self._ids.next()
                params = self._meta_params({"notifications": notifications})

                async def route(reply: Message) -> None:
                    if reply.kind is Kind.NOTIFICATION and reply.method != (
                        "notifications/subscriptions/acknowledged"
                    ):
                        # The listen stream is the proxy's own: its subscriptionId means nothing to the client.
                        params = eras.strip_subscription_id(
                            reply.params if reply.body.get("params") else None
                        )
                        await self._deliver(jsonrpc.notification(reply.method or "", params))

                try:
                    await self._inner.send(
                        jsonrpc.request(listen_id, "subscriptions/listen", params), deliver=route
                    )
                except UpstreamError as exc:
                    log.info("the subscriptions/listen stream ended: %s", exc.reason)
                await anyio.sleep(LISTEN_RESTART_DELAY)


class _Held:
    """A server→client request held by the bridge while a modern client answers it via `input_required`."""

    __slots__ = ("server_request_id", "key", "call_id")

    def __init__(self, server_request_id: object, key: str, call_id: object) -> None:
        self.server_request_id = server_request_id
        self.key = key
        self.call_id = call_id


class ModernToHandshake:
    """Serves a 2026-07-28 client from a handshake-era server (legacy SSE or 2025 Streamable HTTP).

    The bridge runs `initialize` upstream itself (from the client's `_meta`), answers `server/discover`
    from its result, strips the modern `_meta` keys, maps results and errors to the modern shapes, turns a
    request's `logLevel` into `logging/setLevel`, serves `subscriptions/listen` from list_changed and
    `resources/subscribe`, and turns a server request arriving mid-call (sampling, elicitation, roots)
    into an `input_required` result, holding the upstream call until the client's retry answers it.
    """

    def __init__(self, task_group: TaskGroup, deliver: Deliver, meta: dict[str, Any]) -> None:
        self._tg = task_group
        self._deliver = deliver
        self._meta = meta
        self._inner: Upstream | None = None
        self.name = "handshake bridge"
        self.url = ""
        self._ids = ProxyIds()
        self._own = AwaitedReplies(self._ids)
        self._lock = anyio.Lock()
        self._init_result: dict[str, Any] | None = None
        self._server_info: dict[str, Any] | None = None
        self._methods: dict[object, str] = {}
        #: Upstream call id → the id of the client's retry that now waits for its result.
        self._redirect: dict[object, object] = {}
        self._held: dict[str, _Held] = {}
        #: MRTR-capable calls in flight upstream, oldest first (server requests are tied to the oldest).
        self._calls: list[object] = []
        self._log_level: str | None = None
        #: `logLevel` of each request in flight that asked for log messages.
        self._levels: dict[object, str] = {}
        self._listens: dict[object, dict[str, Any]] = {}

    #: Cancellation is a notification upstream (not a closed stream) through this bridge.
    cancels_by_notification = True

    @property
    def loses_in_flight_on_session_loss(self) -> bool:
        return self._inner is not None and self._inner.loses_in_flight_on_session_loss

    def attach(self, inner: Upstream) -> None:
        self._inner = inner
        self.name = f"{inner.name} (handshake era via bridge)"
        self.url = inner.url

    async def open(self) -> None:
        assert self._inner is not None
        self._init_result = None  # a new server session: the handshake runs again before the next request
        self._log_level = None
        await self._inner.open()

    def forget(self, request_id: JsonId) -> None:
        """Nothing is kept per call here."""

    async def close(self) -> None:
        if self._inner is not None:
            await self._inner.close()

    # ------------------------------------------------------------------------------------------

    async def handshake(self, probing: bool = False) -> dict[str, Any]:
        """Run `initialize` and `notifications/initialized` upstream (once per server session).

        With `probing` (auto-detection), a Streamable HTTP URL that is not an MCP endpoint raises
        `TransportMismatch` so the next candidate is tried.
        """
        async with self._lock:
            if self._init_result is not None:
                return self._init_result
            assert self._inner is not None
            params = eras.initialize_params_from_modern(self._meta)
            reply = await self._own_request("initialize", params, probing=probing)
            result = reply.body.get("result")
            if not isinstance(result, dict):
                raise UpstreamError(f"the server refused the bridged initialize: {reply.body.get('error')}")
            await self._inner.send(jsonrpc.notification("notifications/initialized"))
            self._init_result = result
            info = result.get("serverInfo")
            self._server_info = info if isinstance(info, dict) else None
            for listen_id, honoured in self._listens.items():
                await self._subscribe(honoured, listen_id)
            return result

    async def _own_request(
        self, method: str, params: dict[str, Any] | None, *, probing: bool = False
    ) -> Message:
        inner = self._inner
        assert inner is not None

        async def send(request: Message) -> None:
            if probing and isinstance(inner, StreamableUpstream):
                await inner.send(request, probing=True)
            else:
                await inner.send(request)

        return await self._own.ask(send, method, params)

    # ------------------------------------------------------------------------------------------
    # Client → server

    async def send(self, message: Message) -> None:
        assert self._inner is not None
        if message.kind is Kind.NOTIFICATION:
            await self._client_notification(message)
            return
        if message.kind is not Kind.REQUEST:
            return  # a modern client sends no responses
        meta = eras.request_meta(message.params)
        if meta:
            self._meta = meta
        init = await self.handshake()
        method = message.method or ""
        if method == "server/discover":
            result = eras.discover_result_from_initialize(init, eras.MODERN_VERSIONS)
            await self._answer(message.id, result)
            return
        if method == "subscriptions/listen":
            await self._open_listen(message, init)
            return
        _responses, state = eras.mrtr_retry_parts(message.params)
        if state is not None and state in self._held:
            await self._resume_held(message, state)
            return
        level = meta.get(eras.LOG_LEVEL_KEY)
        if isinstance(level, str) and level in eras.LOG_LEVELS:
            self._levels[message.id] = level
        await self._apply_log_level(init)
        params = eras.strip_modern_meta(message.params)
        body = {**message.body}
        if params is None:
            body.pop("params", None)
        else:
            body["params"] = params
        self._methods[message.id] = method
        if method in eras.MRTR_METHODS:
            self._calls.append(message.id)
        if isinstance(self._inner, StreamableUpstream):
            # Server requests for this call arrive on its own response stream: they belong to it.
            call_id = message.id

            async def route(reply: Message) -> None:
                await self.from_upstream(reply, call_id)

            await self._inner.send(jsonrpc.from_obj(body), deliver=route)
        else:
            await self._inner.send(jsonrpc.from_obj(body))

    async def _client_notification(self, message: Message) -> None:
        assert self._inner is not None
        if message.method != "notifications/cancelled":
            return  # 2026-07-28 defines no other client notifications
        request_id = message.params.get("requestId")
        if request_id in self._listens:
            honoured = self._listens.pop(request_id)
            for uri in honoured.get("resourceSubscriptions") or []:
                if not any(uri in (h.get("resourceSubscriptions") or []) for h in self._listens.values()):
                    self.spawn_own("resources/unsubscribe", {"uri": uri})
            return
        upstream_id = next((up for up, retry in self._redirect.items() if retry == request_id), request_id)
        await self._inner.send(
            jsonrpc.notification("notifications/cancelled", {**message.params, "requestId": upstream_id})
        )

    async def _answer(self, msg_id: object, result: dict[str, Any]) -> None:
        await self._deliver(jsonrpc.from_obj({"jsonrpc": "2.0", "id": msg_id, "result": result}))

    def spawn_own(self, method: str, params: dict[str, Any]) -> None:
        async def run() -> None:
            try:
                await self._own_request(method, params)
            except UpstreamError as exc:
                log.warning("%s failed: %s", method, exc.reason)

        self._tg.start_soon(run)

    async def _apply_log_level(self, init: dict[str, Any]) -> None:
        """One process-wide `logging/setLevel` upstream: the lowest level any request in flight asked for."""
        level = eras.lowest_log_level(self._levels.values())
        if level is None or level == self._log_level:
            return
        if "logging" not in (init.get("capabilities") or {}):
            return
        self._log_level = level
        reply = await self._own_request("logging/setLevel", {"level": level})
        if "error" in reply.body:
            log.warning("the server refused logging/setLevel %s: %s", level, reply.body["error"])

    async def _open_listen(self, message: Message, init: dict[str, Any]) -> None:
        requested = message.params.get("notifications")
        honoured = eras.acknowledged_filter(requested, init.get("capabilities"))
        self._listens[message.id] = honoured
        await self._deliver(jsonrpc.from_obj(eras.listen_acknowledgement(message.id, honoured)))
        await self._subscribe(honoured, message.id)

    async def _subscribe(self, honoured: dict[str, Any], listen_id: object) -> None:
        for uri in honoured.get("resourceSubscriptions") or []:
            reply = await self._own_request("resources/subscribe", {"uri": uri})
            if "error" in reply.body:
                log.warning(
                    "resources/subscribe %s for listen %r failed: %s", uri, listen_id, reply.body["error"]
                )

    async def _resume_held(self, message: Message, state: str) -> None:
        """The client's retry answers the held server request; the held call's result goes to the retry."""
        assert self._inner is not None
        held = self._held.pop(state)
        responses, _state = eras.mrtr_retry_parts(message.params)
        self._redirect[held.call_id] = message.id
        answer = (responses or {}).get(held.key)
        if isinstance(answer, dict):
            reply = {"jsonrpc": "2.0", "id": held.server_request_id, "result": answer}
        else:
            reply = {
                "jsonrpc": "2.0",
                "id": held.server_request_id,
                "error": {
                    "code": jsonrpc.INVALID_PARAMS,
                    "message": "the client gave no answer to this request",
                },
            }
        await self._inner.send(jsonrpc.from_obj(reply))

    # ------------------------------------------------------------------------------------------
    # Server → client

    async def from_upstream(self, message: Message, call_id: object = None) -> None:
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
        if self._own.resolve(message):
            return
        msg_id = message.id
        method = self._methods.pop(msg_id, None)
        self._levels.pop(msg_id, None)
        if msg_id in self._calls:
            self._calls.remove(msg_id)
        client_id = self._redirect.pop(msg_id, msg_id)
        body = dict(message.body)
        body["id"] = client_id
        if isinstance(body.get("result"), dict):
            body["result"] = eras.modernize_result(method, body["result"], self._server_info)
        elif isinstance(body.get("error"), dict):
            body["error"] = eras.map_error_to_modern(body["error"])
        await self._deliver(jsonrpc.from_obj(body))

    async def _server_request(self, message: Message, call_id: object = None) -> None:
        assert self._inner is not None
        method = message.method or ""
        if method == "ping":
            await self._inner.send(jsonrpc.from_obj({"jsonrpc": "2.0", "id": message.id, "result": {}}))
            return
        if call_id is None or call_id not in self._calls:
            # Legacy SSE says nothing of which call asks: the oldest one not already waiting for input.
            call_id = next((c for c in self._calls if not self._is_held(c)), None)
        if eras.capability_for_input_request(method) is None or call_id is None:
            error = {"code": jsonrpc.METHOD_NOT_FOUND, "message": f"{method} cannot reach the client now"}
            await self._inner.send(jsonrpc.from_obj({"jsonrpc": "2.0", "id": message.id, "error": error}))
            return
        state = self._ids.next()
        key = "input-1"
        self._held[state] = _Held(message.id, key, call_id)
        result = eras.input_required_result([(key, method, message.params or None)], state, self._server_info)
        answer_id = self._redirect.pop(call_id, call_id)
        await self._deliver(jsonrpc.from_obj({"jsonrpc": "2.0", "id": answer_id, "result": result}))

    def _is_held(self, call_id: object) -> bool:
        return any(held.call_id == call_id for held in self._held.values())

    async def _server_notification(self, message: Message) -> None:
        method = message.method or ""
        if method in (
            "notifications/tools/list_changed",
            "notifications/prompts/list_changed",
            "notifications/resources/list_changed",
            "notifications/resources/updated",
        ):
            for listen_id, honoured in self._listens.items():
                if eras.listen_wants(honoured, method, message.params):
                    tagged = eras.tag_subscription(message.params, listen_id)
                    await self._deliver(jsonrpc.notification(method, tagged))
            return
        if method == "notifications/message" and not self._log_wanted(message):
            return  # no request in flight asked for messages at this level
        await self._deliver(message)

    def _log_wanted(self, message: Message) -> bool:
        level = message.params.get("level")
        return any(eras.log_level_allows(level, threshold) for threshold in self._levels.values())
