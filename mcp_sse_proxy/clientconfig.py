"""`--print-client-config CLIENT`: the JSON entry that makes a desktop client or IDE launch this proxy.

The entry names the installed command by absolute path (desktop clients start servers with a minimal PATH),
or this interpreter with `-m mcp_sse_proxy` when no script is installed (never the PyPI package of the same
name: that is the earlier 0.1.4 script, another program). It either repeats the current selection as arguments
(`--profile work`), or, env-only, describes the one selected profile entirely in `ST_PROXY_*` variables.
No argument ever holds a space (some clients split arguments on spaces), so such values and every header
travel in `env`. Secret values appear as `***` unless `reveal_secrets` is set.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config.model import LOG_KEYS, AppConfig, Profile
from .config.schema import ENV_PREFIX, HEADER_ENV_PREFIX, Setting, loader_options, settings
from .redaction import MIN_SECRET_LENGTH, Redactor, mask_urls

COMMAND = "mcp-sse-proxy"
CLIENTS = ("claude-desktop", "cursor", "vscode", "windsurf", "claude-code", "generic")
#: Flags of actions rather than settings: dropped when the current argv is turned into the entry's args.
ACTION_FLAGS = {
    "--check": 0,
    "--json": 0,
    "--print-config": 0,
    "--list-profiles": 0,
    "--env-only": 0,
    "--print-client-config": 1,
}
_PATH_KINDS = ("path", "log-path")


class ClientConfigError(ValueError):
    """The selection cannot be expressed as a client entry; the message says what to change."""


@dataclass(frozen=True, slots=True)
class Launch:
    """How a client starts the proxy: the command, its arguments and extra environment variables."""

    command: str
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)


def client_config(
    config: AppConfig,
    client: str,
    env_only: bool,
    argv_profile_args: list[str],
    *,
    reveal_secrets: bool = False,
    environ: Mapping[str, str] | None = None,
) -> str:
    """The JSON document to paste into `client`'s configuration (see `config_location`).

    `argv_profile_args` are the command-line arguments that select and configure the profiles (without the
    action flags); with `env_only`, the one selected profile's effective settings go into `env` instead and
    `argv_profile_args` is ignored. `environ` (default `os.environ`) supplies the `ST_PROXY_*` variables of
    the current invocation, which the client would not otherwise have. Raises `ClientConfigError`.
    """
    if client not in CLIENTS:
        raise ClientConfigError(f"unknown client {client!r}; choose one of {', '.join(CLIENTS)}")
    environ = os.environ if environ is None else environ
    launch = launch_spec(config, env_only, argv_profile_args, environ=environ)
    if not reveal_secrets:
        launch = _masked(launch, _secrets(config))
    entry: dict[str, Any] = {"command": launch.command, "args": launch.args}
    if launch.env:
        entry["env"] = launch.env
    name = server_name(config)
    if client == "vscode":
        document: dict[str, Any] = {"servers": {name: {"type": "stdio", **entry}}}
    elif client in ("claude-code", "generic"):
        document = {"mcpServers": {name: {"type": "stdio", **entry}}}
    else:
        document = {"mcpServers": {name: entry}}
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def config_location(client: str, *, platform: str | None = None, home: Path | None = None) -> str:
    """Where `client` keeps its MCP server configuration on this platform, and what to do with the entry."""
    platform = platform or sys.platform
    home = home or Path.home()
    appdata = Path(os.environ.get("APPDATA") or home / "AppData" / "Roaming")
    if client == "claude-desktop":
        if platform == "darwin":
            path = home / "Library" / "Application Support" / "Claude" / "claude_desktop_config.json"
        elif platform == "win32":
            path = appdata / "Claude" / "claude_desktop_config.json"
        else:
            path = home / ".config" / "Claude" / "claude_desktop_config.json"
        return (
            f"Claude Desktop reads {path} (Settings > Developer > Edit Config): merge the entry into its "
            '"mcpServers" and restart Claude Desktop.'
        )
    if client == "cursor":
        return (
            f"Cursor reads {home / '.cursor' / 'mcp.json'} (all projects) or .cursor/mcp.json in a "
            'project: merge the entry into its "mcpServers".'
        )
    if client == "vscode":
        if platform == "darwin":
            user = home / "Library" / "Application Support" / "Code" / "User" / "mcp.json"
        elif platform == "win32":
            user = appdata / "Code" / "User" / "mcp.json"
        else:
            user = home / ".config" / "Code" / "User" / "mcp.json"
        return (
            f"VS Code reads .vscode/mcp.json in a workspace, or {user} for all workspaces (command "
            '"MCP: Open User Configuration"): merge the entry into its "servers".'
        )
    if client == "windsurf":
        return (
            f"Windsurf reads {home / '.codeium' / 'windsurf' / 'mcp_config.json'}: merge the entry into "
            'its "mcpServers" and refresh the MCP servers in Windsurf\'s settings.'
        )
    if client == "claude-code":
        return (
            'Claude Code reads .mcp.json at a project\'s root: merge the entry into its "mcpServers"; '
            "or add the server for all projects with: claude mcp add-json --scope user NAME 'ENTRY' "
            "(ENTRY: the object under the server's name)."
        )
    if client == "generic":
        return (
            'Most MCP clients take an "mcpServers" map of stdio servers: merge the entry into the '
            "client's configuration file (see its documentation for where that is)."
        )
    raise ClientConfigError(f"unknown client {client!r}; choose one of {', '.join(CLIENTS)}")


def server_name(config: AppConfig) -> str:
    """The key the entry goes under: the profile names, or the command for the unnamed default profile."""
    names = [profile.name for profile in config.profiles if profile.name != "default"]
    return "-".join(names) if names else COMMAND


def launch_spec(
    config: AppConfig, env_only: bool, argv_profile_args: Sequence[str], *, environ: Mapping[str, str]
) -> Launch:
    """The command, arguments and environment for the client entry, secrets not yet masked."""
    command, prefix = _command()
    if env_only:
        return Launch(command, prefix, _profile_env(config))
    args, env = _portable_args(argv_profile_args, environ)
    for variable in header_variables(config):
        env.setdefault(variable, placeholder(variable))  # a client starts servers without the user's env
    return Launch(command, [*prefix, *args], env)


def header_variables(config: AppConfig) -> list[str]:
    """The `${VAR}` names the selected profiles' headers use: the entry's env must set each one."""
    return list(dict.fromkeys(var for profile in config.profiles for var in profile.header_variables))


def placeholder(variable: str) -> str:
    """What the entry holds for a variable the user must fill in."""
    return f"<value of {variable}>"


# --------------------------------------------------------------------------------------------------------


def _command() -> tuple[str, list[str]]:
    """(command, leading args): the installed script by absolute path, else `python -m mcp_sse_proxy`."""
    found = shutil.which(COMMAND)
    if found is None:
        scripts = Path(sys.executable).parent
        for candidate in (scripts / COMMAND, scripts / f"{COMMAND}.exe"):
            if candidate.is_file() and os.access(candidate, os.X_OK):
                found = str(candidate)
                break
    if found is not None:
        return str(Path(found).absolute()), []
    return str(Path(sys.executable).absolute()), ["-m", "mcp_sse_proxy"]


def _env_name(setting: Setting) -> str:
    """The variable to write a setting to: `ST_PROXY_<NAME>` when the schema knows it, else its first name."""
    canonical = ENV_PREFIX + setting.name.upper()
    return canonical if canonical in setting.env_names else setting.env_names[0]


def _flag_table() -> tuple[dict[str, Setting], dict[str, Setting]]:
    """Every flag spelling → its setting, and every `--no-FLAG` → its boolean setting."""
    flags: dict[str, Setting] = {}
    negations: dict[str, Setting] = {}
    for setting in (*settings().values(), *loader_options().values()):
        for flag in setting.flags:
            flags[flag] = setting
        if setting.main_type == "boolean" and setting.flags:
            negations["--no-" + setting.flags[0].removeprefix("--")] = setting
    return flags, negations


def _absolute(path: str) -> str:
    return str(Path(os.path.expanduser(path)).absolute())


def _portable_args(tokens: Sequence[str], environ: Mapping[str, str]) -> tuple[list[str], dict[str, str]]:
    """The current arguments made safe for a client: absolute paths, no value with a space, headers in env.

    The `ST_PROXY_*` variables of this invocation are carried over too, so the client gets the same result.
    """
    env = {name: value for name, value in environ.items() if name.startswith(ENV_PREFIX) and value}
    if "ST_PROXY_CONFIG" in env:
        paths = env["ST_PROXY_CONFIG"].split(os.pathsep)
        env["ST_PROXY_CONFIG"] = os.pathsep.join(_absolute(path) for path in paths if path)
    flags, negations = _flag_table()
    args: list[str] = []
    moved_configs: list[str] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        index += 1
        name, has_equals, attached = token.partition("=") if token.startswith("--") else (token, "", "")
        if not token.startswith("--") and len(token) > 2 and token[:2] in flags:
            name, attached, has_equals = token[:2], token[2:], "="  # -pwork
        if name in ACTION_FLAGS:
            index += 0 if has_equals else ACTION_FLAGS[name]
            continue
        if name in negations:
            args.append(name)
            continue
        setting = flags.get(name)
        if setting is None:
            raise ClientConfigError(f"{token!r}: not a setting the client entry can carry")
        if has_equals:
            value: str | None = attached
        elif setting.main_type == "boolean":
            is_value = index < len(tokens) and not tokens[index].startswith("-")
            value = tokens[index] if is_value else None
            index += 1 if is_value else 0
        elif index < len(tokens):
            value = tokens[index]
            index += 1
        else:
            raise ClientConfigError(f"{name} needs a value")
        primary = setting.flags[0]
        if value is None:
            args.append(primary)
        elif setting.name == "headers":
            _header_to_env(value, env)
        else:
            if setting.kind in _PATH_KINDS or setting.name == "config":
                value = _absolute(value)
            if setting.name == "url" and _has_credentials(value):
                env[_env_name(setting)] = (
                    value  # process lists show args; a token in the URL stays out of them
                )
            elif not any(ch.isspace() for ch in value):
                args.extend([f"{primary}={value}"] if value.startswith("-") else [primary, value])
            elif setting.name == "config":
                moved_configs.append(value)
            elif setting.name == "profile":
                current = env.get(_env_name(setting))
                env[_env_name(setting)] = f"{current},{value}" if current else value
            else:
                env[_env_name(setting)] = value
    if moved_configs:
        earlier = env.get("ST_PROXY_CONFIG")
        env["ST_PROXY_CONFIG"] = os.pathsep.join([*moved_configs, *([earlier] if earlier else [])])
    return args, env


def _has_credentials(url: str) -> bool:
    """Whether a URL carries userinfo or a query, either of which may hold a token."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return True
    return bool(parts.query) or "@" in parts.netloc


def _header_to_env(line: str, env: dict[str, str]) -> None:
    """A `--header` value into env: its own `ST_PROXY_HEADER_<NAME>` if set, else `ST_PROXY_HEADERS`."""
    header, _, value = line.partition(":")
    own = HEADER_ENV_PREFIX + header.strip().upper().replace("-", "_")
    if own in env:
        env[own] = value.strip()
        return
    current = env.get("ST_PROXY_HEADERS")
    env["ST_PROXY_HEADERS"] = f"{current}\n{line.strip()}" if current else line.strip()


def _env_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value))
    if isinstance(value, Path):
        return _absolute(str(value))
    return str(value)


def _profile_env(config: AppConfig) -> dict[str, str]:
    """Every setting of the one selected profile that differs from its default, as `ST_PROXY_*` variables."""
    if len(config.profiles) != 1:
        raise ClientConfigError(
            "an env-only entry describes exactly one profile; select one with --profile, or drop --env-only "
            "to pass the profile selection as arguments"
        )
    profile = config.profiles[0]
    log_values = {key: getattr(config.logging, attribute) for key, attribute in LOG_KEYS.items()}
    env: dict[str, str] = {}
    for name, setting in settings().items():
        if not setting.env_names or setting.scope == "file":
            continue
        source = profile.sources.get(name) or config.logging.sources.get(name)
        if name != "url" and source in (None, "default"):
            continue
        value = log_values[name] if name in log_values else getattr(profile, name, None)
        if name == "headers":
            lines = _header_lines(profile)
            if lines:
                env[_env_name(setting)] = "\n".join(lines)
        elif value is not None and not _is_default(value, setting):
            env[_env_name(setting)] = _env_text(value)
    return env


def _is_default(value: Any, setting: Setting) -> bool:
    return setting.default is not None and _env_text(value) == _env_text(setting.default)


def _header_lines(profile: Profile) -> list[str]:
    """Header lines for `ST_PROXY_HEADERS`, leaving out those the profile's header_file provides."""
    from_file = profile.header_file is not None
    lines = []
    for header, value in profile.headers.items():
        source = profile.sources.get(f"headers.{header}", "")
        if from_file and source.startswith("header-file"):
            continue
        lines.append(f"{header}: {value}")
    return lines


def _secrets(config: AppConfig) -> set[str]:
    found = set(config.secrets)
    for profile in config.profiles:
        found.update(profile.headers.values())
    return {secret for secret in found if len(secret) >= MIN_SECRET_LENGTH}


def _masked(launch: Launch, secrets: set[str]) -> Launch:
    redactor = Redactor(secrets)

    def mask(text: str) -> str:
        return mask_urls(redactor.mask_values(text))

    return Launch(
        launch.command,
        [mask(arg) for arg in launch.args],
        {name: mask(value) for name, value in launch.env.items()},
    )
