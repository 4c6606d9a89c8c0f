"""Fixtures for integration tests: test peers on 127.0.0.1 as subprocesses, and the proxy driven over stdio.

Every wait is bounded and every process started here is killed and reaped at teardown, also when a test fails.

- `start_sdk_server(transport, *args)` / `sdk_sse_server` … : the official SDK server (`tests.servers.sdk_server`).
- `fault_server`: a fresh fault-injecting server per test, with its control API (`FaultControl`).
- `proxy_session(url, *args, env=..., era=...)`: the proxy under the SDK's stdio client, as an initialized
  `ClientSession`.
- `raw_proxy(url, *args, env=...)`: the proxy as a bare subprocess for byte-level framing tests (`RawProxy`).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import IO, Any, Literal

import anyio
import anyio.abc
import httpx2
import pytest
from mcp.client.session import (
    ClientSession,
    ElicitationFnT,
    ListRootsFnT,
    LoggingFnT,
    MessageHandlerFnT,
    SamplingFnT,
)
from mcp.client.stdio import StdioServerParameters, get_default_environment, stdio_client

from tests import peers
from tests.peers import REPO_ROOT, RunningServer

LOOPBACK = "127.0.0.1"
SERVER_START_TIMEOUT = 15.0
PROXY_START_TIMEOUT = 20.0
DEFAULT_REQUEST_TIMEOUT = 30.0
PROCESS_STOP_TIMEOUT = 5.0

Era = Literal["legacy", "modern", "auto", "none"]


# ---- peer servers as subprocesses (the one way: tests/peers.py) --------------------------------------------


def running_server(
    module: str, path: str, *args: str, timeout: float = SERVER_START_TIMEOUT
) -> contextlib.AbstractContextManager[RunningServer]:
    """Start `python -m <module> --port 0 <args>` from the repo root and wait for its `READY <port>`."""
    return peers.running_server(module, *args, path=path, timeout=timeout)


def sdk_endpoint_path(transport: str) -> str:
    return "/sse" if transport == "sse" else "/mcp"


@pytest.fixture
def start_sdk_server() -> Iterator[Callable[..., RunningServer]]:
    """`start_sdk_server(transport="streamable", *extra_args) -> RunningServer`; all are stopped at teardown.

    Extra args are sdk_server options: `--event-store`, `--retry-interval MS`, `--name N`, `--max-body B`,
    `--tool-prefix P`, `--extra-tools N`.
    """
    started: list[Any] = []

    def start(transport: str = "streamable", *extra_args: str) -> RunningServer:
        manager = running_server(
            "tests.servers.sdk_server", sdk_endpoint_path(transport), "--transport", transport, *extra_args
        )
        server = manager.__enter__()
        started.append(manager)
        return server

    try:
        yield start
    finally:
        for manager in reversed(started):
            manager.__exit__(None, None, None)


def _module_sdk_server(transport: str) -> Iterator[RunningServer]:
    with running_server(
        "tests.servers.sdk_server", sdk_endpoint_path(transport), "--transport", transport
    ) as server:
        yield server


@pytest.fixture(scope="module")
def sdk_sse_server() -> Iterator[RunningServer]:
    """The SDK server over legacy HTTP+SSE (`.url` ends in `/sse`), shared by a test module."""
    yield from _module_sdk_server("sse")


@pytest.fixture(scope="module")
def sdk_streamable_server() -> Iterator[RunningServer]:
    """The SDK server over Streamable HTTP with SSE answers and sessions (`.url` ends in `/mcp`)."""
    yield from _module_sdk_server("streamable")


@pytest.fixture(scope="module")
def sdk_streamable_json_server() -> Iterator[RunningServer]:
    """The SDK server over Streamable HTTP answering with `application/json`."""
    yield from _module_sdk_server("streamable-json")


@pytest.fixture(scope="module")
def sdk_stateless_server() -> Iterator[RunningServer]:
    """The SDK server over stateless Streamable HTTP (no session id, no back-channel)."""
    yield from _module_sdk_server("stateless")


@pytest.fixture(scope="module", params=["sse", "streamable", "streamable-json", "stateless"])
def sdk_server(request: pytest.FixtureRequest) -> Iterator[tuple[str, RunningServer]]:
    """`(transport, server)` for each SDK transport in turn (tests using it run four times)."""
    for server in _module_sdk_server(request.param):
        yield request.param, server


# ---- the fault server ----------------------------------------------------------------------------------------


@dataclass
class FaultControl:
    """A running fault server and its control API (see `tests.servers.fault_server` for every switch)."""

    server: RunningServer
    client: httpx2.AsyncClient = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx2.AsyncClient(base_url=self.server.base_url, timeout=10.0)

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def sse_url(self) -> str:
        """The legacy HTTP+SSE URL."""
        return self.server.base_url + "/sse"

    @property
    def mcp_url(self) -> str:
        """The Streamable HTTP endpoint."""
        return self.server.base_url + "/mcp"

    async def configure(self, **switches: Any) -> dict[str, Any]:
        """Merge fault switches (e.g. `sse_line_ending="crlf"`); returns the resulting faults."""
        return await self._post("/_control", switches)

    async def reset(self) -> None:
        """Default faults, empty request log, no sessions."""
        await self._post("/_control/reset", {})

    async def restart(self) -> None:
        """Drop every session and stream."""
        await self._post("/_control/restart", {})

    async def send(self, message: Mapping[str, Any], session: str | None = None) -> int:
        """Push a raw JSON-RPC message to the client (legacy stream or Streamable GET stream)."""
        payload: dict[str, Any] = {"message": dict(message)}
        if session is not None:
            payload["session"] = session
        return int((await self._post("/_control/send", payload))["delivered"])

    async def requests(self) -> list[dict[str, Any]]:
        """Every request the server received, oldest first (control requests excluded)."""
        response = await self.client.get("/_control/log")
        response.raise_for_status()
        return list(response.json()["requests"])

    async def rpc_requests(self, method: str | None = None) -> list[dict[str, Any]]:
        """Logged requests whose body is a JSON-RPC message (with `method` if given)."""
        return [
            entry
            for entry in await self.requests()
            if isinstance(entry["body"], dict) and (method is None or entry["body"].get("method") == method)
        ]

    async def state(self) -> dict[str, Any]:
        response = await self.client.get("/_control/state")
        response.raise_for_status()
        return dict(response.json())

    async def wait_for_request(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 5.0
    ) -> dict[str, Any]:
        """The first logged request matching `predicate`, waiting up to `timeout` s for it to arrive."""
        with anyio.fail_after(timeout):
            while True:
                version = await self._version()
                for entry in await self.requests():
                    if predicate(entry):
                        return entry
                await self._changed_since(version)

    async def wait_for_state(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 5.0
    ) -> dict[str, Any]:
        """The server state (see `state`) once `predicate` holds, waiting up to `timeout` s."""
        with anyio.fail_after(timeout):
            while True:
                version = await self._version()
                if predicate(state := await self.state()):
                    return state
                # Sessions also end without a request (a stream cut): look again within half a second.
                await self._changed_since(version, wait=0.5)

    async def wait_for_log(
        self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 5.0
    ) -> list[dict[str, Any]]:
        """The request log once `predicate` holds for it, waiting up to `timeout` s."""
        with anyio.fail_after(timeout):
            while True:
                version = await self._version()
                entries = await self.requests()
                if predicate(entries):
                    return entries
                await self._changed_since(version)

    async def wait_settled(self, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The request log once every request in it has been answered (none is still being handled)."""
        return await self.wait_for_log(lambda entries: all(e["status"] is not None for e in entries), timeout)

    async def _version(self) -> int:
        return await self._changed_since(None, wait=0)

    async def _changed_since(self, version: int | None, wait: float = 5.0) -> int:
        """Wait in the server (long poll) until its change counter passes `version`; the counter."""
        since = -1 if version is None else version
        response = await self.client.get("/_control/changes", params={"since": since, "wait": wait})
        response.raise_for_status()
        return int(response.json()["version"])

    async def _post(self, path: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        response = await self.client.post(path, json=dict(payload))
        if response.status_code != 200:
            raise AssertionError(f"fault control {path} failed: {response.status_code} {response.text}")
        return dict(response.json())

    async def aclose(self) -> None:
        await self.client.aclose()


@pytest.fixture(scope="module")
def fault_server_process() -> Iterator[RunningServer]:
    """The fault server subprocess, shared by a test module (tests get it reset through `fault_server`)."""
    with running_server("tests.servers.fault_server", "") as server:
        yield server


@pytest.fixture
async def fault_server(fault_server_process: RunningServer) -> AsyncIterator[FaultControl]:
    """The fault server with default faults, an empty request log and no sessions (needs `@pytest.mark.anyio`)."""
    control = FaultControl(fault_server_process)
    try:
        await control.reset()
        yield control
    finally:
        try:
            with anyio.fail_after(5):
                await control.reset()  # also ends streams a failed test left open
        finally:
            await control.aclose()


# ---- the proxy under test ------------------------------------------------------------------------------------


def proxy_command(url: str, *extra_args: str) -> list[str]:
    """The argv that starts the proxy against `url`."""
    return [sys.executable, "-m", "mcp_sse_proxy", "--sse-url", url, *extra_args]


def proxy_environment(env: Mapping[str, str] | None) -> dict[str, str]:
    """The SDK's minimal inherited environment plus `env` (no stray ST_PROXY_* from the developer's shell)."""
    return get_default_environment() | dict(env or {})


async def _establish(session: ClientSession, era: Era) -> None:
    if era == "legacy":
        await session.initialize()
    elif era == "modern":
        await session.discover()
    elif era == "auto":
        from mcp.client._probe import negotiate_auto  # the SDK's own connect-time policy (private module)

        await negotiate_auto(session)


def _report_stderr(errlog: IO[str], label: str) -> None:
    errlog.flush()
    errlog.seek(0)
    text = errlog.read()
    if text:
        sys.stderr.write(f"--- {label} stderr ---\n{text[-20000:]}\n--- end ---\n")


@asynccontextmanager
async def open_proxy_session(
    url: str,
    *extra_args: str,
    env: Mapping[str, str] | None = None,
    era: Era = "legacy",
    sampling_callback: SamplingFnT | None = None,
    elicitation_callback: ElicitationFnT | None = None,
    list_roots_callback: ListRootsFnT | None = None,
    logging_callback: LoggingFnT | None = None,
    message_handler: MessageHandlerFnT | None = None,
    read_timeout: float = DEFAULT_REQUEST_TIMEOUT,
    start_timeout: float = PROXY_START_TIMEOUT,
    errlog: IO[str] | None = None,
) -> AsyncIterator[ClientSession]:
    """Start the proxy against `url` under the SDK's stdio client and yield a connected `ClientSession`.

    `era`: "legacy" runs `initialize`, "modern" runs `server/discover`, "auto" the SDK's probe-then-fallback
    policy, "none" leaves the session unconnected. Callbacks left as None are not declared as capabilities.
    Every request is bounded by `read_timeout`. The proxy's stderr goes to `errlog` (a temp file by default,
    printed to stderr if the body raises).
    """
    own_errlog = errlog is None
    log_file: IO[str] = errlog if errlog is not None else tempfile.TemporaryFile("w+", encoding="utf-8")
    params = StdioServerParameters(
        command=sys.executable,
        args=proxy_command(url, *extra_args)[1:],
        env=proxy_environment(env),
        cwd=REPO_ROOT,
    )
    try:
        async with stdio_client(params, errlog=log_file) as (read_stream, write_stream):
            async with ClientSession(
                read_stream,
                write_stream,
                read_timeout_seconds=read_timeout,
                sampling_callback=sampling_callback,
                elicitation_callback=elicitation_callback,
                list_roots_callback=list_roots_callback,
                logging_callback=logging_callback,
                message_handler=message_handler,
            ) as session:
                with anyio.fail_after(start_timeout):
                    await _establish(session, era)
                yield session
    except BaseException:
        if own_errlog:
            _report_stderr(log_file, "proxy")
        raise
    finally:
        if own_errlog:
            log_file.close()


@pytest.fixture
def proxy_session() -> Callable[..., Any]:
    """`async with proxy_session(url, *args, env=..., era=..., sampling_callback=...) as session:` (see
    `open_proxy_session`)."""
    return open_proxy_session


class RawProxy:
    """The proxy as a bare subprocess: write bytes to its stdin, read lines from its stdout with deadlines."""

    def __init__(self, process: anyio.abc.Process, errlog: IO[str]) -> None:
        self.process = process
        self.errlog = errlog
        self._buffer = bytearray()
        self._eof = False

    async def write(self, data: bytes) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send(data)

    async def send(self, message: Any) -> None:
        """Write `message` as one compact JSON line."""
        await self.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")

    async def close_stdin(self) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.aclose()

    async def readline(self, timeout: float = 10.0) -> bytes:
        """The next stdout line without its `\\n`; raises TimeoutError, or EOFError at end of output."""
        assert self.process.stdout is not None
        with anyio.fail_after(timeout):
            while True:
                newline = self._buffer.find(b"\n")
                if newline >= 0:
                    line = bytes(self._buffer[:newline])
                    del self._buffer[: newline + 1]
                    return line
                if self._eof:
                    raise EOFError(f"proxy stdout closed (pending {bytes(self._buffer[:200])!r})")
                try:
                    self._buffer += await self.process.stdout.receive(1 << 20)
                except anyio.EndOfStream:
                    self._eof = True

    async def read_message(self, timeout: float = 10.0) -> Any:
        """The next stdout line parsed as JSON."""
        return json.loads(await self.readline(timeout))

    async def read_until(
        self, predicate: Callable[[Any], bool], timeout: float = 10.0
    ) -> tuple[Any, list[Any]]:
        """Read messages until one matches; returns it and the ones skipped before it."""
        skipped: list[Any] = []
        with anyio.fail_after(timeout):
            while True:
                message = await self.read_message(timeout)
                if predicate(message):
                    return message, skipped
                skipped.append(message)

    async def wait(self, timeout: float = 10.0) -> int:
        """Wait for the process to exit; returns its exit code."""
        with anyio.fail_after(timeout):
            return await self.process.wait()

    def stderr_text(self) -> str:
        self.errlog.flush()
        self.errlog.seek(0)
        return self.errlog.read()


@asynccontextmanager
async def open_raw_proxy(
    url: str, *extra_args: str, env: Mapping[str, str] | None = None
) -> AsyncIterator[RawProxy]:
    """Spawn the proxy against `url` with piped stdin/stdout; killed and reaped on exit."""
    with tempfile.TemporaryFile("w+", encoding="utf-8") as errlog:
        process = await anyio.open_process(
            proxy_command(url, *extra_args),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errlog,
            cwd=REPO_ROOT,
            env=proxy_environment(env),
        )
        raw = RawProxy(process, errlog)
        try:
            yield raw
        except BaseException:
            _report_stderr(errlog, "raw proxy")
            raise
        finally:
            with anyio.CancelScope(shield=True):
                if process.returncode is None:
                    process.terminate()
                    with anyio.move_on_after(PROCESS_STOP_TIMEOUT):
                        await process.wait()
                if process.returncode is None:
                    process.kill()
                    with anyio.move_on_after(PROCESS_STOP_TIMEOUT):
                        await process.wait()
                await process.aclose()


@pytest.fixture
def raw_proxy() -> Callable[..., Any]:
    """`async with raw_proxy(url, *args, env=...) as proxy:` (see `RawProxy`)."""
    return open_raw_proxy
