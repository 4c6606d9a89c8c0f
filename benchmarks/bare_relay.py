"""A calibration relay: stdio ↔ HTTP on httpx2 + asyncio with nothing else — no JSON parsing, no config,
no error handling, no logging. It is not a product; it shows what a relay in Python costs at the least on
this machine, so the proxy's figures can be read against it:

    python benchmarks/run.py --compare bare='{python} benchmarks/bare_relay.py {url} {transport}'
"""

from __future__ import annotations

import asyncio
import sys

import httpx2

ACCEPT = "application/json, text/event-stream"


async def relay(url: str, transport: str) -> None:
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader(limit=2**28)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin.buffer)
    out_transport, _ = await loop.connect_write_pipe(asyncio.Protocol, sys.stdout.buffer)
    client = httpx2.AsyncClient(
        timeout=None, limits=httpx2.Limits(max_connections=100, max_keepalive_connections=100)
    )
    headers = {"Content-Type": "application/json", "Accept": ACCEPT}
    tasks: set[asyncio.Task[None]] = set()

    def emit(data: bytes) -> None:
        out_transport.write(data + b"\n")

    async def relay_events(resp: httpx2.Response, endpoint: asyncio.Future[str] | None = None) -> None:
        async for line in resp.aiter_lines():
            if line.startswith("data:"):
                data = line[5:].removeprefix(" ")
                if endpoint is not None and not endpoint.done():
                    endpoint.set_result(data)
                else:
                    emit(data.encode())

    if transport == "sse":
        endpoint: asyncio.Future[str] = loop.create_future()

        async def stream() -> None:
            async with client.stream("GET", url, headers={"Accept": "text/event-stream"}) as resp:
                await relay_events(resp, endpoint)

        tasks.add(asyncio.create_task(stream()))
        post_url = str(httpx2.URL(url).join(await endpoint))

        async def send(line: bytes) -> None:
            await client.post(post_url, content=line, headers=headers)

    else:

        async def send(line: bytes) -> None:
            async with client.stream("POST", url, content=line, headers=headers) as resp:
                if "mcp-session-id" in resp.headers:
                    headers["Mcp-Session-Id"] = resp.headers["mcp-session-id"]
                if resp.headers.get("content-type", "").startswith("text/event-stream"):
                    await relay_events(resp)
                else:
                    body = await resp.aread()
                    if body:
                        emit(body)

    while line := await stdin.readline():
        task = asyncio.create_task(send(line.rstrip(b"\n")))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    for task in tasks:
        task.cancel()
    await client.aclose()


if __name__ == "__main__":
    asyncio.run(relay(sys.argv[1], sys.argv[2]))
