"""Process logging: stderr at the configured level, optional log files, all through redaction.

stdout is the JSON-RPC channel, so no handler here ever writes to it. Call `configure_logging` once at
start-up (the CLI does, on the run path); importing this module changes nothing.
"""

from __future__ import annotations

import functools
import logging
import os
import stat
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from mcp_sse_proxy.config.model import LogSettings
from mcp_sse_proxy.redaction import RedactingFormatter, Redactor, register_secret

if TYPE_CHECKING:
    import logging.handlers

APP_NAME = "mcp-sse-proxy"
DEFAULT_DEBUG_FILENAME = "mcp-sse-proxy-debug.log"
MAX_LOG_BYTES = 5 * 1024 * 1024
LOG_BACKUPS = 3
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_MARK = "_mcp_sse_proxy_handler"


class LogFileRefused(OSError):
    """A log file path that others could swap or read: its directory is writable by others, or the file is
    a symlink or someone else's."""


def check_log_directory(directory: Path) -> None:
    """Refuse a directory others may write to (with the sticky bit, as /tmp, only our own files are used)."""
    if os.name != "posix":
        return
    st = directory.stat()
    if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
        raise LogFileRefused(
            f"log file directory {directory} is writable by others (mode {stat.S_IMODE(st.st_mode):o}); "
            "choose a private directory"
        )


def open_private_log(path: Path) -> int:
    """Open `path` for appending, created 0600, never through a symlink, and made 0600 if it was not."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    check_log_directory(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW, 0o600)
    except OSError as exc:
        if _NOFOLLOW and path.is_symlink():
            raise LogFileRefused(f"log file {path} is a symbolic link; refused") from None
        raise exc
    if os.name == "posix":
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid():
            os.close(fd)
            raise LogFileRefused(f"log file {path} is not a regular file of ours; refused")
        if stat.S_IMODE(st.st_mode) != 0o600:
            os.fchmod(fd, 0o600)  # an older file (or one made under another umask) may be readable by others
    return fd


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


@functools.cache
def _private_rotating_handler() -> type[logging.handlers.RotatingFileHandler]:
    """`PrivateRotatingFileHandler`, built on first use: logging.handlers costs ~8 ms to import, and only a
    start with a log file needs it."""
    import logging.handlers

    class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
        """A size-rotated, appended log file created with mode 0600 (the rotated files too)."""

        def _open(self) -> TextIO:
            fd = open_private_log(Path(self.baseFilename))
            return open(fd, "a", encoding=self.encoding or "utf-8", errors=self.errors)

    return PrivateRotatingFileHandler


def user_log_dir() -> Path:
    """The platform's per-user log directory for mcp-sse-proxy."""
    from platformdirs import user_log_path

    return user_log_path(APP_NAME, appauthor=False)


def debug_log_path(settings: LogSettings, log_dir: Path | None = None) -> Path:
    """Where the debug log goes: `debug_filename`, relative names placed in the user log directory."""
    name = settings.debug_filename or Path(DEFAULT_DEBUG_FILENAME)
    if name.is_absolute():
        return name
    return (log_dir or user_log_dir()) / name.expanduser()


_CHATTY_LIBRARIES = ("httpx2", "httpcore2", "httpx", "httpcore")


def configure_logging(
    settings: LogSettings,
    secrets: Iterable[str] = (),
    *,
    stream: TextIO | None = None,
    log_dir: Path | None = None,
) -> list[logging.Handler]:
    """Install the proxy's handlers on the root logger (replacing ones from an earlier call).

    stderr (or `stream`) gets records at `settings.level`; `log_file` gets the same; with
    `debug_enabled` the debug log gets every record. Returns the handlers installed.
    """
    secrets = tuple(secrets)
    for secret in secrets:
        register_secret(secret, lasting=True)  # error texts built outside logging mask them too
    redactor = Redactor(secrets)
    formatter = RedactingFormatter(_FORMAT, redactor=redactor)
    level = logging.getLevelName(settings.level.upper())
    handlers: list[logging.Handler] = [logging.StreamHandler(stream or sys.stderr)]
    handlers[0].setLevel(level)
    refused: list[str] = []
    if settings.log_file is not None:
        _add_file_handler(handlers, refused, settings.log_file.expanduser(), level)
    if settings.debug_enabled:
        _add_file_handler(handlers, refused, debug_log_path(settings, log_dir), logging.DEBUG)

    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(old)
        old.close()
    for handler in handlers:
        handler.setFormatter(formatter)
        setattr(handler, _MARK, True)
        root.addHandler(handler)
    root.setLevel(min(h.level for h in handlers))
    # The HTTP library's lines (several per request) would drown the one line per message of the debug
    # log: they are written only on request.
    quiet = logging.NOTSET if settings.debug_http else logging.WARNING
    for name in _CHATTY_LIBRARIES:
        logging.getLogger(name).setLevel(quiet)
    for reason in refused:
        logging.getLogger("mcp_sse_proxy").error("not writing a log file: %s", reason)
    return handlers


def _add_file_handler(handlers: list[logging.Handler], refused: list[str], path: Path, level: int) -> None:
    """A file handler for `path`, or the reason it was refused (the proxy still runs, logging to stderr)."""
    try:
        handlers.append(_file_handler(path, level))
    except LogFileRefused as exc:
        refused.append(str(exc))


def _file_handler(path: Path, level: int) -> logging.Handler:
    handler = _private_rotating_handler()(
        path, maxBytes=MAX_LOG_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8"
    )
    handler.setLevel(level)
    return handler
