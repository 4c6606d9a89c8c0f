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

from ..errors import UpstreamError
from ..protocol import eras
from ..protocol import messages as jsonrpc
from ..protocol.ids import ProxyIds
from ..protocol.messages import Kind, Message
from .base import Deliver
from .streamable import StreamableUpstream

log = logging.getLogger("mcp_sse_proxy.bridge")

MAX_INPUT_ROUNDS = eras.MAX_INPUT_ROUNDS
LISTEN_RESTART_DELAY = 1.0


class _Answer:
    __slots__ = ("done", "message")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.message: Message | None = None


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
        self._ids = ProxyIds()
        self._client_capabilities: dict[str, Any] = {}
        self._client_info: dict[str, Any] | None = None
        self._log_level: str | None = None
        self._subscriptions: dict[str, None] = {}
        self._questions: dict[str, _Answer] = {}
        self._calls: dict[object, anyio.CancelScope] = {}
        self._listen_scope: anyio.CancelScope | None = None

    async def open(self) -> None:
        await self._inner.open()

    async def close(self) -> None:
        self._stop_listen()
        await self._inner.close()

    # ------------------------------------------------------------------------------------------

    async def send(self, message: Message) -> None:
        if message.kind is Kind.RESPONSE:
            answer = self._questions.get(message.id) if isinstance(message.id, str) else None
            if answer is not None:
                answer.message = message
                answer.done.set()
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
            question_id = self._ids.next()
            answer = _Answer()
            self._questions[question_id] = answer
            try:
                await self._deliver(jsonrpc.request(question_id, method, params))
                await answer.done.wait()
            finally:
                self._questions.pop(question_id, None)
            assert answer.message is not None
            body = answer.message.body
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

                async def route(reply: Message, listen_id: str = listen_id) -> None:
                    if reply.kind is Kind.NOTIFICATION and reply.method != (
                        "notifications/subscriptions/acknowledged"
                    ):
                        await self._deliver(reply)

                try:
                    await self._inner.send(
                        jsonrpc.request(listen_id, "subscriptions/listen", params), deliver=route
                    )
                except UpstreamError as exc:
                    log.info("the subscriptions/listen stream ended: %s", exc.reason)
                await anyio.sleep(LISTEN_RESTART_DELAY)
