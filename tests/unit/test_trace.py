"""The conversation recorder: one line per message, elapsed times per leg, cut payloads, secrets masked."""

from __future__ import annotations

import io
import json
import logging

import pytest

from mcp_sse_proxy.protocol import messages as jsonrpc
from mcp_sse_proxy.tap import Direction
from mcp_sse_proxy.trace import MAX_OPEN_REQUESTS, MESSAGES_LOGGER, Recorder

SECRET = "tok-9f8e7d6c5b4a"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def message(obj: dict) -> jsonrpc.Message:
    return jsonrpc.parse(json.dumps(obj).encode())


def request(msg_id: int, method: str, params: dict | None = None) -> jsonrpc.Message:
    return message({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params or {}})


def result(msg_id: int, value: object) -> jsonrpc.Message:
    return message({"jsonrpc": "2.0", "id": msg_id, "result": value})


def recorder(**kwargs) -> tuple[Recorder, Clock, io.StringIO]:
    clock = Clock()
    trace = io.StringIO()
    return Recorder([SECRET], trace=trace, clock=clock, wall_clock=lambda: 0.0, **kwargs), clock, trace


def records(trace: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in trace.getvalue().splitlines()]


def test_answers_carry_the_time_since_their_request_on_the_same_leg() -> None:
    tap, clock, trace = recorder()
    tap(Direction.CLIENT_TO_PROXY, "work", request(1, "tools/list"))
    clock.now += 0.25
    tap(Direction.PROXY_TO_SERVER, "work", request(1, "tools/list"))
    clock.now += 0.5
    tap(Direction.SERVER_TO_PROXY, "work", result(1, {"tools": []}))
    tap(Direction.PROXY_TO_CLIENT, "work", result(1, {"tools": []}))
    elapsed = [r.get("elapsed_ms") for r in records(trace)]
    assert elapsed == [None, None, 500.0, 750.0]
    assert [r["direction"] for r in records(trace)] == [
        "client_to_proxy",
        "proxy_to_server",
        "server_to_proxy",
        "proxy_to_client",
    ]


def test_server_requests_are_timed_on_the_reverse_legs() -> None:
    tap, clock, trace = recorder()
    tap(Direction.PROXY_TO_CLIENT, "work", request(7, "sampling/createMessage"))
    clock.now += 2
    tap(Direction.CLIENT_TO_PROXY, "work", result(7, {}))
    assert records(trace)[1]["elapsed_ms"] == 2000.0


def test_the_summary_line_names_direction_profile_id_method_outcome_and_size(caplog) -> None:
    tap, clock, _ = recorder()
    caplog.set_level(logging.DEBUG, logger=MESSAGES_LOGGER)
    tap(Direction.CLIENT_TO_PROXY, "work", request(3, "tools/call", {"name": "echo"}))
    clock.now += 0.042
    error = jsonrpc.error_response(3, jsonrpc.METHOD_NOT_FOUND, "no such tool")
    tap(Direction.PROXY_TO_CLIENT, "work", error)
    first, second = (r.getMessage() for r in caplog.records)
    assert first.startswith("client→proxy work #3 tools/call ")
    assert " B: {" in first
    assert second.startswith('proxy→client work #3 error -32601 "no such tool" ')
    assert "after 42 ms" in second


def test_secrets_are_masked_in_log_and_trace_also_when_escaped_or_cut(caplog) -> None:
    tap, _, trace = recorder(max_payload=200)
    caplog.set_level(logging.DEBUG, logger=MESSAGES_LOGGER)
    tap(Direction.PROXY_TO_SERVER, "w", request(1, "tools/call", {"name": "x", "arguments": {"k": SECRET}}))
    tap(Direction.PROXY_TO_SERVER, "w", request(2, "x", {"auth": "Authorization: Bearer abcdefgh"}))
    # Cut just inside the secret: it must not leak half of itself.
    padding = "p" * (200 - len('{"jsonrpc":"2.0","id":3,"result":{"a":"') - 4)
    tap(Direction.SERVER_TO_PROXY, "w", result(3, {"a": padding + SECRET}))
    text = trace.getvalue() + "\n".join(r.getMessage() for r in caplog.records)
    assert SECRET not in text and SECRET[:8] not in text and "abcdefgh" not in text
    assert records(trace)[0]["message"]["params"]["arguments"]["k"] == "***"


def test_forwarded_env_values_are_masked_however_short() -> None:
    tap, _, trace = recorder()
    call = request(1, "tools/call", {"name": "x", "arguments": {"env": {"API_REGION": "eu"}}})
    tap(Direction.PROXY_TO_SERVER, "w", call)
    assert records(trace)[0]["message"]["params"]["arguments"]["env"] == {"API_REGION": "***"}


def test_large_payloads_are_cut_with_their_size_noted(caplog) -> None:
    tap, _, trace = recorder(max_payload=100)
    caplog.set_level(logging.DEBUG, logger=MESSAGES_LOGGER)
    big = result(1, {"text": "x" * 5000})
    tap(Direction.SERVER_TO_PROXY, "w", big)
    (record,) = records(trace)
    assert record["truncated"] is True and record["size"] == len(big.raw)
    assert len(record["message_head"].encode()) <= 100
    assert f"(cut; {len(big.raw)} bytes in all)" in caplog.records[0].getMessage()


@pytest.mark.parametrize("size", [300 * 1024])
def test_messages_too_large_to_decode_are_cut_from_their_bytes(size: int) -> None:
    tap, _, trace = recorder(max_payload=64)
    big = result(1, {"text": SECRET + "y" * size})
    tap(Direction.SERVER_TO_PROXY, "w", big)
    (record,) = records(trace)
    assert record["truncated"] and SECRET not in record["message_head"] and "***" in record["message_head"]


def test_the_open_request_table_is_bounded() -> None:
    tap, _, trace = recorder()
    for msg_id in range(MAX_OPEN_REQUESTS + 10):
        tap(Direction.CLIENT_TO_PROXY, "w", request(msg_id, "ping"))
    assert len(tap._open) == MAX_OPEN_REQUESTS
    tap(Direction.PROXY_TO_CLIENT, "w", result(0, {}))  # forgotten: no elapsed time, no error
    assert "elapsed_ms" not in records(trace)[-1]


def test_nothing_is_formatted_when_neither_log_nor_trace_wants_it(caplog) -> None:
    clock = Clock()
    tap = Recorder([], clock=clock)
    caplog.set_level(logging.INFO, logger=MESSAGES_LOGGER)
    tap(Direction.CLIENT_TO_PROXY, "w", request(1, "ping"))
    assert caplog.records == [] and len(tap._open) == 1


def test_a_failing_trace_stream_does_not_raise(caplog) -> None:
    class Broken(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError("disk full")

    tap = Recorder([], trace=Broken())
    tap(Direction.CLIENT_TO_PROXY, "w", request(1, "ping"))
    assert any("could not record" in r.getMessage() for r in caplog.records)


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    names = ("httpx2", "httpcore2", "httpx", "httpcore")
    levels = {name: logging.getLogger(name).level for name in names}
    yield
    for handler in list(root.handlers):
        if handler not in saved[1]:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(saved[0])
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.parametrize("debug_http", [False, True])
def test_the_debug_log_holds_message_lines_and_http_lines_only_on_request(
    tmp_path, restore_logging, debug_http: bool
) -> None:
    from pathlib import Path

    from mcp_sse_proxy.config.model import LogSettings
    from mcp_sse_proxy.logs import configure_logging

    settings = LogSettings(debug_enabled=True, debug_filename=Path("debug.log"), debug_http=debug_http)
    stderr = io.StringIO()
    configure_logging(settings, [SECRET], stream=stderr, log_dir=tmp_path)
    Recorder([SECRET])(Direction.CLIENT_TO_PROXY, "w", request(1, "tools/call", {"token": SECRET}))
    logging.getLogger("httpcore2.connection").debug("connect_tcp.started host='127.0.0.1'")
    logging.getLogger("httpx2").info("HTTP Request: POST http://127.0.0.1/mcp 200")
    debug_log = (tmp_path / "debug.log").read_text()
    assert "mcp_sse_proxy.messages: client→proxy w #1 tools/call" in debug_log
    assert SECRET not in debug_log
    assert ("connect_tcp.started" in debug_log) is debug_http
    assert ("HTTP Request: POST" in debug_log) is debug_http
    assert "client→proxy" not in stderr.getvalue()  # stderr stays at --log-level (info)
