"""Spawning the benchmark's subprocesses, reading their resource use from /proc, and always reaping them.

Every child starts in a session of its own (so a wrapper command's children can be signalled with it) and
is registered in a `Children` set; `stop_all()` runs on success, error, Ctrl-C and SIGTERM alike, and an
`atexit` hook kills whatever an interrupted event loop could not stop.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


class Children:
    """The subprocesses this run started; each is stopped (stdin closed, then TERM, then KILL) once."""

    def __init__(self) -> None:
        self._procs: set[asyncio.subprocess.Process] = set()
        atexit.register(self._kill_leftovers)

    async def spawn(
        self, argv: Sequence[str], *, stderr: Path | None = None, cwd: Path | None = None, limit: int = 2**16
    ) -> asyncio.subprocess.Process:
        err = open(stderr, "ab") if stderr is not None else subprocess.DEVNULL  # noqa: SIM115
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                cwd=cwd,
                start_new_session=True,
                limit=limit,
            )
        finally:
            if stderr is not None:
                err.close()  # type: ignore[union-attr]
        self._procs.add(proc)
        return proc

    async def stop(self, proc: asyncio.subprocess.Process, grace: float = 3.0) -> int | None:
        """End `proc` politely (EOF on stdin), then by signal; its exit status (None if it was signalled)."""
        try:
            if proc.stdin is not None and not proc.stdin.is_closing():
                proc.stdin.close()
            with contextlib.suppress(TimeoutError):
                return await asyncio.wait_for(proc.wait(), grace)
            _signal_group(proc.pid, signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 2.0)
                return None
            _signal_group(proc.pid, signal.SIGKILL)
            await proc.wait()
            return None
        finally:
            self._procs.discard(proc)

    async def stop_all(self) -> None:
        await asyncio.gather(*(self.stop(p, grace=1.0) for p in list(self._procs)), return_exceptions=True)

    def _kill_leftovers(self) -> None:
        for proc in list(self._procs):
            if proc.returncode is None:
                _signal_group(proc.pid, signal.SIGKILL)


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)  # the child leads its own session: its group id is its pid
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signum)


@dataclass(frozen=True)
class Usage:
    """Resource use of a process and its descendants, summed."""

    rss_mb: float
    peak_rss_mb: float
    cpu_s: float


def usage(pid: int) -> Usage:
    rss = peak = ticks = 0
    for member in _tree(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
            stat = Path(f"/proc/{member}/stat").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        rss += int(fields.get("VmRSS", "0 kB").split()[0])
        peak += int(fields.get("VmHWM", "0 kB").split()[0])
        after_name = stat.rsplit(")", 1)[1].split()
        ticks += int(after_name[11]) + int(after_name[12])  # utime, stime
    return Usage(rss / 1024, peak / 1024, ticks / CLOCK_TICKS)


def _tree(pid: int) -> list[int]:
    """`pid` and its descendants (a wrapper command such as `uvx` or `sh -c` runs the proxy as a child)."""
    parents: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(parents.get(current, []))
    return found
