"""A cross-process lock on a file, with a bounded wait: one sign-in or refresh per key at a time.

POSIX `flock` (released by the kernel when the process dies, so a crashed instance never blocks the
others); on Windows `msvcrt.locking`. The blocking wait runs in a helper thread and the caller waits on
an event with a timeout; a helper that gets the lock after its caller gave up releases it at once.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path


class FileLock:
    """An exclusive lock on `path`; `acquire(timeout)` then `release()`, or use it as a context manager."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self, timeout: float) -> bool:
        """Take the lock, waiting at most `timeout` seconds; whether it was taken."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        if _try_lock(fd):
            self._fd = fd
            return True
        got = threading.Event()
        guard = threading.Lock()
        state = {"abandoned": False}

        def wait() -> None:
            if not _wait_lock(fd, time.monotonic() + max(timeout, 0.0) + 3600.0):
                return
            with guard:
                if state["abandoned"]:
                    os.close(fd)  # closing releases the lock nobody wants any more
                    return
                got.set()

        threading.Thread(target=wait, name="mcp-sse-proxy-lock", daemon=True).start()
        got.wait(timeout)
        with guard:
            if got.is_set():
                self._fd = fd
                return True
            state["abandoned"] = True
        return False

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            _unlock(fd)
            os.close(fd)

    @property
    def is_held(self) -> bool:
        return self._fd is not None


if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _wait_lock(fd: int, deadline: float) -> bool:
        # msvcrt has no blocking lock without its own 10 s limit; a bounded retry in the helper thread.
        while time.monotonic() < deadline:
            if _try_lock(fd):
                return True
            time.sleep(0.1)
        return False

    def _unlock(fd: int) -> None:
        try:
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        except OSError:
            pass

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _wait_lock(fd: int, deadline: float) -> bool:
        fcntl.flock(fd, fcntl.LOCK_EX)  # the kernel wakes us when the holder releases or dies
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
