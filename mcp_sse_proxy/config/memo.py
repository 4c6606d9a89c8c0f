"""A small file remembering which merged profiles were found valid, so later starts skip jsonschema.

Importing and running jsonschema costs ~70 ms of a ~160 ms start (benchmarks/RESULTS.md, "cold start"), and a
desktop client starts the proxy with the same settings every time. The file holds digests of typed canonical
values with every secret replaced by its type (`schema.memo_key`), so it is no guessing oracle. It lives in
a 0700 directory of ours, is written through an `O_EXCL | O_NOFOLLOW` temporary file, and is read only when
the directory and the file belong to us and nobody else may write them. Any problem means "validate again".
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

#: Digests kept: enough for the profiles one user runs, small enough to read in microseconds.
MAX_ENTRIES = 64
#: First line of the file; files of earlier formats (a salt line) are ignored and replaced.
FORMAT = "mcp-sse-proxy validated-profiles 2"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _is_private(st: os.stat_result, kind: int) -> bool:
    """Ours, of the expected kind (not a symlink), and not writable (or readable) by anyone else."""
    if stat.S_IFMT(st.st_mode) != kind:
        return False
    if os.name != "posix":
        return True
    return st.st_uid == os.getuid() and not st.st_mode & 0o077


def private_directory(path: Path) -> bool:
    """Create `path` as a 0700 directory (or tighten ours); False when it is not safe to use."""
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        st = os.lstat(path)
        if (
            os.name == "posix"
            and stat.S_ISDIR(st.st_mode)
            and st.st_uid == os.getuid()
            and st.st_mode & 0o077
        ):
            os.chmod(path, 0o700)
            st = os.lstat(path)
    except OSError:
        return False
    return _is_private(st, stat.S_IFDIR)


class FileValidationMemo:
    """`ValidationMemo` backed by a text file: a format line, then one digest per line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._digests: list[str] = self._read()

    def _read(self) -> list[str]:
        try:
            if not _is_private(os.lstat(self.path.parent), stat.S_IFDIR):
                return []
            fd = os.open(self.path, os.O_RDONLY | _NOFOLLOW)
        except OSError:
            return []
        with os.fdopen(fd, "rb") as handle:
            if not _is_private(os.fstat(handle.fileno()), stat.S_IFREG):
                return []
            lines = handle.read(MAX_ENTRIES * 70 + 100).decode("ascii", "replace").splitlines()
        if not lines or lines[0] != FORMAT:
            return []
        return [line for line in lines[1:] if len(line) == 64][-MAX_ENTRIES:]

    @classmethod
    def default(cls) -> FileValidationMemo:
        from platformdirs import user_cache_path

        return cls(user_cache_path("mcp-sse-proxy", appauthor=False) / "validated-profiles")

    def knows(self, digest: str) -> bool:
        return digest in self._digests

    def add(self, digest: str) -> None:
        self._digests = [*(d for d in self._digests if d != digest), digest][-MAX_ENTRIES:]
        if not private_directory(self.path.parent):
            return  # a shared or foreign directory: not worth trusting, so not worth writing
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
        except OSError:
            return  # a leftover or planted file of that name: skip this write
        try:
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write("\n".join([FORMAT, *self._digests]) + "\n")
            os.replace(temporary, self.path)
        except OSError:
            try:
                os.unlink(temporary)
            except OSError:
                pass  # a read-only home only costs the next start a validation
