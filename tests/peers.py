"""The one way tests start peer processes (SDK servers, the fault server, the 2026-only server, the doctor's
peers): `python -m MODULE ... --port N` from the repository root, then a bounded wait on the process's own
`READY <port>` line, printed once it serves (`tests/servers/serving.py`). No polling, no sleeps. Every process
is stopped and reaped, also when a test fails; the fixtures are in the root `conftest.py`.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = "127.0.0.1"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0


@dataclass
class RunningServer:
    """A peer server subprocess listening on 127.0.0.1:`port`; `url` is its MCP endpoint."""

    process: subprocess.Popen[bytes]
    port: int
    path: str
    stderr_path: Path
    scheme: str = "http"

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{LOOPBACK}:{self.port}"

    @property
    def url(self) -> str:
        return self.base_url + self.path

    def stderr_text(self) -> str:
        return self.stderr_path.read_text(errors="replace")


def read_ready_line(process: subprocess.Popen[bytes], timeout: float) -> int:
    """The port in the first stdout line (`READY <port>`) of `process`, read within `timeout` seconds."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    deadline = time.monotonic() + timeout
    buffer = b""
    while b"\n" not in buffer:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no READY line within {timeout} s (got {buffer!r})")
        readable, _, _ = select.select([fd], [], [], remaining)
        if not readable:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            raise RuntimeError(f"exited before READY (exit code {process.wait()}, output {buffer!r})")
        buffer += chunk
    line = buffer.split(b"\n", 1)[0].decode()
    word, _, port = line.partition(" ")
    if word != "READY" or not port.isdigit():
        raise RuntimeError(f"printed {line!r} instead of 'READY <port>'")
    return int(port)


def stop_process(process: subprocess.Popen[bytes], *, kill: bool = False) -> None:
    """SIGTERM (or SIGKILL: a crash, when a test wants one), then SIGKILL after a bounded wait; reaps."""
    if process.poll() is None:
        if kill:
            process.kill()
        else:
            process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT)
    for stream in (process.stdout, process.stdin):
        if stream is not None:
            stream.close()


def peer_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The test's environment without ST_PROXY_* settings, with the repository importable."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("ST_PROXY_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env | dict(extra or {})


def spawn(module: str, *args: str, stderr_path: Path) -> subprocess.Popen[bytes]:
    with stderr_path.open("wb") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=REPO_ROOT,
            env=peer_environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )


@contextmanager
def running_server(
    module: str,
    *args: str,
    path: str = "",
    scheme: str = "http",
    port: int = 0,
    timeout: float = START_TIMEOUT,
) -> Iterator[RunningServer]:
    """`python -m <module> <args> --port <port>` until the block ends; waits for its `READY <port>`."""
    with tempfile.NamedTemporaryFile(
        prefix=f"{module.rsplit('.', 1)[-1]}-", suffix=".stderr", delete=False
    ) as err:
        stderr_path = Path(err.name)
    process = spawn(module, "--port", str(port), *args, stderr_path=stderr_path)
    try:
        try:
            bound = read_ready_line(process, timeout)
        except (TimeoutError, RuntimeError) as exc:
            raise RuntimeError(
                f"{module} {' '.join(args)} did not start: {exc}\n{stderr_path.read_text()}"
            ) from exc
        yield RunningServer(process=process, port=bound, path=path, stderr_path=stderr_path, scheme=scheme)
    finally:
        stop_process(process)
        stderr_path.unlink(missing_ok=True)


class PeerProcesses:
    """Starts peers for one fixture scope (`peer_processes` and friends); all stopped when it closes."""

    def __init__(self) -> None:
        self._stack = ExitStack()

    def start(self, module: str, *args: str, path: str = "", scheme: str = "http") -> RunningServer:
        return self._stack.enter_context(running_server(module, *args, path=path, scheme=scheme))

    def close(self) -> None:
        self._stack.close()
