"""The loopback redirect endpoint of a sign-in: one small HTTP listener on 127.0.0.1.

It tries the candidate ports in order and takes the first free one (a port in use is a fallback, never a
crash), answers `GET /callback?code=…&state=…` with a page telling the user to go back, and hands the
parameters to the waiting sign-in. Everything is bounded: header size, read time, the wait itself.
"""

from __future__ import annotations

import errno
import html
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import anyio
from anyio.abc import SocketListener, SocketStream, TaskGroup

from .keys import CALLBACK_PATH

MAX_HEAD = 16 * 1024
READ_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class CallbackResult:
    """The query of the redirect: a code and state, or an RFC 6749 §4.1.2.1 error."""

    code: str | None
    state: str | None
    iss: str | None
    error: str | None
    error_description: str | None


class PortsInUse(OSError):
    """Every candidate callback port is taken by another program."""

    def __init__(self, ports: list[int]) -> None:
        super().__init__(errno.EADDRINUSE, "callback ports in use: " + ", ".join(map(str, ports)))
        self.ports = ports


class CallbackServer:
    """Listens on the first free candidate port until closed; `result()` waits for the redirect."""

    def __init__(self, listener: SocketListener, port: int) -> None:
        self._listener = listener
        self.port = port
        self._done = anyio.Event()
        self._result: CallbackResult | None = None

    @classmethod
    async def bind(cls, ports: list[int]) -> CallbackServer:
        for port in ports:
            try:
                listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=port)
            except OSError as exc:
                if exc.errno in (errno.EADDRINUSE, errno.EACCES) or "in use" in str(exc).lower():
                    continue
                raise
            return cls(listener, port)
        raise PortsInUse(ports)

    async def serve(self, task_group: TaskGroup) -> None:
        """Accept connections in `task_group` until `aclose`."""
        task_group.start_soon(self._listener.serve, self._handle, task_group)

    async def result(self) -> CallbackResult:
        await self._done.wait()
        assert self._result is not None
        return self._result

    async def aclose(self) -> None:
        await self._listener.aclose()

    async def _handle(self, stream: SocketStream) -> None:
        async with stream:
            head = b""
            with anyio.move_on_after(READ_TIMEOUT):
                while b"\r\n\r\n" not in head and len(head) < MAX_HEAD:
                    try:
                        head += await stream.receive(4096)
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        break
            line = head.split(b"\r\n", 1)[0].decode("latin-1")
            parts = line.split(" ")
            target = urlsplit(parts[1]) if len(parts) == 3 else None
            if target is None or parts[0] != "GET" or target.path != CALLBACK_PATH:
                await _respond(stream, 404, "Not found", "This is the sign-in callback of mcp-sse-proxy.")
                return
            query = {name: values[0] for name, values in parse_qs(target.query).items()}
            result = CallbackResult(
                code=query.get("code"),
                state=query.get("state"),
                iss=query.get("iss"),
                error=query.get("error"),
                error_description=query.get("error_description"),
            )
            if result.code is None and result.error is None:
                await _respond(
                    stream, 400, "Bad request", "The redirect carried neither a code nor an error."
                )
                return
            if result.error is not None:
                text = f"Sign-in was refused: {result.error}. {result.error_description or ''}"
                await _respond(stream, 200, "Sign-in refused", text)
            else:
                await _respond(
                    stream, 200, "Signed in", "mcp-sse-proxy is signed in. You can close this tab."
                )
            if self._result is None:
                self._result = result
                self._done.set()


async def _respond(stream: SocketStream, status: int, title: str, text: str) -> None:
    body = (
        f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title><p>{html.escape(text)}</p>"
    ).encode()
    head = (
        f"HTTP/1.1 {status} {title}\r\nContent-Type: text/html; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
    ).encode("latin-1")
    try:
        with anyio.move_on_after(READ_TIMEOUT):
            await stream.send(head + body)
    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
        pass
