"""The man page and the README options table list every option and every ST_PROXY_* variable."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from mcp_sse_proxy.cli import build_parser
from mcp_sse_proxy.config.schema import loader_options, settings
from mcp_sse_proxy.manpage import render_manpage, render_options_table

from .conftest import ROOT


def all_options() -> set[str]:
    return {s for action in build_parser()._actions for s in action.option_strings}


def all_env_names() -> set[str]:
    return {n for s in (*settings().values(), *loader_options().values()) for n in s.env_names}


def roff_plain(text: str) -> str:
    return text.replace("\\-", "-").replace("\\fB", "").replace("\\fR", "").replace("\\fI", "")


def test_man_page_lists_every_option_and_variable() -> None:
    page = roff_plain(render_manpage())
    assert page.startswith(".TH MCP-SSE-PROXY")
    for option in all_options() - {"-h", "--help"}:
        assert option in page, option
    for env_name in all_env_names() | {"ST_PROXY_HEADER_"}:
        assert env_name in page, env_name
    for section in ("ENVIRONMENT", "FILES", "EXIT STATUS", "EXAMPLES"):
        assert f".SH {section}" in page


@pytest.mark.skipif(shutil.which("man") is None, reason="man is not installed")
def test_man_renders_the_page(tmp_path: Path) -> None:
    page = tmp_path / "mcp-sse-proxy.1"
    page.write_text(render_manpage())
    result = subprocess.run(
        ["man", str(page)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "MANPAGER": "cat", "PAGER": "cat", "MANWIDTH": "200"},
        stdin=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    text = result.stdout.replace("\u2010", "-")
    assert "--sse-url" in text and "ST_PROXY_DEBUG_ENABLED" in text


def test_readme_options_table_matches_the_schema() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start, end = "<!-- options-table:start -->\n", "<!-- options-table:end -->"
    assert start in readme and end in readme
    embedded = readme.split(start, 1)[1].split(end, 1)[0]
    assert embedded == render_options_table(), (
        "README options table is stale: regenerate it with `python -m mcp_sse_proxy.manpage --readme-table`"
    )
