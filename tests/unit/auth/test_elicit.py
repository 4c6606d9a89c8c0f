"""URL-mode elicitation of the sign-in link: capability parsing, answers, and routing of the client's replies."""

from __future__ import annotations

import threading

import anyio
import pytest

from mcp_sse_proxy.auth.elicit import ClientPrompt, answer_of, declares_url_elicitation, elicitation_params
from mcp_sse_proxy.protocol import messages as jsonrpc
from mcp_sse_proxy.protocol.ids import ProxyIds


@pytest.mark.parametrize(
    ("capabilities", "expected"),
    [
        ({"elicitation": {"form": {}, "url": {}}}, True),
        ({"elicitation": {"url": {}}}, True),
        ({"elicitation": {}}, False),  # 2025-06-18 style: form only
        ({"elicitation": {"form": {}}}, False),
        ({"elicitation": {"url": True}}, False),
        ({}, False),
    ],
)
def test_only_an_elicitation_url_object_declares_url_mode(capabilities, expected) -> None:
    assert (
        declares_url_elicitation({"protocolVersion": "2025-11-25", "capabilities": capabilities}) is expected
    )
    assert declares_url_elicitation(None) is False


def test_the_request_has_the_spec_fields() -> None:
    assert elicitation_params("https://as/authorize?x=1", "Sign in", "e1") == {
        "mode": "url",
        "url": "https://as/authorize?x=1",
        "message": "Sign in",
        "elicitationId": "e1",
    }


@pytest.mark.parametrize("action", ["accept", "decline", "cancel"])
def test_answers(action) -> None:
    assert answer_of(jsonrpc.from_obj({"jsonrpc": "2.0", "id": "x", "result": {"action": action}})) == action


def test_an_error_or_an_odd_result_is_no_answer() -> None:
    error = jsonrpc.from_obj({"jsonrpc": "2.0", "id": "x", "error": {"code": -32601, "message": "no"}})
    assert answer_of(error) is None
    assert answer_of(jsonrpc.from_obj({"jsonrpc": "2.0", "id": "x", "result": {"action": "maybe"}})) is None


async def _noop(message) -> None:
    return None


def test_initialize_sets_the_capability_and_other_replies_pass_on() -> None:
    prompt = ClientPrompt(_noop, ProxyIds("p-"))
    init = jsonrpc.request(1, "initialize", {"capabilities": {"elicitation": {"url": {}}}})
    assert prompt.observe(init) is False and prompt.accepts_urls
    assert prompt.observe(jsonrpc.from_obj({"jsonrpc": "2.0", "id": 7, "result": {}})) is False
    assert prompt.observe(jsonrpc.from_obj({"jsonrpc": "2.0", "id": "p-9", "result": {}})) is True, (
        "a reply in the proxy's namespace stops here even when nothing waits for it any more"
    )


def test_no_offer_without_the_capability() -> None:
    prompt = ClientPrompt(_noop, ProxyIds("p-"))
    assert prompt.offer("https://as/authorize", "m", lambda action: None) is None


@pytest.mark.anyio
async def test_an_offer_from_another_thread_is_sent_and_its_answer_routed_back() -> None:
    answered: list = []
    got_answer = threading.Event()
    outbox, sent = anyio.create_memory_object_stream[jsonrpc.Message](4)
    prompt = ClientPrompt(outbox.send, ProxyIds("p-"))
    prompt.observe(jsonrpc.request(1, "initialize", {"capabilities": {"elicitation": {"url": {}}}}))

    def on_answer(action) -> None:
        answered.append(action)
        got_answer.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(prompt.run)
        await anyio.wait_all_tasks_blocked()
        elicitation_id = await anyio.to_thread.run_sync(prompt.offer, "https://as/authorize", "m", on_answer)
        with anyio.fail_after(10):
            request = await sent.receive()
        assert request.method == "elicitation/create" and request.id == "p-1"
        assert request.params["elicitationId"] == elicitation_id
        reply = jsonrpc.from_obj({"jsonrpc": "2.0", "id": "p-1", "result": {"action": "decline"}})
        assert prompt.observe(reply) is True
        with anyio.fail_after(10):
            await anyio.to_thread.run_sync(got_answer.wait)
        await anyio.to_thread.run_sync(prompt.complete, elicitation_id)
        with anyio.fail_after(10):
            notice = await sent.receive()
        tg.cancel_scope.cancel()
    assert answered == ["decline"]
    assert notice.method == "notifications/elicitation/complete"
    assert notice.params == {"elicitationId": elicitation_id}
