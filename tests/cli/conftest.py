"""Fixtures for the command-line tests: an environment with no ST_PROXY_* and private config/log dirs."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """os.environ without ST_PROXY_* and with XDG dirs under tmp_path (so no real user profile is read)."""
    for name in list(os.environ):
        if name.startswith("ST_PROXY_"):
            monkeypatch.delenv(name)
    for var, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_STATE_HOME", "state"), ("HOME", "home")):
        (tmp_path / sub).mkdir(exist_ok=True)
        monkeypatch.setenv(var, str(tmp_path / sub))
    return dict(os.environ)


def run_module(
    args: list[str], env: Mapping[str, str], cwd: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    """`python [extra] -m mcp_sse_proxy args` in a subprocess, the repository importable."""
    full_env = {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))}
    return subprocess.run(
        [sys.executable, *extra, "-m", "mcp_sse_proxy", *args],
        env=full_env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture(autouse=True)
def restore_logging():
    """`main()` on the run path installs handlers on the root logger (writing to this test's captured
    stderr); take them away afterwards so later tests do not log into a closed stream."""
    import logging

    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    quiet = {name: logging.getLogger(name).level for name in ("httpx2", "httpcore2", "httpx", "httpcore")}
    yield
    for handler in list(root.handlers):
        if handler not in saved[1]:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(saved[0])
    for name, level in quiet.items():
        logging.getLogger(name).setLevel(level)
