"""The man page and the README options table list every option and every ST_PROXY_* variable."""

from __future__ import annotations

import os
import re
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


def _require(tool: str) -> str:
    found = shutil.which(tool)
    # Not a skip: a machine without groff would silently stop checking the page (.ci/run relies on it).
    assert found is not None, f"{tool} is not installed (apt-get install -y groff-base man-db)"
    return found


def test_groff_renders_the_page_without_a_warning(tmp_path: Path) -> None:
    page = tmp_path / "mcp-sse-proxy.1"
    page.write_text(render_manpage())
    result = subprocess.run(
        [_require("groff"), "-man", "-ww", "-z", str(page)],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0 and result.stderr == "", result.stderr


def test_no_text_line_is_read_as_a_request() -> None:
    for line in render_manpage().splitlines():
        assert not line.startswith("'"), line


@pytest.mark.parametrize("width", ["60", "200"])
def test_man_renders_every_detail_and_whole_paths(tmp_path: Path, width: str) -> None:
    page = tmp_path / "mcp-sse-proxy.1"
    page.write_text(render_manpage())
    result = subprocess.run(
        [_require("man"), "-l", str(page)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "MANPAGER": "cat", "PAGER": "cat", "MANWIDTH": width, "MAN_KEEP_FORMATTING": ""},
        stdin=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    unhyphenated = re.sub("\u2010\n\\s*", "", result.stdout).replace("\u2010", "-")
    text = " ".join(unhyphenated.split())
    assert "--sse-url" in text and "ST_PROXY_DEBUG_ENABLED" in text
    # The whole --header entry survives, including the part after 'Name:value'.
    assert "(also 'Name:value'). Repeatable. Values may use ${VAR} from the environment" in text
    assert "~/.config/mcp-sse-proxy/*.yaml" in text
    assert "~/.local/state/mcp-sse-proxy/log/mcp-sse-proxy-debug.log" in text
    assert "mcp- sse" not in text and "sse- proxy" not in text


def test_readme_options_table_matches_the_schema() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start, end = "<!-- options-table:start -->\n", "<!-- options-table:end -->"
    assert start in readme and end in readme
    embedded = readme.split(start, 1)[1].split(end, 1)[0]
    assert embedded == render_options_table(), (
        "README options table is stale: regenerate it with `python -m mcp_sse_proxy.manpage --readme-table`"
    )
