"""The one backoff policy shared by the relay and the aggregator."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mcp_sse_proxy.protocol.backoff import backoff_delay


def test_doubles_from_the_initial_delay_until_the_cap() -> None:
    top = [backoff_delay(n, 0.25, 5.0, rand=lambda: 1.0) for n in range(1, 8)]
    assert top == [0.25, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


def test_no_wait_before_any_failure() -> None:
    assert backoff_delay(0, 1.0, 5.0) == 0.0


@given(st.integers(1, 10_000), st.floats(0.01, 10), st.floats(0.01, 60), st.floats(0, 1))
def test_jitter_stays_in_the_upper_half_of_the_capped_window(
    failures: int, initial: float, maximum: float, r: float
) -> None:
    window = min(initial * 2 ** min(failures - 1, 62), maximum)
    delay = backoff_delay(failures, initial, maximum, rand=lambda: r)
    assert window / 2 - 1e-9 <= delay <= window + 1e-9
