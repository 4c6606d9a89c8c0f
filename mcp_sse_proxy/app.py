"""The running proxy: stdin lines → relay → stdout, with signals and a clean exit."""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING

import anyio

from .config.model import AppConfig, Profile
from .protocol import messages as jsonrpc
from .protocol.messages import InvalidMessage, Message
from .relay import Relay
from .stdio import LineWriter, read_lines
from .tap import Direction, Tap
from .trace import recorder_for

if TYPE_CHECKING:
    from .aggregate.server import Aggregator
    from .auth.elicit import ClientPrompt

log = logging.getLogger("mcp_sse_proxy")


def run(config: AppConfig) -> int:
    """Run the proxy until stdin closes or a signal arrives; the exit status."""
    log.info("%s", startup_line(config))
    from .config.safety import start_warnings

    warnings, errors = start_warnings(config.profiles, os.environ)
    for warning in warnings:
        log.warning("%s", warning)
    if errors:
        for error in errors:
            log.error("%s; refused", error)
        return 2
    try:
        anyio.run(serve, config)
    except KeyboardInterrupt:
        pass
    return 0


def startup_line(config: AppConfig) -> str:
    """The one line a bug report needs: version, profiles and where the debug log goes."""
    from . import __version__
    from .protocol.urls import display

    profiles = ", ".join(f"{p.name}={display(p.url)} ({p.transport})" for p in config.profiles)
    line = f"mcp-sse-proxy {__version__} starting; profiles: {profiles}"
    if config.logging.debug_enabled:
        from .logs import debug_log_path

        line += f"; debug log: {debug_log_path(config.logging)}"
    elif config.logging.log_file is not None:
        line += f"; log file: {config.logging.log_file}"
    if config.logging.trace_file is not None:
        line += f"; trace: {config.logging.trace_file}"
    return line


async def serve(config: AppConfig, stdin_fd: int | None = None, stdout_fd: int | None = None) -> None:
    profile = config.profiles[0]
    writer = LineWriter(sys.stdout.fileno() if stdout_fd is None else stdout_fd)
    with recorder_for(config) as tap:
        await _serve(config, profile, writer, tap, stdin_fd)


async def _serve(
    config: AppConfig, profile: Profile, writer: LineWriter, tap: Tap | None, stdin_fd: int | None
) -> None:
    side = profile.name if len(config.profiles) == 1 else "+".join(p.alias for p in config.profiles)

    async def to_client(message: Message) -> None:
        if tap is not None:
            tap(Direction.PROXY_TO_CLIENT, side, message)
        await writer.send(message.raw)

    relay: Relay | Aggregator
    if len(config.profiles) == 1:
        relay = Relay(profile, to_client, os.environ, tap=tap)
    else:
        from .aggregate.server import Aggregator, Settings

        settings = Settings.from_profile(profile)
        relay = Aggregator(config.profiles, to_client, os.environ, settings=settings, tap=tap)
    fd = sys.stdin.fileno() if stdin_fd is None else stdin_fd
    prompt = _client_prompt(config, to_client)
    async with anyio.create_task_group() as outer:
        outer.start_soon(writer.run)
        async with anyio.create_task_group() as inner:
            inner.start_soon(_watch_signals, inner.cancel_scope)
            inner.start_soon(_watch_output, writer, inner.cancel_scope)
            inbound = _client_messages(fd, max(p.max_message_size for p in config.profiles), writer)
            if tap is not None:
                inbound = tapped(inbound, tap, side)
            if prompt is not None:
                inner.start_soon(prompt.run)
                inbound = answered_here(inbound, prompt)
            try:
                await relay.run(inbound)
            finally:
                if prompt is not None:
                    from .auth import elicit

                    elicit.install(None)
            inner.cancel_scope.cancel()
        writer.close()


def _client_prompt(config: AppConfig, to_client: Callable[[Message], Awaitable[None]]) -> ClientPrompt | None:
    """The sign-in's way to show its link in the client (URL elicitation), where a profile may sign in."""
    from .auth import uses_oauth

    if not any(uses_oauth(p) for p in config.profiles):
        return None
    from .auth import elicit

    prompt = elicit.ClientPrompt(to_client)
    elicit.install(prompt)
    return prompt


async def answered_here(messages: AsyncIterator[Message], prompt: ClientPrompt) -> AsyncIterator[Message]:
    """`messages` without the client's answers to the proxy's own elicitations (they go to `prompt`)."""
    async for message in messages:
        if not prompt.observe(message):
            yield message


async def tapped(messages: AsyncIterator[Message], tap: Tap, side: str) -> AsyncIterator[Message]:
    """`messages`, each told to `tap` as read from the client."""
    async for message in messages:
        tap(Direction.CLIENT_TO_PROXY, side, message)
        yield message


async def _client_messages(fd: int, max_size: int, writer: LineWriter) -> AsyncIterator[Message]:
    """Parsed client messages; lines that are not JSON-RPC are answered here and logged."""
    async for line in read_lines(fd, max_size):
        if line is None:
            log.error("dropped an input line longer than the maximum message size (%d bytes)", max_size)
            await writer.send(
                jsonrpc.error_response(
                    None, jsonrpc.INVALID_REQUEST, f"message larger than {max_size} bytes"
                ).raw
            )
            continue
        try:
            yield jsonrpc.parse(line)
        except InvalidMessage as exc:
            log.error("invalid input from the client: %s", exc.reason)
            await writer.send(jsonrpc.error_response(exc.id, exc.code, exc.reason).raw)


async def _watch_output(writer: LineWriter, reading: anyio.CancelScope) -> None:
    """The client closed its end of stdout: nobody can read an answer any more, so stop reading."""
    async with anyio.create_task_group() as tg:
        tg.start_soon(writer.watch)
        await writer.gone.wait()
        tg.cancel_scope.cancel()
    log.warning("the client closed the proxy's output; exiting")
    reading.cancel()


async def _watch_signals(reading: anyio.CancelScope) -> None:
    if sys.platform == "win32":
        return
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
        async for signum in signals:
            log.info("received %s; shutting down", signal.Signals(signum).name)
            reading.cancel()
            return
