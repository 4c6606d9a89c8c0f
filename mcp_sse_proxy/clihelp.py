"""How the command line explains itself: --help groups and texts, and one-line usage errors.

The parser itself is built in `cli.build_parser`; this module holds what people read: the short usage line,
the examples, which group each setting's flag appears in, and argparse's errors reworded into one line with
a suggestion for a misspelt option.
"""

from __future__ import annotations

import functools
import os
import sys
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    import argparse

PROG = "mcp-sse-proxy"
#: Exit status of a usage error (as `cli.EXIT_CONFIG`).
EXIT_USAGE = 2

DESCRIPTION = (
    "A stdio MCP server that relays every message to a remote MCP server over HTTP (legacy HTTP+SSE or\n"
    "Streamable HTTP, detected automatically), for clients that only launch local stdio servers.\n"
    "Settings come from flags, ST_PROXY_* environment variables and YAML profiles, in that order."
)
USAGE = "%(prog)s (--sse-url URL | --profile NAME) [OPTIONS]"
EPILOG = """examples:
  # one server
  mcp-sse-proxy --sse-url https://mcp.example.com/mcp --header 'Authorization: Bearer ${TOKEN}'
  # everything from the environment (as a desktop client's "env" block would give it)
  ST_PROXY_SSE_URL=http://127.0.0.1:8000/sse mcp-sse-proxy
  # two profiles from ~/.config/mcp-sse-proxy/*.yaml behind one server (tools appear as work__x, notes__y)
  mcp-sse-proxy --profile work,notes
  # try the connection before adding it to a client
  mcp-sse-proxy --profile work --check

Every flag has an ST_PROXY_* variable and a YAML key; the man page (man mcp-sse-proxy) and the README list
them all. Exit status: 0 success, 1 failure while running, 2 usage or configuration error."""

#: Option groups of --help, in order; each setting is placed by `group_of`.
GROUPS = {
    "connection": "connection",
    "auth": "headers and auth",
    "tls": "TLS and proxy",
    "timeouts": "timeouts, limits and reconnect",
    "aggregation": "tools and aggregation (several profiles)",
    "logging": "logging (process-wide; from the first selected profile)",
}
_GROUP_OF = {
    "config": "connection",
    "profile": "connection",
    "url": "connection",
    "transport": "connection",
    "protocol": "connection",
    "headers": "auth",
    "header_file": "auth",
    "env_prefixes": "auth",
    "tls_verify": "tls",
    "ca_file": "tls",
    "client_cert": "tls",
    "client_key": "tls",
    "use_env_proxy": "tls",
    "ping_interval": "timeouts",
    "connect_timeout": "timeouts",
    "read_timeout": "timeouts",
    "request_timeout": "timeouts",
    "queue_timeout": "timeouts",
    "reconnect_attempts": "timeouts",
    "reconnect_initial_backoff": "timeouts",
    "reconnect_max_backoff": "timeouts",
    "max_message_size": "timeouts",
    "max_concurrency": "timeouts",
    "include_tools": "aggregation",
    "exclude_tools": "aggregation",
    "prefix": "aggregation",
    "lazy": "aggregation",
    "max_name_length": "aggregation",
    "aggregate_grace": "aggregation",
    "page_size": "aggregation",
}


def group_of(setting: Any) -> str:
    if setting.scope == "logging":
        return "logging"
    if setting.name in _GROUP_OF:
        return _GROUP_OF[setting.name]
    return "auth" if "auth" in setting.name or "login" in setting.name else "connection"


def help_text(setting: Any, *, full: bool) -> str:
    description = setting.description.rstrip(".")
    if not full:
        description = description.split(". ", 1)[0]
    parts = [description + "."]
    extra = []
    if full and setting.env_names:
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


def parser_class() -> type:
    import argparse

    class Parser(argparse.ArgumentParser):
        """An ArgumentParser whose errors are one line, with a suggestion for a misspelt option."""

        def error(self, message: str) -> NoReturn:
            self.exit(EXIT_USAGE, f"{self.prog}: {explained(message, self)}\n")

    return Parser


@functools.cache
def _columns() -> int:
    """The terminal's width as `shutil.get_terminal_size((100, 24))` tells it, without importing shutil
    (argparse builds a formatter for every `add_argument`, at every start; shutil costs ~5 ms to import)."""
    try:
        return int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        pass
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or 100  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        return 100


def formatter_class(*, unwrapped: bool = False) -> type:
    import argparse

    class Formatter(argparse.RawDescriptionHelpFormatter):
        """Wider help columns; a boolean's `--no-NAME` shown without a value."""

        #: The man page's text is wrapped by roff: argparse must not wrap it (it breaks paths at hyphens).
        unwrapped = False

        def __init__(self, prog: str) -> None:
            width = 100_000 if self.unwrapped else min(_columns(), 110) - 2
            super().__init__(prog, max_help_position=32, width=width)

        def _format_action_invocation(self, action: argparse.Action) -> str:
            if action.nargs == "?" and any(o.startswith("--no-") for o in action.option_strings):
                shown = [o if o.startswith("--no-") else f"{o} [BOOL]" for o in action.option_strings]
                return ", ".join(shown)
            return super()._format_action_invocation(action)

    Formatter.unwrapped = unwrapped
    return Formatter


def explained(message: str, parser: argparse.ArgumentParser) -> str:
    """argparse's error message, reworded: unknown options get the closest known one."""
    import difflib

    prefix = "unrecognized arguments: "
    if not message.startswith(prefix):
        return f"{message} (see {PROG} --help)"
    known = [option for action in parser._actions for option in action.option_strings]
    parts = []
    follows_unknown = False
    for token in message.removeprefix(prefix).split():
        name = token.split("=", 1)[0]
        if follows_unknown and not name.startswith("-"):
            follows_unknown = False
            continue  # most likely the unknown option's value
        follows_unknown = name.startswith("-") and "=" not in token
        if not name.startswith("-"):
            hint = "; a URL goes after --sse-url" if "://" in name else ""
            parts.append(f"unexpected argument {token!r}{hint}")
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else ""
        parts.append(f"unknown option {name}{hint}")
    return "; ".join(parts) + f" (see {PROG} --help)"
