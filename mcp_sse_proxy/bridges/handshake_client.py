"""`HandshakeToModern`: a handshake-era client in front of a server that speaks only 2026-07-28.

The bridge wraps a Streamable HTTP upstream. It answers `initialize`, `ping` and `logging/setLevel` itself
(the initialize result is built from the server's `server/discover`), adds the `_meta` keys the modern
server needs to every request, turns `resources/subscribe` and list-change interest into one
`subscriptions/listen` stream, and turns `input_required` results into requests to the client (sampling,
elicitation, roots), retrying the original request with the answers and the opaque `requestState` until it
completes. The rules are `protocol.eras.handshake_client`; what is kept here is per session, not per call
(a call's state is its own task, cancelled through `forget`).
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
from anyio.abc import TaskGroup

from ..awaited import AwaitedReplies
from ..config.model import Profile
from ..errors import UpstreamError
from ..protocol import eras
from ..protocol import messages as jsonrpc
from ..protocol.ids import ProxyIds
from ..protocol.messages import JsonId, Kind, Message
from ..transports.base import Deliver
from ..transports.streamable import StreamableUpstream

log = logging.getLogger("mcp_sse_proxy.bridge")

LISTEN_RESTART_DELAY = 1.0


class HandshakeToModern:
    """Serves a handshake-era client from a server that speaks only 2026-07-28 (see the module doc)."""

    loses_in_flight_on_session_loss = False
    cancels_by_notification = False

    def __init__(
        self,
        inner: StreamableUpstream,
        task_group: TaskGroup,
        deliver: Deliver,
        discover_result: dict[str, Any],
        version: str,
        profile: Profile,
    ) -> None:
        self._inner = inner
        self._tg = task_group
        self._deliver = deliver
        self._discover = discover_result
        self._version = version
        #: How long the listen stream may take to be acknowledged before it is opened again.
        self._read_timeout = profile.read_timeout
        self._request_timeout = profile.request_timeout
        self.name = "streamable-http (2026-07-28 via bridge)"
        self.url = inner.url
        self._ids = ProxyIds()
        self._client_capabilities: dict[str, Any] = {}
        self._client_info: dict[str, Any] | None = None
        self._log_level: str | None = None
        self._subscriptions: dict[str, None] = {}
        self._questions = AwaitedReplies(self._ids)
        self._calls: dict[JsonId, anyio.CancelScope] = {}
        self._listen_scope: anyio.CancelScope | None = None

    async def open(self) -> None:
        await self._inner.open()

    def forget(self, request_id: JsonId) -> None:
        """The relay gave up on `request_id`: stop its call (and any question it asked the client)."""
        scope = self._calls.get(request_id)
        if scope is not None:
            scope.cancel()  # closing the request's stream is the 2026-07-28 cancellation

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
            request_id = message.params.get("requestId")
            if isinstance(request_id, (str, int)):
                self.forget(request_id)
        # Other client notifications have no meaning for a 2026-07-28 server (roots/list_changed included).

    async def _answer(self, request: Message, result: dict[str, Any]) -> None:
        await self._deliver(jsonrpc.from_obj({"jsonrpc": "2.0", "id": request.id, "result": result}))

    def _meta_params(self, params: dict[str, Any]) -> dict[str, Any]:
        return eras.add_modern_meta(
            params, self._version, self._client_capabilities, self._client_info, self._log_level
        )

    async def _call(self, message: Message) -> None:
        """Relay one request, fulfilling `input_required` rounds by asking the client."""
        assert message.id is not None
        params = self._meta_params(message.params)
        with anyio.CancelScope() as scope:
            self._calls[message.id] = scope
            try:
                for _round in range(eras.MAX_INPUT_ROUNDS + 1):
                    reply = await self._exchange(message, params)
                    result = reply.body.get("result")
                    if eras.result_type(result) != "input_required" or not isinstance(result, dict):
                        await self._deliver(reply.with_id(message.id) if reply.id != message.id else reply)
                        return
                    responses = await self._ask_client(result)
                    params = eras.retry_params(params, responses, result.get("requestState"))
                await self._deliver(
                    jsonrpc.error_response(
                        message.id,
                        jsonrpc.INTERNAL_ERROR,
                        f"the server asked for input more than {eras.MAX_INPUT_ROUNDS} times; giving up",
                    )
                )
            finally:
                if self._calls.get(message.id) is scope:
                    del self._calls[message.id]
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
            # The client may take a person's time to answer (sampling, elicitation): the request's bound.
            answer = await self._questions.ask(
                self._deliver, method, params, timeout=self._request_timeout, asker="server"
            )
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

    def _stop_listen(self) -> None:
        if self._listen_scope is not None:
            self._listen_scope.cancel()
            self._listen_scope = None

    def _restart_listen(self) -> None:
        self._stop_listen()
        notifications = eras.listen_filter(self._discover.get("capabilities"), self._subscriptions)
        if not notifications:
            return
        self._listen_scope = anyio.CancelScope()
        self._tg.start_soon(self._listen, self._listen_scope, notifications)

    async def _listen(self, scope: anyio.CancelScope, notifications: dict[str, Any]) -> None:
        with scope:
            while True:
                try:
                    await self._listen_once(notifications)
                except UpstreamError as exc:
                    log.info("the subscriptions/listen stream ended: %s", exc.reason)
                await anyio.sleep(LISTEN_RESTART_DELAY)

    async def _listen_once(self, notifications: dict[str, Any]) -> None:
        """One `subscriptions/listen` exchange; it must be acknowledged within the read timeout."""
        listen_id = self._ids.next()
        params = self._meta_params({"notifications": notifications})
        acknowledged = anyio.Event()

        async def route(reply: Message) -> None:
            if reply.kind is not Kind.NOTIFICATION:
                return
            if reply.method == "notifications/subscriptions/acknowledged":
                acknowledged.set()
                return
            # The listen stream is the proxy's own: its subscriptionId means nothing to the client.
            params = eras.strip_subscription_id(reply.params if reply.body.get("params") else None)
            await self._deliver(jsonrpc.notification(reply.method or "", params))

        async def watchdog(stream: anyio.CancelScope) -> None:
            with anyio.move_on_after(self._read_timeout):
                await acknowledged.wait()
            if not acknowledged.is_set():
                log.info(
                    "subscriptions/listen not acknowledged within %g s; opening it again", self._read_timeout
                )
                stream.cancel()

        async with anyio.create_task_group() as tg:
            tg.start_soon(watchdog, tg.cancel_scope)
            await self._inner.send(jsonrpc.request(listen_id, "subscriptions/listen", params), deliver=route)
            tg.cancel_scope.cancel()
