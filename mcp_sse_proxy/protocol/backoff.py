"""The one reconnection backoff policy: exponential from an initial delay, capped, with jitter."""

from __future__ import annotations

import random
from collections.abc import Callable


def backoff_delay(
    failures: int, initial: float, maximum: float, rand: Callable[[], float] = random.random
) -> float:
    """Seconds to wait after `failures` consecutive failed attempts (1 for the first failure).

    Doubles from `initial` up to `maximum`, then takes a random point in the upper half of that
    window so that several instances do not retry in lock-step.
    """
    if failures <= 0:
        return 0.0
    base = min(initial * (2 ** min(failures - 1, 62)), maximum)
    return base * (0.5 + rand() / 2)
