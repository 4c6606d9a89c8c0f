"""The device grant's polling rules (RFC 8628 §3.4-3.5) as pure state: answers and the clock in, waits out."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcp_sse_proxy.auth.device import (
    DEFAULT_INTERVAL,
    MAX_INTERVAL,
    MIN_INTERVAL,
    DeviceAuthorization,
    DeviceGrantError,
    DevicePoll,
    Granted,
    Wait,
)

PENDING = {"error": "authorization_pending"}
SLOW_DOWN = {"error": "slow_down"}


def poll(interval: float | None = 2, expires_in: float = 600, timeout: float = 600) -> DevicePoll:
    return DevicePoll(interval=interval, expires_in=expires_in, timeout=timeout, now=0.0)


def test_first_poll_waits_one_interval_and_pending_keeps_it() -> None:
    state = poll(interval=3)
    assert state.start(0.0) == Wait(3)
    assert state.on_answer(400, PENDING, 3.0) == Wait(3)
    assert state.on_answer(400, PENDING, 6.0) == Wait(3)
    assert state.polls == 2


def test_missing_interval_means_five_seconds_and_silly_ones_are_clamped() -> None:
    assert poll(interval=None).start(0.0) == Wait(DEFAULT_INTERVAL)
    assert poll(interval=0).start(0.0) == Wait(DEFAULT_INTERVAL)
    assert poll(interval=0.01).start(0.0) == Wait(MIN_INTERVAL)
    assert poll(interval=3600).start(0.0) == Wait(MAX_INTERVAL)


def test_slow_down_adds_five_seconds_for_every_later_poll() -> None:
    state = poll(interval=1)
    assert state.on_answer(400, SLOW_DOWN, 1.0) == Wait(6)
    assert state.on_answer(400, PENDING, 7.0) == Wait(6)
    assert state.on_answer(400, SLOW_DOWN, 13.0) == Wait(11)


def test_tokens_end_the_polling() -> None:
    token = {"access_token": "at", "token_type": "Bearer", "expires_in": 60}
    assert poll().on_answer(200, token, 2.0) == Granted(token)


@pytest.mark.parametrize(
    ("status", "body", "error", "words"),
    [
        (400, {"error": "access_denied"}, "access_denied", "denied"),
        (400, {"error": "expired_token"}, "expired_token", "expired"),
        (
            400,
            {"error": "invalid_grant", "error_description": "grant request is invalid"},
            "invalid_grant",
            "invalid",
        ),
        (500, None, "invalid_response", "HTTP 500"),
        (200, {"token_type": "Bearer"}, "invalid_response", "HTTP 200"),
    ],
)
def test_other_answers_end_with_an_error(status: int, body: object, error: str, words: str) -> None:
    with pytest.raises(DeviceGrantError, match=words) as raised:
        poll().on_answer(status, body, 2.0)
    assert raised.value.error == error


def test_the_code_expiring_ends_polling_before_a_useless_poll() -> None:
    state = poll(interval=2, expires_in=5)
    assert state.on_answer(400, PENDING, 2.0) == Wait(2)
    with pytest.raises(DeviceGrantError, match="expired") as raised:
        state.on_answer(400, PENDING, 4.0)
    assert raised.value.error == "expired_token"


def test_our_own_timeout_says_so() -> None:
    state = poll(interval=2, expires_in=600, timeout=3)
    with pytest.raises(DeviceGrantError, match="not approved within 3 s") as raised:
        state.on_answer(400, PENDING, 2.0)
    assert raised.value.error == "timeout"


def test_transport_errors_back_off_exponentially() -> None:
    state = poll(interval=2)
    assert state.on_transport_error(2.0) == Wait(4)
    assert state.on_transport_error(6.0) == Wait(8)
    assert state.on_answer(400, PENDING, 14.0) == Wait(8)


def test_device_authorization_answer_is_checked() -> None:
    body = {
        "device_code": "dc",
        "user_code": "ABCD-EFGH",
        "verification_uri": "https://as.example/device",
        "expires_in": 600,
    }
    parsed = DeviceAuthorization.from_response(body)
    assert (parsed.interval, parsed.verification_uri_complete, parsed.expires_in) == (None, None, 600.0)
    for name in ("device_code", "user_code", "verification_uri", "expires_in"):
        broken = {key: value for key, value in body.items() if key != name}
        with pytest.raises(DeviceGrantError, match=name):
            DeviceAuthorization.from_response(broken)
    with pytest.raises(DeviceGrantError, match="JSON object"):
        DeviceAuthorization.from_response(["not", "an", "object"])


answers = st.sampled_from(["pending", "slow_down", "transport"])


@given(
    interval=st.one_of(st.none(), st.floats(0, 120)),
    expires_in=st.floats(1, 1800),
    timeout=st.floats(1, 1800),
    script=st.lists(answers, max_size=400),
)
def test_polling_is_bounded_and_never_faster_than_the_interval(
    interval: float | None, expires_in: float, timeout: float, script: list[str]
) -> None:
    """Whatever the server says short of tokens, every wait is at least the current interval, the interval
    only grows, no poll happens after the deadline, and the number of polls is bounded by it."""
    state = DevicePoll(interval=interval, expires_in=expires_in, timeout=timeout, now=0.0)
    deadline = min(expires_in, timeout)
    now = 0.0
    try:
        action = state.start(now)
        for answer in script:
            assert isinstance(action, Wait) and action.seconds >= MIN_INTERVAL
            assert action.seconds == state.interval
            now += action.seconds
            assert now <= deadline
            before = state.interval
            if answer == "transport":
                action = state.on_transport_error(now)
            else:
                action = state.on_answer(400, PENDING if answer == "pending" else SLOW_DOWN, now)
            assert state.interval >= before
    except DeviceGrantError as error:
        assert error.error in {"expired_token", "timeout"}
    assert state.polls <= deadline / MIN_INTERVAL
