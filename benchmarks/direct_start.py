"""The cold-start reference: the least a Python process can do to initialize with the upstream via httpx2.

`python direct_start.py URL sse|streamable-http` imports httpx2, performs `initialize` with the blocking
client, writes the response line to stdout and then its peak RSS in kB as a second line.
"""

from __future__ import annotations

import sys

import httpx2

INITIALIZE = (
    b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18",'
    b'"capabilities":{},"clientInfo":{"name":"direct-start","version":"1"}}}'
)
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def legacy(client: httpx2.Client, url: str) -> bytes:
    with client.stream("GET", url, headers={"Accept": "text/event-stream"}) as resp:
        lines = resp.iter_lines()
        for line in lines:
            if line.startswith("data:"):
                endpoint = str(httpx2.URL(url).join(line[5:].strip()))
                break
        client.post(endpoint, content=INITIALIZE, headers=HEADERS).raise_for_status()
        for line in lines:
            if line.startswith("data:"):
                return line[5:].strip().encode()
    raise SystemExit("the SSE stream ended before the initialize response")


def streamable(client: httpx2.Client, url: str) -> bytes:
    resp = client.post(url, content=INITIALIZE, headers=HEADERS)
    resp.raise_for_status()
    body = resp.content
    return body.split(b"data: ", 1)[1].strip() if body.startswith(b"event:") else body


def main() -> None:
    url, transport = sys.argv[1], sys.argv[2]
    with httpx2.Client(trust_env=False) as client:
        line = legacy(client, url) if transport == "sse" else streamable(client, url)
    sys.stdout.buffer.write(line + b"\n")
    sys.stdout.flush()
    with open("/proc/self/status") as status:
        peak = next(row.split()[1] for row in status if row.startswith("VmHWM:"))
    sys.stdout.write(peak + "\n")


if __name__ == "__main__":
    main()
