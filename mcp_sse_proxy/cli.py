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
from mcp_sse_proxy.clihelp import (
    DESCRIPTION,
    EPILOG,
    GROUPS,
    PROG,
    USAGE,
    formatter_class,
    group_of,
    help_text,
    parser_class,
)

if TYPE_CHECKING:
    import argparse

    from mcp_sse_proxy.config.sources import FlagValue

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2

#: Action switches that mean something only with an action: switch → (its action's dest, its flag).
_NEEDS_ACTION = {"json": ("check", "--check"), "env_only": ("print_client_config", "--print-client-config")}


def _record_flag_action() -> type:
    """The argparse Action recording flags (defined lazily: argparse is not imported for --version)."""
    import argparse

    class RecordFlag(argparse.Action):
        """Appends a FlagValue for every occurrence, so the loader sees argv order and the spelling used.

        A boolean's `--no-NAME` spelling records false and takes no value.
        """

        def __init__(
            self,
            option_strings: Sequence[str],
            dest: str,
            *,
            setting: str,
            **kwargs: Any,
        ) -> None:
            self.setting = setting
            super().__init__(option_strings, dest, **kwargs)

        def __call__(
            self,
            parser: argparse.ArgumentParser,
            namespace: argparse.Namespace,
            values: Any,
            option_string: str | None = None,
        ) -> None:
            from mcp_sse_proxy.config.sources import FlagValue

            raw = values
            if option_string is not None and option_string.startswith("--no-"):
                if values is not self.const:
                    parser.error(f"{option_string} takes no value (got {values!r})")
                raw = "false"
            recorded = [*getattr(namespace, self.dest, []), FlagValue(self.setting, raw, option_string or "")]
            setattr(namespace, self.dest, recorded)

    return RecordFlag


def build_parser(*, full: bool = False) -> argparse.ArgumentParser:
    """The argument parser, one option per schema setting (booleans also as `--no-NAME`).

    `--help` shows each setting's first sentence; `full` (the man page) keeps every detail.
    """
    import argparse

    from mcp_sse_proxy.config.schema import loader_options, settings

    record_flag = _record_flag_action()

    parser = parser_class()(
        prog=PROG,
        usage=USAGE,
        description=DESCRIPTION,
        epilog=None if full else EPILOG,  # the man page has its own EXAMPLES and EXIT STATUS
        allow_abbrev=False,
        formatter_class=formatter_class(unwrapped=full),
    )
    groups = {key: parser.add_argument_group(title) for key, title in GROUPS.items()}
    for setting in (*loader_options().values(), *settings().values()):
        if not setting.flags:
            continue
        group = groups[group_of(setting)]
        if setting.main_type == "boolean":
            group.add_argument(
                *setting.flags,
                f"--no-{setting.flags[0].removeprefix('--')}",
                action=record_flag,
                setting=setting.name,
                dest="flag_values",
                default=argparse.SUPPRESS,
                nargs="?",
                const="true",
                metavar="BOOL",
                help=help_text(setting, full=full),
            )
        else:
            group.add_argument(
                *setting.flags,
                action=record_flag,
                setting=setting.name,
                dest="flag_values",
                default=argparse.SUPPRESS,
                metavar=setting.metavar,
                help=help_text(setting, full=full),
            )
    actions = parser.add_argument_group("actions (instead of running the proxy)")
    actions.add_argument(
        "--print-config",
        action="store_true",
        help="Print the effective configuration of each selected profile as a profile file (YAML), with "
        "the source of every value and secrets masked, then exit.",
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
    actions.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    return parser


def parse_flags(argv: Sequence[str]) -> tuple[argparse.Namespace, list[FlagValue]]:
    """Parse argv → (namespace with the action switches, FlagValue list in argv order).

    Raises SystemExit on a usage error or --help/--version, as argparse does.
    """
    parser = build_parser()
    namespace = parser.parse_args(list(argv))
    for switch, (action, action_flag) in _NEEDS_ACTION.items():
        if getattr(namespace, switch) and not getattr(namespace, action):
            parser.error(f"--{switch.replace('_', '-')} works only with {action_flag}")
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
            if not catalog.profiles:
                sys.stderr.write(f"{PROG}: no profiles found in {config.searched_places(flags, environ)}\n")
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
    if namespace.print_client_config:
        return _client_config(effective, namespace.print_client_config, namespace.env_only, args)
    return _run(effective)


#: Most log text held back while --check runs (a check is short; this only bounds a pathological case).
HELD_LOG_LIMIT = 64 * 1024


def _check(effective: Any, as_json: bool) -> int:
    """Run --check with log lines held back and written after the report, so the two never interleave.

    Without an explicit --log-level only warnings and errors are kept: the report says the rest.
    """
    import dataclasses

    from mcp_sse_proxy.check import run_check
    from mcp_sse_proxy.logs import configure_logging

    settings = effective.logging
    if settings.sources.get("log_level", "default") == "default":
        settings = dataclasses.replace(settings, level="warning")
    held = _HeldText(HELD_LOG_LIMIT)
    configure_logging(settings, effective.secrets, stream=held)  # type: ignore[arg-type]
    try:
        return run_check(effective, as_json)
    finally:
        sys.stdout.flush()
        if held.text:
            sys.stderr.write(f"{PROG} --check: log lines written during the check:\n{held.text}")
            if held.dropped:
                sys.stderr.write(f"({held.dropped} more characters of log left out)\n")
            sys.stderr.flush()


class _HeldText:
    """A write-only text stream keeping the first `limit` characters (for a logging.StreamHandler)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.text = ""
        self.dropped = 0

    def write(self, text: str) -> int:
        room = self.limit - len(self.text)
        self.text += text[: max(room, 0)]
        self.dropped += max(len(text) - max(room, 0), 0)
        return len(text)

    def flush(self) -> None:
        pass


def _client_config(effective: Any, client: str, env_only: bool, argv: list[str]) -> int:
    from mcp_sse_proxy.clientconfig import (
        ClientConfigError,
        client_config,
        config_location,
        header_variables,
        placeholder,
    )

    try:
        text = client_config(effective, client, env_only, argv)
    except ClientConfigError as exc:
        sys.stderr.write(f"{PROG}: {exc}\n")
        return EXIT_CONFIG
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stderr.write(f"{config_location(client)}\n")
    if "***" in text:
        sys.stderr.write(
            "Replace each *** with the real secret, or keep secrets in a file named by --header-file so "
            "they stay out of the client's configuration.\n"
        )
    if not env_only:
        missing = [var for var in header_variables(effective) if placeholder(var) in text]
        if missing:
            names = ", ".join(missing)
            sys.stderr.write(
                f"The headers use ${{{missing[0]}}}{' and more' if len(missing) > 1 else ''}: set {names} "
                "in the entry's \"env\" to the real value, since clients start servers without your shell's "
                "environment.\n"
            )
    return EXIT_OK


def _run(effective: Any) -> int:
    import logging

    from mcp_sse_proxy.errors import ProxyError
    from mcp_sse_proxy.logs import configure_logging

    configure_logging(effective.logging, effective.secrets)
    logger = logging.getLogger("mcp_sse_proxy")
    if sys.stdin is not None and sys.stdin.isatty():
        sys.stderr.write(waiting_notice())
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


def waiting_notice() -> str:
    """What a person who started the proxy in a terminal reads: it waits for a client, not hanging."""
    return (
        f"{PROG}: waiting for an MCP client on stdin (JSON-RPC, one message per line); this command is "
        "meant to be started by an MCP client (see --print-client-config).\n"
        f"{PROG}: to try the connection to the server instead, run it again with --check; Ctrl-D or "
        "Ctrl-C quits.\n"
    )
