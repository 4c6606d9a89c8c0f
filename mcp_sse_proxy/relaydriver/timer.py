"""The relay's one timer: armed at the earliest time anything may be due, re-armed only when that moves
earlier. Requests never get a timer (or a cancel scope) of their own: the core knows their deadlines."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable

import anyio


class Timer:
    """Calls `fire(now)` once the armed time has come; `fire` arms the timer again for what follows."""

    def __init__(self, fire: Callable[[float], Awaitable[None]]) -> None:
        self._fire = fire
        self.at = math.inf
        self._wake = anyio.Event()

    def arm(self, at: float) -> None:
        """Fire no later than `at` (an earlier arming stands)."""
        if at < self.at:
            self.at = at
            self._wake.set()

    async def run(self) -> None:
        while True:
            now = anyio.current_time()
            if self.at > now:
                if self._wake.is_set():
                    self._wake = anyio.Event()
                if math.isinf(self.at):
                    await self._wake.wait()
                else:
                    with anyio.move_on_after(self.at - now):
                        await self._wake.wait()
                continue
            self.at = math.inf
            await self._fire(now)
