"""The `mcp-sse-proxy` command: an argparse parser derived from the profile schema, and `main`.

Every setting's flags, metavar and help come from `schemas/profile.schema.json`; each flag occurrence is
recorded as a `FlagValue` (setting, raw string, flag spelling) and handed to the config loader, which
owns coercion and precedence. Exit status: 0 success, 1 runtime failure, 2 usage or configuration error.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mcp_sse_proxy import __version__

if TYPE_CHECKING:
    import argparse

    from mcp_sse_proxy.config.sources import FlagValue

PROG = "mcp-sse-proxy"
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2

DESCRIPTION = (
    "A stdio MCP server that relays every message to a remote MCP server over HTTP: legacy HTTP+SSE or "
    "Streamable HTTP, detected automatically. Desktop clients that only speak stdio launch it as a local "
    "server. Settings come from command-line flags, ST_PROXY_* environment variables and YAML profiles, "
    "in that order of precedence, over built-in defaults."
)
EPILOG = (
    "Precedence: flags > ST_PROXY_* environment > profile YAML (a profile's own keys over those it "
    "extends) > defaults. Profiles are read from --config files, ST_PROXY_CONFIG files and *.yaml in the "
    "user config directory (~/.config/mcp-sse-proxy on Linux). stdout carries only JSON-RPC; logs go to "
    "stderr. Exit status: 0 success, 1 failure while running, 2 usage or configuration error."
)

_GROUP_TITLES = {
    "selection": "profiles and files",
    "profile": "upstream settings (per profile)",
    "logging": "logging (process-wide; from the first selected profile)",
}


def _record_flag_action() -> type:
    """The argparse Action recording flags (defined lazily: argparse is not imported for --version)."""
    import argparse

    class RecordFlag(argparse.Action):
        """Appends a FlagValue for every occurrence, so the loader sees argv order and the spelling used."""

        def __init__(
            self,
            option_strings: Sequence[str],
            dest: str,
            *,
            setting: str,
            fixed: str | None = None,
            **kwargs: Any,
        ) -> None:
            self.setting = setting
            self.fixed = fixed
            super().__init__(option_strings, dest, **kwargs)

        def __call__(
            self,
            parser: argparse.ArgumentParser,
            namespace: argparse.Namespace,
            values: Any,
            option_string: str | None = None,
        ) -> None:
            from mcp_sse_proxy.config.sources import FlagValue

            raw = self.fixed if self.fixed is not None else values
            recorded = [*getattr(namespace, self.dest, []), FlagValue(self.setting, raw, option_string or "")]
            setattr(namespace, self.dest, recorded)

    return RecordFlag


def _help(setting: Any) -> str:
    parts = [setting.description.rstrip(".") + "."]
    extra = []
    if setting.env_names:
        extra.append("env: " + ", ".join(setting.env_names))
    if setting.default not in (None, [], {}) and setting.scope != "selection":
        extra.append(f"default: {_default_text(setting.default)}")
    if extra:
        parts.append("[" + "; ".join(extra) + "]")
    return " ".join(parts).replace("%", "%%")


def _default_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, one option per schema setting (plus `--no-NAME` for booleans)."""
    import argparse

    from mcp_sse_proxy.config.schema import loader_options, settings

    record_flag = _record_flag_action()

    parser = argparse.ArgumentParser(prog=PROG, description=DESCRIPTION, epilog=EPILOG, allow_abbrev=False)
    groups = {scope: parser.add_argument_group(title) for scope, title in _GROUP_TITLES.items()}
    for setting in loader_options().values():
        groups["selection"].add_argument(
            *setting.flags,
            action=record_flag,
            setting=setting.name,
            dest="flag_values",
            default=argparse.SUPPRESS,
            metavar=setting.metavar,
            help=_help(setting),
        )
    for setting in settings().values():
        if not setting.flags:
            continue
        group = groups.get(setting.scope, groups["profile"])
        if setting.main_type == "boolean":
            group.add_argument(
                *setting.flags,
                action=record_flag,
                setting=setting.name,
                dest="flag_values",
                default=argparse.SUPPRESS,
                nargs="?",
                const="true",
                metavar="BOOL",
                help=_help(setting),
            )
            group.add_argument(
                f"--no-{setting.flags[0].removeprefix('--')}",
                action=record_flag,
                setting=setting.name,
                fixed="false",
                nargs=0,
                dest="flag_values",
                default=argparse.SUPPRESS,
                help=f"Same as {setting.flags[0]}=false.",
            )
        else:
            group.add_argument(
                *setting.flags,
                action=record_flag,
                setting=setting.name,
                dest="flag_values",
                default=argparse.SUPPRESS,
                metavar=setting.metavar,
                help=_help(setting),
            )
    actions = parser.add_argument_group("actions (instead of running the proxy)")
    actions.add_argument(
        "--print-config",
        action="store_true",
        help="Print the effective configuration of each selected profile as YAML, with the "
        "source of every value and secrets masked, then exit.",
    )
    actions.add_argument(
        "--list-profiles",
        action="store_true",
        help="List the profiles found and the file and line defining each, then exit.",
    )
    actions.add_argument(
        "--check",
        action="store_true",
        help="Check every selected profile (DNS, TCP, TLS, transport and era detection, handshake, "
        "lists, ping latency) and print a report; exit 0 if all work, 1 otherwise.",
    )
    actions.add_argument(
        "--json", action="store_true", help="With --check: print the report as one JSON document."
    )
    actions.add_argument(
        "--print-client-config",
        metavar="CLIENT",
        choices=("claude-desktop", "cursor", "vscode", "windsurf", "claude-code", "generic"),
        help="Print the entry to paste into CLIENT's MCP configuration for the current selection "
        "(claude-desktop, cursor, vscode, windsurf, claude-code, generic); the file's location goes to stderr.",
    )
    actions.add_argument(
        "--env-only",
        action="store_true",
        help="With --print-client-config: describe the profile with ST_PROXY_* variables only, no args.",
    )
    for flag, text in _AUTH_ACTIONS.items():
        actions.add_argument(flag, dest="auth_action", action="store_const", const=flag[2:], help=text)
    actions.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    return parser


def parse_flags(argv: Sequence[str]) -> tuple[argparse.Namespace, list[FlagValue]]:
    """Parse argv → (namespace with the action switches, FlagValue list in argv order).

    Raises SystemExit on a usage error or --help/--version, as argparse does.
    """
    namespace = build_parser().parse_args(list(argv))
    return namespace, list(getattr(namespace, "flag_values", []))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command with `argv` (default: sys.argv[1:]); returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--version"]:  # the common probe, answered without building the parser
        sys.stdout.write(f"{PROG} {__version__}\n")
        return EXIT_OK
    try:
        namespace, flags = parse_flags(args)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_CONFIG

    from mcp_sse_proxy import config

    environ = dict(os.environ)
    try:
        if namespace.list_profiles:
            from mcp_sse_proxy.config.report import render_profile_list

            catalog = config.build_catalog(config.read_documents(config.find_config_files(flags, environ)))
            sys.stdout.write(render_profile_list(catalog))
            return EXIT_OK
        effective = config.load_config_from_system(flags, environ)
    except config.ConfigError as exc:
        sys.stderr.write(f"{PROG}: configuration error:\n")
        sys.stderr.writelines(f"  {line}\n" for problem in exc.problems for line in problem.splitlines())
        return EXIT_CONFIG
    if namespace.print_config:
        from mcp_sse_proxy.config.report import render_config

        sys.stdout.write(render_config(effective, version=__version__))
        return EXIT_OK
    if namespace.check:
        return _check(effective, namespace.json)
    if namespace.auth_action:
        return _auth_action(effective, namespace.auth_action)
    if namespace.print_client_config:
        return _client_config(effective, namespace.print_client_config, namespace.env_only, args)
    return _run(effective)


def _check(effective: Any, as_json: bool) -> int:
    from mcp_sse_proxy.doctor import run_check
    from mcp_sse_proxy.logs import configure_logging

    configure_logging(effective.logging, effective.secrets)
    return run_check(effective, as_json)


_AUTH_ACTIONS = {
    "--login": "Sign in to each selected profile's server (OAuth) from this terminal: prints the sign-in URL, "
    "opens the browser and waits for it, then stores the tokens for every later run.",
    "--logout": "Forget the stored sign-in (tokens and client registration) of each selected profile.",
    "--auth-status": "Show each selected profile's stored sign-in: issuer, scopes, expiry (never a token).",
}


def _auth_action(effective: Any, action: str) -> int:
    from mcp_sse_proxy.auth.commands import run_action
    from mcp_sse_proxy.logs import configure_logging

    configure_logging(effective.logging, effective.secrets)
    return run_action(action, effective, sys.stdout)


def _client_config(effective: Any, client: str, env_only: bool, argv: list[str]) -> int:
    from mcp_sse_proxy.clientconfig import ClientConfigError, client_config, config_location

    try:
        text = client_config(effective, client, env_only, argv)
    except ClientConfigError as exc:
        sys.stderr.write(f"{PROG}: {exc}\n")
        return EXIT_CONFIG
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stderr.write(f"Paste it into {config_location(client)}\n")
    if "***" in text:
        sys.stderr.write("Replace each *** with the real secret (or keep secrets in a header file).\n")
    return EXIT_OK


def _run(effective: Any) -> int:
    import logging

    from mcp_sse_proxy.errors import ProxyError
    from mcp_sse_proxy.logs import configure_logging

    configure_logging(effective.logging, effective.secrets)
    logger = logging.getLogger("mcp_sse_proxy")
    from mcp_sse_proxy.app import run  # the relay and httpx2 load only on this path

    try:
        return run(effective)
    except KeyboardInterrupt:
        return 130
    except ProxyError as exc:
        logger.error("%s", exc)
        return EXIT_FAILURE
    except Exception:  # the outermost boundary: report anything unexpected through the redacting log
        logger.exception("unexpected error")
        return EXIT_FAILURE
