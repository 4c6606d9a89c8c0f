"""`AwaitedReplies`: the proxy's own requests always end, with their reply or a clear error after their bound."""

from __future__ import annotations

import anyio
import pytest

from mcp_sse_proxy.awaited import AwaitedReplies
from mcp_sse_proxy.errors import NoReply, UpstreamError
from mcp_sse_proxy.protocol import messages as jsonrpc
from mcp_sse_proxy.protocol.ids import ProxyIds
from mcp_sse_proxy.protocol.messages import Message

pytestmark = pytest.mark.anyio


async def test_a_reply_is_returned() -> None:
    own = AwaitedReplies(ProxyIds("own-"))

    async def send(request: Message) -> None:
        assert isinstance(request.id, str) and request.id.startswith("own-")
        assert own.resolve(jsonrpc.from_obj({"jsonrpc": "2.0", "id": request.id, "result": {"ok": 1}}))

    reply = await own.ask(send, "ping", timeout=5)
    assert reply.body["result"] == {"ok": 1}
    assert len(own) == 0


async def test_a_request_never_answered_ends_with_a_clear_error_after_its_bound() -> None:
    own = AwaitedReplies(ProxyIds("own-"))
    sent: list[Message] = []

    async def send(request: Message) -> None:
        sent.append(request)

    started = anyio.current_time()
    with pytest.raises(NoReply) as failed:
        await own.ask(send, "initialize", {}, timeout=0.2, asker="bridge")
    assert anyio.current_time() - started >= 0.2
    assert isinstance(failed.value, UpstreamError)
    assert failed.value.reason == "no answer to the bridge's initialize within 0.2 s"
    assert len(own) == 0  # nothing left waiting
    # A reply arriving after the bound answers nothing of ours.
    late = jsonrpc.from_obj({"jsonrpc": "2.0", "id": sent[0].id, "result": {}})
    assert not own.resolve(late)


async def test_a_send_that_hangs_is_bounded_too() -> None:
    own = AwaitedReplies(ProxyIds("own-"))

    async def send(request: Message) -> None:
        await anyio.sleep_forever()

    with pytest.raises(NoReply):
        await own.ask(send, "ping", timeout=0.1)
    assert len(own) == 0


async def test_the_timeout_is_mandatory() -> None:
    own = AwaitedReplies(ProxyIds("own-"))

    async def send(request: Message) -> None:
        pass

    with pytest.raises(TypeError):
        await own.ask(send, "ping")  # type: ignore[call-arg]
