"""`--print-client-config`: every client's entry parses as JSON, carries no spaced argument, masks secrets,
and starts a proxy that answers `initialize`."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from mcp_sse_proxy import clientconfig
from mcp_sse_proxy.cli import parse_flags
from mcp_sse_proxy.clientconfig import CLIENTS, ClientConfigError, client_config, config_location
from mcp_sse_proxy.config import AppConfig, load_config_from_system
from mcp_sse_proxy.config.model import Profile
from tests.doctor.peers import SERVER_NAME

TOKEN = "tok-0123456789"
ANSWER_TIMEOUT = 30.0


@pytest.fixture
def launcher(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An `mcp-sse-proxy` script on PATH that runs this checkout's CLI with this interpreter."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "mcp-sse-proxy"
    script.write_text(
        f"#!{sys.executable}\nimport sys\nfrom mcp_sse_proxy.cli import main\nsys.exit(main())\n"
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    return script


def load(argv: list[str], environ: dict[str, str]) -> AppConfig:
    _namespace, flags = parse_flags(argv)
    return load_config_from_system(flags, environ)


def entry_of(document: dict[str, Any], client: str) -> tuple[str, dict[str, Any]]:
    servers = document["servers"] if client == "vscode" else document["mcpServers"]
    assert len(servers) == 1
    return next(iter(servers.items()))


def write_profile(directory: Path, url: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "peer.yaml"
    path.write_text(f"url: {url}\nheaders:\n  Authorization: Bearer {TOKEN}\nping_interval: 0\n")
    return path


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("env_only", [False, True])
def test_every_client_entry_is_json(client: str, env_only: bool, tmp_path: Path, launcher: Path) -> None:
    config_file = write_profile(tmp_path / "with space", "http://127.0.0.1:9/mcp")
    argv = [
        "--config",
        str(config_file),
        "--profile",
        "peer",
        "-H",
        "X-Team: blue team",
        "--read-timeout",
        "5",
    ]
    environ = {"ST_PROXY_CONNECT_TIMEOUT": "3"}
    config = load(argv, environ)
    document = json.loads(client_config(config, client, env_only, argv, environ=environ))
    name, entry = entry_of(document, client)
    assert name == "peer"
    assert entry["command"] == str(launcher)
    assert not any(ch.isspace() for arg in entry["args"] for ch in arg)
    if client in ("vscode", "claude-code", "generic"):
        assert entry["type"] == "stdio"
    env = entry["env"]
    assert TOKEN not in json.dumps(document) and "blue team" not in json.dumps(document)
    assert env["ST_PROXY_CONNECT_TIMEOUT"] == "3"
    if env_only:
        assert entry["args"] == []
        assert env["ST_PROXY_URL"] == "http://127.0.0.1:9/mcp"
        assert env["ST_PROXY_HEADERS"].splitlines() == ["Authorization: ***", "X-Team: ***"]
        assert env["ST_PROXY_READ_TIMEOUT"] == "5"
        assert env["ST_PROXY_PING_INTERVAL"] == "0"
    else:
        assert entry["args"] == ["--profile", "peer", "--read-timeout", "5"]
        assert env["ST_PROXY_CONFIG"] == str(config_file)  # a path with a space travels in env
        assert env["ST_PROXY_HEADERS"] == "X-Team: ***"


def test_profile_args_without_spaces_stay_arguments(tmp_path: Path, launcher: Path, monkeypatch) -> None:
    config_file = write_profile(tmp_path, "http://127.0.0.1:9/mcp")
    monkeypatch.chdir(tmp_path)
    argv = ["-c", "peer.yaml", "-ppeer", "--no-lazy", "--tls-verify"]
    config = load(argv, {})
    argv += ["--check", "--print-client-config", "cursor", "--env-only"]  # action flags are dropped
    document = json.loads(client_config(config, "cursor", False, argv, environ={}))
    _name, entry = entry_of(document, "cursor")
    assert entry["args"] == ["--config", str(config_file), "--profile", "peer", "--no-lazy", "--tls-verify"]
    assert "env" not in entry


def test_reveal_secrets_on_request(tmp_path: Path, launcher: Path) -> None:
    argv = ["--config", str(write_profile(tmp_path, "http://127.0.0.1:9/mcp")), "--profile", "peer"]
    config = load(argv, {})
    document = json.loads(client_config(config, "generic", True, argv, reveal_secrets=True, environ={}))
    _name, entry = entry_of(document, "generic")
    assert entry["env"]["ST_PROXY_HEADERS"] == f"Authorization: Bearer {TOKEN}"


def test_this_interpreter_when_no_script_is_installed(monkeypatch, tmp_path: Path) -> None:
    """Not `uvx mcp-sse-proxy`: on PyPI that name is the earlier 0.1.4 script, another program."""
    monkeypatch.setattr(clientconfig.shutil, "which", lambda name: None)
    monkeypatch.setattr(clientconfig.sys, "executable", str(tmp_path / "python"))
    config = AppConfig(profiles=(Profile(name="default", url="http://127.0.0.1:9/mcp"),))
    document = json.loads(client_config(config, "claude-desktop", True, [], environ={}))
    name, entry = entry_of(document, "claude-desktop")
    assert name == "mcp-sse-proxy"
    assert (entry["command"], entry["args"]) == (str(tmp_path / "python"), ["-m", "mcp_sse_proxy"])


def test_env_only_needs_one_profile() -> None:
    config = AppConfig(
        profiles=(Profile(name="a", url="http://h/mcp"), Profile(name="b", url="http://h/sse"))
    )
    with pytest.raises(ClientConfigError, match="exactly one profile"):
        client_config(config, "cursor", True, [], environ={})
    assert '"a-b"' in client_config(config, "cursor", False, ["--profile", "a,b"], environ={})


def test_unknown_client_and_argument() -> None:
    config = AppConfig(profiles=(Profile(name="a", url="http://h/mcp"),))
    with pytest.raises(ClientConfigError, match="unknown client"):
        client_config(config, "emacs", False, [], environ={})
    with pytest.raises(ClientConfigError, match="not a setting"):
        client_config(config, "cursor", False, ["--frobnicate"], environ={})


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("platform", ["linux", "darwin", "win32"])
def test_config_location(client: str, platform: str) -> None:
    text = config_location(client, platform=platform, home=Path("/home/u"))
    expected = {
        "claude-desktop": "claude_desktop_config.json",
        "cursor": "mcp.json",
        "vscode": "mcp.json",
        "windsurf": "mcp_config.json",
        "claude-code": ".mcp.json",
        "generic": "mcpServers",
    }[client]
    assert expected in text


def _first_line(process: subprocess.Popen[bytes]) -> bytes:
    lines: queue.Queue[bytes] = queue.Queue()
    assert process.stdout is not None
    threading.Thread(target=lambda: lines.put(process.stdout.readline()), daemon=True).start()
    try:
        return lines.get(timeout=ANSWER_TIMEOUT)
    except queue.Empty:
        raise AssertionError("the proxy did not answer initialize in time") from None


@pytest.mark.integration
@pytest.mark.parametrize("env_only", [False, True])
def test_entry_starts_a_proxy_that_answers_initialize(
    env_only: bool, streamable_peer, tmp_path: Path, launcher: Path
) -> None:
    config_file = write_profile(tmp_path / "dir with space", streamable_peer.base + "/mcp")
    argv = ["--config", str(config_file), "--profile", "peer", "--no-use-env-proxy"]
    config = load(argv, {})
    text = client_config(config, "claude-desktop", env_only, argv, reveal_secrets=True, environ={})
    document = json.loads(text)
    _name, entry = entry_of(document, "claude-desktop")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ST_PROXY_")}
    env.update(entry.get("env", {}))
    process = subprocess.Popen(
        [entry["command"], *entry["args"]],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd="/",
    )
    try:
        initialize = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "test", "version": "0"},
            },
        }
        assert process.stdin is not None
        process.stdin.write(json.dumps(initialize).encode() + b"\n")
        process.stdin.flush()
        reply = json.loads(_first_line(process))
        assert reply["id"] == 1
        assert reply["result"]["serverInfo"]["name"] == SERVER_NAME
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        if process.stdout is not None:
            process.stdout.close()


def test_variables_a_header_needs_get_a_placeholder_in_env(tmp_path: Path, launcher: Path) -> None:
    profile = tmp_path / "peer.yaml"
    profile.write_text("url: http://127.0.0.1:9/mcp\nheaders:\n  Authorization: Bearer ${PEER_TOKEN}\n")
    argv = [
        "--config",
        str(profile),
        "--profile",
        "peer",
        "-H",
        "X-Team: ${TEAM}",
        "-H",
        "X-Lit: $${NOT_A_VAR}",
    ]
    environ = {"PEER_TOKEN": TOKEN, "TEAM": "blue"}
    config = load(argv, environ)
    assert config.profiles[0].header_variables == ("PEER_TOKEN", "TEAM")
    document = json.loads(client_config(config, "cursor", False, argv, environ=environ))
    _name, entry = entry_of(document, "cursor")
    assert entry["env"]["PEER_TOKEN"] == "<value of PEER_TOKEN>"
    assert entry["env"]["TEAM"] == "<value of TEAM>"
    assert "NOT_A_VAR" not in entry["env"]
    assert TOKEN not in json.dumps(document)


def test_the_stderr_hint_reads_as_sentences(tmp_path: Path, launcher: Path, monkeypatch, capsys) -> None:
    from mcp_sse_proxy.cli import main

    monkeypatch.setenv("API_TOKEN", TOKEN)
    argv = ["--sse-url", "http://127.0.0.1:9/mcp", "-H", "Authorization: Bearer ${API_TOKEN}"]
    assert main([*argv, "--print-client-config", "claude-desktop"]) == 0
    err_lines = capsys.readouterr().err.splitlines()
    assert err_lines[0].startswith("Claude Desktop reads ") and err_lines[0].endswith(".")
    assert not err_lines[0].startswith("Paste it into")
    assert err_lines[-1].startswith('The headers use ${API_TOKEN}: set API_TOKEN in the entry\'s "env"')
    assert all(line.endswith(".") for line in err_lines)


def test_env_only_carries_the_new_logging_settings(tmp_path: Path, launcher: Path) -> None:
    trace = tmp_path / "t.jsonl"
    argv = [
        "--sse-url",
        "http://127.0.0.1:9/mcp",
        "--trace",
        str(trace),
        "--debug-http",
        "--trace-max-payload",
        "99",
    ]
    config = load(argv, {})
    document = json.loads(client_config(config, "generic", True, argv, environ={}))
    _name, entry = entry_of(document, "generic")
    assert entry["env"]["ST_PROXY_TRACE_FILE"] == str(trace)
    assert entry["env"]["ST_PROXY_DEBUG_HTTP"] == "true"
    assert entry["env"]["ST_PROXY_TRACE_MAX_PAYLOAD"] == "99"
