"""Log files that others could read or swap are refused; session ids never reach a log line (issue 18)."""

from __future__ import annotations

import io
import logging
import os
import stat
from pathlib import Path

import pytest

from mcp_sse_proxy.config.model import LogSettings
from mcp_sse_proxy.logs import configure_logging
from mcp_sse_proxy.redaction import MASK, Redactor

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes and symlinks")


@pytest.fixture
def restore_root_logger():
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    yield
    for handler in list(root.handlers):
        if handler not in saved[1]:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(saved[0])


def _configure(path: Path) -> tuple[list[logging.Handler], io.StringIO]:
    stream = io.StringIO()
    handlers = configure_logging(LogSettings(log_file=path), (), stream=stream)
    return handlers, stream


@posix_only
def test_an_existing_log_file_is_made_private(tmp_path: Path, restore_root_logger) -> None:
    directory = tmp_path / "logs"
    directory.mkdir(mode=0o700)
    path = directory / "proxy.log"
    path.write_text("old line\n")
    path.chmod(0o644)
    _configure(path)
    logging.getLogger("mcp_sse_proxy").warning("new line")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().startswith("old line\n")


@posix_only
def test_a_symlinked_log_file_is_not_followed(tmp_path: Path, restore_root_logger) -> None:
    directory = tmp_path / "logs"
    directory.mkdir(mode=0o700)
    victim = tmp_path / "victim"
    victim.write_text("untouched\n")
    (directory / "proxy.log").symlink_to(victim)
    handlers, stream = _configure(directory / "proxy.log")
    logging.getLogger("mcp_sse_proxy").warning("should not reach the victim")
    assert victim.read_text() == "untouched\n"
    assert len(handlers) == 1  # stderr only
    assert "symbolic link" in stream.getvalue()


@posix_only
def test_a_log_directory_writable_by_others_is_refused(tmp_path: Path, restore_root_logger) -> None:
    directory = tmp_path / "shared"
    directory.mkdir()
    directory.chmod(0o777)
    handlers, stream = _configure(directory / "proxy.log")
    logging.getLogger("mcp_sse_proxy").warning("hello")
    assert not (directory / "proxy.log").exists()
    assert len(handlers) == 1
    assert "writable by others" in stream.getvalue() and str(directory) in stream.getvalue()


@posix_only
def test_a_sticky_shared_directory_is_allowed_for_our_own_file(tmp_path: Path, restore_root_logger) -> None:
    directory = tmp_path / "tmp-like"
    directory.mkdir()
    directory.chmod(0o1777)
    _configure(directory / "proxy.log")
    logging.getLogger("mcp_sse_proxy").warning("hello")
    assert stat.S_IMODE((directory / "proxy.log").stat().st_mode) == 0o600


@pytest.mark.parametrize(
    "line",
    [
        "Mcp-Session-Id: 4f9c0e2d1b",
        "receive_response_headers.complete return_value=(b'HTTP/1.1', 200, b'OK', [(b'mcp-session-id', b'4f9c0e2d1b')])",
        '{"headers": {"mcp-session-id": "4f9c0e2d1b"}}',
    ],
)
def test_session_ids_are_masked_in_every_printed_form(line: str) -> None:
    masked = Redactor().redact(line)
    assert "4f9c0e2d1b" not in masked and MASK in masked
