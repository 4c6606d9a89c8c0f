"""`mcp-sse-proxy` end to end in-process and as a subprocess: equivalent spellings, actions, exit codes."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
import yaml

from mcp_sse_proxy import __version__
from mcp_sse_proxy.cli import main

from .conftest import run_module

URL = "http://127.0.0.1:8765/sse"


def print_config(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:
    assert main([*argv, "--print-config"]) == 0
    out = capsys.readouterr().out
    return yaml.safe_load(out)


def values_only(data: dict) -> dict:
    """The effective values, the profile renamed to 'p' (sources are comments, so not compared)."""
    (profile,) = data["profiles"].values()
    return {"profile": profile}


def test_four_ways_to_give_the_url_agree(clean_env, tmp_path: Path, capsys, monkeypatch) -> None:
    by_flag = values_only(print_config(capsys, ["--sse-url", URL]))
    by_alias = values_only(print_config(capsys, ["--base-url", URL]))
    monkeypatch.setenv("ST_PROXY_SSE_URL", URL)
    by_env = values_only(print_config(capsys, []))
    monkeypatch.delenv("ST_PROXY_SSE_URL")
    profile_dir = Path(clean_env["XDG_CONFIG_HOME"]) / "mcp-sse-proxy"
    profile_dir.mkdir(parents=True)
    (profile_dir / "work.yaml").write_text(f"url: {URL}\n")
    by_profile = values_only(print_config(capsys, ["--profile", "work"]))
    assert by_flag == by_alias == by_env == by_profile
    assert by_flag["profile"]["url"] == URL


def test_print_config_shows_sources(clean_env, capsys) -> None:
    assert main(["--base-url", URL, "--ping-interval", "5", "--print-config"]) == 0
    out = capsys.readouterr().out
    assert f'url: "{URL}"  # flag --base-url' in out
    assert "ping_interval: 5.0  # flag --ping-interval" in out


def test_version(capsys) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"mcp-sse-proxy {__version__}\n"
    assert main(["--sse-url", URL, "--version"]) == 0
    assert capsys.readouterr().out == f"mcp-sse-proxy {__version__}\n"


def test_help_exits_zero(capsys) -> None:
    assert main(["--help"]) == 0
    assert "--sse-url URL, --base-url URL, --url URL" in capsys.readouterr().out


def test_usage_error_exits_two(capsys) -> None:
    assert main(["--no-such-flag"]) == 2
    assert "unknown option --no-such-flag" in capsys.readouterr().err


def test_a_misspelt_flag_gets_one_line_with_a_suggestion(capsys) -> None:
    assert main(["--sse-ulr", URL, "--tls-verfy"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "usage:" not in err
    assert "unknown option --sse-ulr; did you mean --sse-url?" in err
    assert "unknown option --tls-verfy; did you mean --tls-verify?" in err


def test_a_bare_url_is_explained(capsys) -> None:
    assert main([URL]) == 2
    assert "a URL goes after --sse-url" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("switch", "action"), [("--json", "--check"), ("--env-only", "--print-client-config")]
)
def test_action_only_switches_without_their_action_are_errors(clean_env, capsys, switch, action) -> None:
    assert main(["--sse-url", URL, switch]) == 2
    assert f"{switch} works only with {action}" in capsys.readouterr().err


def test_a_negated_boolean_takes_no_value(capsys) -> None:
    assert main(["--sse-url", URL, "--no-lazy=yes", "--print-config"]) == 2
    assert "--no-lazy takes no value" in capsys.readouterr().err


def test_help_is_grouped_with_a_short_usage_line_and_examples(capsys) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "usage: mcp-sse-proxy (--sse-url URL | --profile NAME) [OPTIONS]"
    for title in (
        "connection:",
        "headers and auth:",
        "TLS and proxy:",
        "timeouts, limits and reconnect:",
        "tools and aggregation",
        "logging (",
        "actions (",
        "examples:",
    ):
        assert f"\n{title}" in out, title
    assert "mcp-sse-proxy --profile work --check" in out
    assert "ST_PROXY_SSE_URL=" in out and "--profile work,notes" in out
    assert "--tls-verify [BOOL], --no-tls-verify\n" in out


def test_list_profiles_with_nothing_found_says_where_it_looked(clean_env, tmp_path: Path, capsys) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert main(["--config", str(empty), "--list-profiles"]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    user_dir = Path(clean_env["XDG_CONFIG_HOME"]) / "mcp-sse-proxy"
    assert f"no profiles found in {empty} and *.yaml or *.yml in {user_dir}" in captured.err


def test_abbreviations_are_refused(capsys) -> None:
    assert main(["--sse", URL]) == 2


def test_config_error_exits_two_on_stderr_only(clean_env, capsys) -> None:
    assert main(["--print-config"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "configuration error" in captured.err and "url: required" in captured.err


def test_unknown_profile_lists_available(clean_env, tmp_path: Path, capsys) -> None:
    config = tmp_path / "set.yaml"
    config.write_text("profiles:\n  alpha: {url: 'http://h/'}\n  beta: {url: 'http://h/'}\n")
    assert main(["--config", str(config), "--profile", "gamma", "--print-config"]) == 2
    err = capsys.readouterr().err
    assert f"profile 'gamma': not found in {config} and *.yaml or *.yml in " in err
    assert "; available: alpha, beta" in err


def test_invalid_yaml_names_file_and_line(clean_env, tmp_path: Path, capsys) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("url: http://h/\nheaders: [\n")
    assert main(["-c", str(config), "--print-config"]) == 2
    assert f"{config}:3:1: invalid YAML" in capsys.readouterr().err


def test_missing_config_file(clean_env, tmp_path: Path, capsys) -> None:
    assert main(["--config", str(tmp_path / "nope.yaml"), "--list-profiles"]) == 2
    assert "nope.yaml: cannot read configuration file" in capsys.readouterr().err


def test_config_files_from_the_environment_and_the_user_directory(
    clean_env, tmp_path: Path, capsys, monkeypatch
) -> None:
    user_dir = Path(clean_env["XDG_CONFIG_HOME"]) / "mcp-sse-proxy"
    user_dir.mkdir(parents=True)
    (user_dir / "home.yaml").write_text("url: http://h/home\n")
    one, two = tmp_path / "one.yaml", tmp_path / "two.yaml"
    one.write_text("url: http://h/one\n")
    two.write_text("profiles:\n  home: {url: 'http://h/shadowed'}\n")
    monkeypatch.setenv("ST_PROXY_CONFIG", f"{one}{__import__('os').pathsep}{two}")
    assert main(["--list-profiles"]) == 0
    lines = capsys.readouterr().out.splitlines()
    shadowed = f"home\t{user_dir / 'home.yaml'}:1\t(shadowed by {two}:2)"
    assert lines == [f"home\t{two}:2", f"one\t{one}:1", shadowed]


def test_run_path_configures_logging_and_calls_app_run(clean_env, monkeypatch, capsys) -> None:
    seen = {}

    def fake_run(config) -> int:
        import logging

        logging.getLogger("mcp_sse_proxy.app").warning("running with Bearer tok-123456789")
        seen["config"] = config
        return 0

    monkeypatch.setitem(sys.modules, "mcp_sse_proxy.app", types.SimpleNamespace(run=fake_run))
    assert main(["--sse-url", URL, "--header", "Authorization: Bearer tok-123456789"]) == 0
    captured = capsys.readouterr()
    assert seen["config"].profiles[0].url == URL
    assert captured.out == ""
    assert "running with ***" in captured.err
    assert "tok-123456789" not in captured.err


def test_run_failure_exits_one(clean_env, monkeypatch, capsys) -> None:
    from mcp_sse_proxy.errors import UpstreamUnavailable

    def failing_run(config) -> int:
        raise UpstreamUnavailable("connection refused")

    monkeypatch.setitem(sys.modules, "mcp_sse_proxy.app", types.SimpleNamespace(run=failing_run))
    assert main(["--sse-url", URL]) == 1
    assert "connection refused" in capsys.readouterr().err


def test_python_dash_m_from_another_directory(clean_env, tmp_path: Path) -> None:
    result = run_module(["--print-config", "--sse-url", URL], clean_env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout)["profiles"]["default"]["url"] == URL


def _imported(result_stderr: str) -> set[str]:
    names = set()
    for line in result_stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip())
    return names


def test_version_and_print_config_stay_lean(clean_env, tmp_path: Path) -> None:
    version = run_module(["--version"], clean_env, tmp_path, "-X", "importtime")
    assert version.returncode == 0
    heavy = {"yaml", "jsonschema", "httpx2", "anyio", "platformdirs", "argparse", "mcp_sse_proxy.config"}
    assert not heavy & _imported(version.stderr)
    printed = run_module(["--print-config", "--sse-url", URL], clean_env, tmp_path, "-X", "importtime")
    assert printed.returncode == 0
    assert not {"httpx2", "anyio", "mcp_sse_proxy.app"} & _imported(printed.stderr)


def test_a_url_without_scheme_exits_two_naming_field_and_source(clean_env, capsys) -> None:
    assert main(["--sse-url", "mcp.example.com/sse", "--print-config"]) == 2
    err = capsys.readouterr().err
    assert "url (from flag --sse-url): the URL must start with http:// or https://" in err


def test_in_a_terminal_the_proxy_says_it_waits_for_a_client(clean_env, tmp_path: Path) -> None:
    import os
    import pty
    import select
    import subprocess
    import time

    from .conftest import ROOT

    leader, follower = pty.openpty()
    env = {**clean_env, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "mcp_sse_proxy", "--sse-url", "http://127.0.0.1:9/sse"],
        stdin=follower,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        cwd=tmp_path,
    )
    os.close(follower)
    try:
        seen = b""
        deadline = time.monotonic() + 30
        while b"--check" not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([process.stderr], [], [], deadline - time.monotonic())
            if not ready:
                break
            chunk = os.read(process.stderr.fileno(), 4096)
            if not chunk:
                break
            seen += chunk
    finally:
        process.kill()
        process.wait(10)
        process.stderr.close()
        os.close(leader)
    text = seen.decode()
    assert "waiting for an MCP client on stdin" in text
    assert "--check" in text


def test_with_a_pipe_on_stdin_there_is_no_notice(clean_env, monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "mcp_sse_proxy.app", types.SimpleNamespace(run=lambda config: 0))
    assert main(["--sse-url", URL]) == 0
    assert "waiting for an MCP client" not in capsys.readouterr().err


def test_print_config_saved_as_a_file_gives_the_same_configuration(clean_env, tmp_path: Path, capsys) -> None:
    argv = ["--sse-url", URL, "--ping-interval", "7", "--lazy", "--trace", str(tmp_path / "t.jsonl")]
    assert main([*argv, "--print-config"]) == 0
    saved = tmp_path / "saved.yaml"
    saved.write_text(capsys.readouterr().out)
    assert main(["--config", str(saved), "--print-config"]) == 0
    again = yaml.safe_load(capsys.readouterr().out)
    assert again == yaml.safe_load(saved.read_text())  # same values; only the source comments differ


@pytest.mark.parametrize("explicit_level", [False, True])
def test_check_output_is_not_interleaved_with_log_lines(
    clean_env, monkeypatch, capsys, explicit_level
) -> None:
    import logging

    import mcp_sse_proxy.check as doctor

    during = {}

    def fake_run_check(config, as_json) -> int:
        log = logging.getLogger("mcp_sse_proxy.detect")
        log.info("profile default: using streamable-http")
        log.warning("the server sent something odd")
        sys.stdout.write("REPORT\n")
        during["stderr"] = capsys.readouterr()
        return 0

    monkeypatch.setattr(doctor, "run_check", fake_run_check)
    argv = ["--sse-url", URL, "--check", *(["--log-level", "info"] if explicit_level else [])]
    assert main(argv) == 0
    assert during["stderr"].err == ""  # nothing reached stderr while the report was being written
    assert during["stderr"].out == "REPORT\n"
    after = capsys.readouterr().err
    assert after.startswith("mcp-sse-proxy --check: log lines written during the check:\n")
    assert "the server sent something odd" in after
    assert ("using streamable-http" in after) is explicit_level
