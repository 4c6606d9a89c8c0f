"""The callback wait of a browser sign-in ends when the user refuses the link shown in the client, and an
accepted link (or a refusal after the sign-in finished) changes nothing."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field

import anyio
import httpx2
import pytest

from mcp_sse_proxy.auth.callback import CallbackServer
from mcp_sse_proxy.auth.errors import SignInError
from mcp_sse_proxy.auth.signin import _callback_result
from mcp_sse_proxy.config.model import Profile

pytestmark = pytest.mark.anyio


@dataclass
class FakeJob:
    """The parts of `bearer.Job` the callback wait reads (answered() is the real rule, copied by binding)."""

    profile: Profile = field(default_factory=lambda: Profile(name="default", url="http://127.0.0.1:1/mcp"))
    refused: str | None = None
    interrupt: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)

    def answered(self, action: str | None) -> None:
        from mcp_sse_proxy.auth.bearer import Job

        Job.answered(self, action)  # type: ignore[arg-type]


async def _wait(job: FakeJob, server: CallbackServer, outcome: list, ended: anyio.Event) -> None:
    try:
        outcome.append(await _callback_result(job, server))  # type: ignore[arg-type]
    except SignInError as exc:
        outcome.append(exc)
    ended.set()


async def _bind() -> CallbackServer:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return await CallbackServer.bind([port])


@pytest.mark.parametrize("action", ["decline", "cancel"])
async def test_a_refusal_ends_the_wait_with_a_clear_error(action: str) -> None:
    job = FakeJob()
    server = await _bind()
    outcome: list = []
    async with anyio.create_task_group() as tg:
        await server.serve(tg)
        ended = anyio.Event()
        tg.start_soon(_wait, job, server, outcome, ended)
        await anyio.wait_all_tasks_blocked()
        await anyio.to_thread.run_sync(job.answered, action)
        with anyio.fail_after(10):
            await ended.wait()
        tg.cancel_scope.cancel()
    await server.aclose()
    (error,) = outcome
    assert isinstance(error, SignInError)
    assert f"{'declined' if action == 'decline' else 'cancelled'} in the client" in error.reason
    assert "--login" in error.reason


async def test_accept_changes_nothing_and_the_redirect_still_completes() -> None:
    job = FakeJob()
    job.answered("accept")
    job.answered(None)  # no answer in time, or an error: the browser path goes on
    assert not job.interrupt.is_set()
    server = await _bind()
    outcome: list = []
    async with anyio.create_task_group() as tg:
        await server.serve(tg)
        ended = anyio.Event()
        tg.start_soon(_wait, job, server, outcome, ended)
        async with httpx2.AsyncClient() as client:
            page = await client.get(f"http://127.0.0.1:{server.port}/callback?code=c1&state=s1")
            assert page.status_code == 200
        with anyio.fail_after(10):
            await ended.wait()
        job.interrupt.set()  # what Job.run does at its end: releases the abandoned wait thread
        tg.cancel_scope.cancel()
    await server.aclose()
    (result,) = outcome
    assert result.code == "c1" and result.state == "s1"


def test_a_refusal_after_the_sign_in_finished_is_ignored() -> None:
    job = FakeJob()
    job.done.set()
    job.answered("decline")
    assert job.refused is None and not job.interrupt.is_set()
