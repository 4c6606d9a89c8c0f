"""The built wheel works on its own: fresh venv, another directory, schema and man page inside."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from .conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
URL = "http://127.0.0.1:8765/sse"


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600, **kwargs
    )
    assert result.returncode == 0, f"{cmd}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(ROOT)])
    (built,) = out.glob("mcp_sse_proxy-*.whl")
    return built


def test_wheel_contains_schema_and_man_page(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "mcp_sse_proxy/schemas/profile.schema.json" in names
    assert any(n.endswith(".data/data/share/man/man1/mcp-sse-proxy.1") for n in names)
    assert not any(n.startswith(("tests/", "profiles/")) for n in names)


def test_installed_command_from_another_directory(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    run([str(bindir / "python"), "-m", "pip", "install", "--quiet", str(wheel)])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ST_PROXY_", "PYTHON"))}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")

    printed = run([str(bindir / "mcp-sse-proxy"), "--print-config", "--sse-url", URL], cwd=elsewhere, env=env)
    assert yaml.safe_load(printed.stdout)["profiles"]["default"]["url"] == URL
    version = run([str(bindir / "mcp-sse-proxy"), "--version"], cwd=elsewhere, env=env)
    assert version.stdout.startswith("mcp-sse-proxy ")
    # the installed copy validates with its own schema, not the source tree's
    bad = subprocess.run(
        [str(bindir / "mcp-sse-proxy"), "--print-config", "--sse-url", URL, "--lazy", "maybe"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    assert bad.returncode == 2 and "lazy (from flag --lazy): must be true or false" in bad.stderr
    where = run(
        [str(bindir / "python"), "-c", "import mcp_sse_proxy; print(mcp_sse_proxy.__file__)"],
        cwd=elsewhere,
        env=env,
    )
    assert str(ROOT) not in where.stdout

    page = venv / "share" / "man" / "man1" / "mcp-sse-proxy.1"
    assert page.is_file()
    if shutil.which("man"):
        shown = run(
            ["man", "./" + page.name],
            cwd=page.parent,
            env={**env, "MANPAGER": "cat", "PAGER": "cat", "MANWIDTH": "200"},
        )
        assert "ST_PROXY_SSE_URL" in shown.stdout
