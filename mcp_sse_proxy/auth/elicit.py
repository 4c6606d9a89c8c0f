"""Asking the client to show the sign-in link: URL-mode elicitation (MCP 2025-11-25, client/elicitation).

Desktop clients hide a server's stderr and may run where no browser opens. A client that declared
`capabilities.elicitation.url` in `initialize` can be sent `elicitation/create` with `mode: "url"`, the
authorization URL, a message and an `elicitationId`; it shows the link in its own UI and answers accept,
decline or cancel. Decline and cancel end the sign-in at once (the waiting request gets its usual error);
a finished sign-in is announced with `notifications/elicitation/complete`.

`ClientPrompt` is the proxy's one client as the sign-in sees it. `app.py` makes it, hands it every client
message first (`observe`: the `initialize` capabilities are noted, and the client's replies to these
requests stop here, so they never reach a server) and installs it for the sign-in jobs (`install`), which
run in threads of their own and call `offer`/`complete` from there. Request ids come from the proxy's own
namespace (`ProxyIds`); this module imports neither the SDK nor `keyring`.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import anyio
import anyio.from_thread
import anyio.lowlevel

from ..awaited import AwaitedReplies
from ..errors import NoReply
from ..protocol import messages as jsonrpc
from ..protocol.ids import ProxyIds
from ..protocol.messages import Kind, Message

log = logging.getLogger("mcp_sse_proxy.auth")

Send = Callable[[Message], Awaitable[None]]
Action = Literal["accept", "decline", "cancel"]
#: Bound for the client's answer to one elicitation (the user reads the dialog; the sign-in's own deadline
#: is longer, and no answer is the same as accept: the browser path goes on).
ANSWER_TIMEOUT = 300.0


def declares_url_elicitation(params: Any) -> bool:
    """Whether `initialize` params declare `capabilities.elicitation.url` (an object, per 2025-11-25)."""
    if not isinstance(params, dict):
        return False
    capabilities = params.get("capabilities")
    elicitation = capabilities.get("elicitation") if isinstance(capabilities, dict) else None
    return isinstance(elicitation, dict) and isinstance(elicitation.get("url"), dict)


def elicitation_params(url: str, message: str, elicitation_id: str) -> dict[str, Any]:
    return {"mode": "url", "url": url, "message": message, "elicitationId": elicitation_id}


def answer_of(reply: Message) -> Action | None:
    """The user's action in a reply to `elicitation/create`; None for an error or a malformed result."""
    body = reply.body if isinstance(reply.body, dict) else {}
    result = body.get("result")
    action = result.get("action") if isinstance(result, dict) else None
    return action if action in ("accept", "decline", "cancel") else None


class ClientPrompt:
    """Sends URL elicitations to the client and routes its replies back (see the module docstring)."""

    def __init__(
        self, send: Send, ids: ProxyIds | None = None, answer_timeout: float = ANSWER_TIMEOUT
    ) -> None:
        self._send = send
        self._ids = ids or ProxyIds()
        self._replies = AwaitedReplies(self._ids)
        self._answer_timeout = answer_timeout
        self.accepts_urls = False
        self._token: Any = None
        self._tg: Any = None

    # --- the client's side (the proxy's event loop) ------------------------------------------------------

    def observe(self, message: Message) -> bool:
        """Look at a client message before it is relayed; True when it was a reply to us (it stops here)."""
        kind = message.kind
        if kind is Kind.REQUEST and message.method == "initialize":
            self.accepts_urls = declares_url_elicitation(message.params)
        elif kind is Kind.RESPONSE and self._ids.owns(message.id):
            if not self._replies.resolve(message):
                log.debug("dropping a late answer to the proxy's elicitation %r", message.id)
            return True
        return False

    async def run(self) -> None:
        """Serve `offer`/`complete` calls from sign-in threads until cancelled."""
        self._token = anyio.lowlevel.current_token()
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                await anyio.sleep_forever()
        finally:
            self._tg = self._token = None

    # --- the sign-in's side (any thread) ------------------------------------------------------------------

    def offer(self, url: str, message: str, on_answer: Callable[[Action | None], None]) -> str | None:
        """Ask the client to show `url`; its id, or None when the client takes no URL elicitation.

        `on_answer` is called (in the proxy's loop) with the user's action, or None when the client
        answered with an error or not in time."""
        if not self.accepts_urls or self._tg is None:
            return None
        elicitation_id = f"signin-{secrets.token_urlsafe(12)}"
        params = elicitation_params(url, message, elicitation_id)
        if not self._call_soon(self._ask, params, on_answer):
            return None
        return elicitation_id

    def complete(self, elicitation_id: str) -> None:
        """Tell the client that the sign-in it showed is done."""
        notice = jsonrpc.notification("notifications/elicitation/complete", {"elicitationId": elicitation_id})
        self._call_soon(self._send, notice)

    def _call_soon(self, func: Callable[..., Awaitable[Any]], *args: Any) -> bool:
        tg, token = self._tg, self._token
        if tg is None or token is None:
            return False
        try:
            anyio.from_thread.run_sync(tg.start_soon, func, *args, token=token)
        except RuntimeError:  # the proxy's loop is gone (shutting down) or this is that loop's own thread
            return False
        return True

    async def _ask(self, params: dict[str, Any], on_answer: Callable[[Action | None], None]) -> None:
        action: Action | None = None
        try:
            reply = await self._replies.ask(
                self._send, "elicitation/create", params, timeout=self._answer_timeout, asker="sign-in"
            )
            action = answer_of(reply)
            if action is None:
                log.info("the client did not show the sign-in link: %s", _error_text(reply))
        except NoReply:
            log.info("the client did not answer the sign-in link within %g s", self._answer_timeout)
        on_answer(action)


def _error_text(reply: Message) -> str:
    body = reply.body if isinstance(reply.body, dict) else {}
    error = body.get("error")
    return str(error.get("message")) if isinstance(error, dict) else "no action in its answer"


_installed: ClientPrompt | None = None


def install(prompt: ClientPrompt | None) -> None:
    """Make `prompt` the client the sign-in jobs of this process ask (None: none)."""
    global _installed
    _installed = prompt


def installed() -> ClientPrompt | None:
    return _installed
