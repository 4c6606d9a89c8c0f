"""Bounded waits on a condition, for tests whose event lives where nothing can notify us (another process's
file, a counter in a peer): look every few milliseconds, fail after a generous deadline.

The deadline only bounds a test that would otherwise hang; no test asserts how soon the condition held.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

T = TypeVar("T")

#: Long enough for a loaded 2-core machine; a condition that never holds fails the test after this.
DEADLINE = 20.0
INTERVAL = 0.01


async def eventually(
    predicate: Callable[[], T], timeout: float = DEADLINE, interval: float = INTERVAL, what: str = ""
) -> T:
    """`predicate()` once it is truthy, looking every `interval` s; `TimeoutError` after `timeout` s."""
    try:
        with anyio.fail_after(timeout):
            while not (value := predicate()):
                await anyio.sleep(interval)
    except TimeoutError:
        raise TimeoutError(f"not within {timeout} s: {what or predicate}") from None
    return value


async def eventually_async(
    predicate: Callable[[], Awaitable[T]],
    timeout: float = DEADLINE,
    interval: float = INTERVAL,
    what: str = "",
) -> T:
    """Like `eventually` for a condition that must be awaited (a call to a peer)."""
    try:
        with anyio.fail_after(timeout):
            while not (value := await predicate()):
                await anyio.sleep(interval)
    except TimeoutError:
        raise TimeoutError(f"not within {timeout} s: {what or predicate}") from None
    return value


def eventually_sync(
    predicate: Callable[[], T], timeout: float = DEADLINE, interval: float = INTERVAL, what: str = ""
) -> T:
    """`eventually` for synchronous code (a thread, a plain test)."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout} s: {what or predicate}")
        time.sleep(interval)
    return value
