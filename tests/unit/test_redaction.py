"""Secrets never reach a log line: configured values, Authorization headers and bearer tokens are masked."""

from __future__ import annotations

import io
import logging
import os
import stat
from pathlib import Path

import pytest

from mcp_sse_proxy.config.model import LogSettings
from mcp_sse_proxy.logs import configure_logging, debug_log_path
from mcp_sse_proxy.redaction import MASK, Redactor

SECRET = "s3cr3t-value-123"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"token={SECRET}!", f"token={MASK}!"),
        ("Authorization: Basic dXNlcjpwYXNz", f"Authorization: {MASK}"),
        ('{"authorization": "Bearer abc.def"}', f'{{"authorization": "{MASK}"}}'),
        ("headers={'Proxy-Authorization': 'x y z'}", f"headers={{'Proxy-Authorization': '{MASK}'}}"),
        ("sent Bearer eyJhbGciOi.J9-_x= to upstream", f"sent Bearer {MASK} to upstream"),
        ("nothing to hide", "nothing to hide"),
        ("the word authorization alone", "the word authorization alone"),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert Redactor([SECRET, "abc"]).redact(text) == expected


def test_longer_secrets_are_masked_before_their_prefixes() -> None:
    assert Redactor(["abcd", "abcdefgh"]).redact("abcdefgh abcd") == f"{MASK} {MASK}"


def test_very_short_values_are_not_masked() -> None:
    assert Redactor(["1", "on"]).redact("1 on") == "1 on"


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


def test_every_handler_redacts_messages_arguments_and_tracebacks(
    tmp_path: Path, restore_root_logger, capsys
) -> None:
    stream = io.StringIO()
    settings = LogSettings(
        level="info", log_file=tmp_path / "app.log", debug_enabled=True, debug_filename=Path("debug.log")
    )
    configure_logging(settings, {SECRET}, stream=stream, log_dir=tmp_path / "logs")
    log = logging.getLogger("mcp_sse_proxy.test")
    log.info("connecting with %s", {"Authorization": f"Bearer {SECRET}"})
    log.debug("debug detail %s", SECRET)
    try:
        raise RuntimeError(f"upstream refused {SECRET}")
    except RuntimeError:
        log.exception("failed")
    outputs = {
        "stderr": stream.getvalue(),
        "log_file": (tmp_path / "app.log").read_text(),
        "debug": (tmp_path / "logs" / "debug.log").read_text(),
    }
    for name, text in outputs.items():
        assert SECRET not in text, name
        assert MASK in text, name
    assert "debug detail" in outputs["debug"]
    assert "debug detail" not in outputs["stderr"]
    assert "RuntimeError: upstream refused ***" in outputs["stderr"]
    assert capsys.readouterr().out == ""  # nothing ever on stdout


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_log_files_are_private_and_appended(tmp_path: Path, restore_root_logger) -> None:
    settings = LogSettings(debug_enabled=True, debug_filename=tmp_path / "d" / "debug.log")
    for run in range(2):
        configure_logging(settings, (), stream=io.StringIO())
        logging.getLogger("mcp_sse_proxy").warning("run %d", run)
    path = tmp_path / "d" / "debug.log"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().count("run ") == 2
    assert len([h for h in logging.getLogger().handlers if getattr(h, "_mcp_sse_proxy_handler", False)]) == 2


def test_debug_log_defaults_to_the_user_log_directory(tmp_path: Path) -> None:
    assert debug_log_path(LogSettings(), tmp_path) == tmp_path / "mcp-sse-proxy-debug.log"
    assert debug_log_path(LogSettings(debug_filename=Path("x.log")), tmp_path) == tmp_path / "x.log"
    assert debug_log_path(LogSettings(debug_filename=tmp_path / "abs.log")) == tmp_path / "abs.log"
    from mcp_sse_proxy.logs import user_log_dir

    assert "site-packages" not in str(user_log_dir())
