"""README claims that a new user acts on: how to install this repository, and what a client's command is."""

from __future__ import annotations

import json
import re

from mcp_sse_proxy import __version__

from .conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    return README.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_install_section_installs_this_repository_not_the_pypi_namesake() -> None:
    install = _section("Install")
    commands = "\n".join(re.findall(r"```bash\n(.*?)```", install, flags=re.S))
    assert "pipx install ." in commands and "pip install ." in commands
    # On PyPI, mcp-sse-proxy is the earlier 0.1.4 script: never tell people to install this by that name.
    assert not re.search(r"(pip|pipx) install mcp-sse-proxy|uvx mcp-sse-proxy\b", commands)
    assert "0.1.4" in install and __version__ in install


def test_desktop_examples_name_the_command_by_absolute_path() -> None:
    desktop = _section("Use it from a desktop client")
    blocks = re.findall(r"```json\n(.*?)```", desktop, flags=re.S)
    assert blocks
    for block in blocks:
        for entry in json.loads(block)["mcpServers"].values():
            assert entry["command"].startswith("/"), entry["command"]
    assert "--print-client-config" in desktop and "pipx install ." in desktop
