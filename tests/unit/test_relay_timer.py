"""`relaydriver.timer.Timer`: the relay's one timer fires at the earliest time armed, once per arming."""

from __future__ import annotations

import anyio
import pytest

from mcp_sse_proxy.relaydriver.timer import Timer

pytestmark = pytest.mark.anyio


async def test_an_earlier_arming_wins_and_a_later_one_waits_its_turn() -> None:
    fired: list[float] = []
    first, done = anyio.Event(), anyio.Event()

    async def fire(now: float) -> None:
        fired.append(now)
        (first if len(fired) == 1 else done).set()

    timer = Timer(fire)
    async with anyio.create_task_group() as tg:
        tg.start_soon(timer.run)
        start = anyio.current_time()
        timer.arm(start + 3600)
        timer.arm(start + 0.05)  # earlier: re-arms
        timer.arm(start + 1800)  # later than what is armed: ignored until that fires
        assert timer.at == start + 0.05
        with anyio.fail_after(5):
            await first.wait()
        assert timer.at == float("inf")  # fired: nothing armed until `fire` (or anyone) arms again
        timer.arm(anyio.current_time() + 0.05)
        with anyio.fail_after(5):
            await done.wait()
        tg.cancel_scope.cancel()
    assert len(fired) == 2 and fired[0] >= start + 0.05
