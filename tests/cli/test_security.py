"""Issue 18 at the command line: warnings at start, refusals with exit status 2 and no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import run_module

LOOPBACK = "http://127.0.0.1:9/mcp"
REMOTE_HTTP = "http://mcp.example.invalid/mcp"


def _start(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """Run the proxy with stdin at EOF: it reads its configuration, reports, and ends at once."""
    result = run_module(args, env, cwd)
    assert result.stdout == ""  # stdout is the JSON-RPC channel
    return result.returncode, result.stderr


def test_tls_verify_off_warns_at_start_once_per_profile(clean_env, tmp_path: Path) -> None:
    config = tmp_path / "two.yaml"
    config.write_text(
        "profiles:\n"
        f"  a:\n    url: {LOOPBACK}\n    tls_verify: false\n"
        f"  b:\n    url: {LOOPBACK}\n    tls_verify: false\n"
        f"  c:\n    url: {LOOPBACK}\n"
    )
    status, stderr = _start(["-c", str(config), "-p", "a,b,c"], clean_env, tmp_path)
    assert status == 0, stderr
    lines = [line for line in stderr.splitlines() if "verification is off" in line]
    assert len(lines) == 2 and "'a'" in lines[0] and "'b'" in lines[1], stderr
    assert "two.yaml:4" in lines[0]  # where the setting came from


@pytest.mark.parametrize(
    ("extra", "env_extra"),
    [
        (["--header", "X-Api-Key: k-1234567"], {}),
        (["--env-prefixes", "TOOLENV_"], {"TOOLENV_TOKEN": "fwd-1234567"}),
    ],
    ids=["header", "forwarded-env"],
)
def test_credentials_over_plain_http_to_a_remote_host_warn(
    clean_env, tmp_path: Path, extra: list[str], env_extra: dict[str, str]
) -> None:
    status, stderr = _start(["--sse-url", REMOTE_HTTP, *extra], {**clean_env, **env_extra}, tmp_path)
    assert status == 0, stderr
    assert "plain http://" in stderr and "mcp.example.invalid" in stderr
    assert "k-1234567" not in stderr and "fwd-1234567" not in stderr


def test_cleartext_credentials_error_refuses_to_start(clean_env, tmp_path: Path) -> None:
    args = ["--sse-url", REMOTE_HTTP, "--header", "X-Api-Key: k-1234567", "--cleartext-credentials", "error"]
    status, stderr = _start(args, clean_env, tmp_path)
    assert status == 2, stderr
    assert "plain http://" in stderr and "refused" in stderr and "Traceback" not in stderr


@pytest.mark.parametrize(
    "url", [LOOPBACK, "http://localhost:9/mcp", "http://[::1]:9/mcp", "https://mcp.example.invalid/"]
)
def test_no_cleartext_warning_for_loopback_or_https(clean_env, tmp_path: Path, url: str) -> None:
    status, stderr = _start(["--sse-url", url, "--header", "X-Api-Key: k-1234567"], clean_env, tmp_path)
    assert status == 0 and "plain http://" not in stderr, stderr


def test_no_cleartext_warning_without_credentials(clean_env, tmp_path: Path) -> None:
    status, stderr = _start(["--sse-url", REMOTE_HTTP], clean_env, tmp_path)
    assert status == 0 and "plain http://" not in stderr, stderr


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999/mcp", "http://[::1/mcp"])
def test_unusable_url_exits_two_naming_the_field_without_a_traceback(
    clean_env, tmp_path: Path, url: str
) -> None:
    status, stderr = _start(["--sse-url", url], clean_env, tmp_path)
    assert status == 2, stderr
    assert "url (from flag --sse-url)" in stderr and "Traceback" not in stderr


def test_print_config_says_which_settings_every_profile_of_an_aggregate_gets(
    clean_env, tmp_path: Path
) -> None:
    config = tmp_path / "two.yaml"
    config.write_text(f"profiles:\n  a:\n    url: {LOOPBACK}\n  b:\n    url: {LOOPBACK}\n")
    env = {**clean_env, "ST_PROXY_ENV_PREFIXES": "TOOLENV_"}
    args = ["-c", str(config), "-p", "a,b", "--header", "X-G: global-1234", "--print-config"]
    result = run_module(args, env, tmp_path)
    assert result.returncode == 0, result.stderr
    shared = [line for line in result.stdout.splitlines() if "applies to every selected profile" in line]
    assert len(shared) == 4  # X-G and env_prefixes, under a and under b
    assert "global-1234" not in result.stdout
