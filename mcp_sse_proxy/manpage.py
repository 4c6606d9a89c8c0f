"""Reference documentation derived from the argument parser: the man page and the README options table.

`python -m mcp_sse_proxy.manpage [-o FILE]` writes `mcp-sse-proxy.1` (the wheel build runs it through
`hatch_build.py`); `--readme-table` prints the Markdown table of options and environment variables that
README.md embeds (a test keeps the two equal). Needs argparse-manpage only for the man page.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from mcp_sse_proxy import __version__
from mcp_sse_proxy.cli import PROG, build_parser

SHORT_DESCRIPTION = "stdio MCP server relaying to a remote MCP server over HTTP (SSE or Streamable HTTP)"


def _roff(text: str) -> str:
    return text.replace("\\", "\\\\").replace("-", "\\-")


def _environment_section() -> str:
    from mcp_sse_proxy.config.schema import HEADER_ENV_PREFIX, loader_options, settings

    entries = []
    for setting in (*loader_options().values(), *settings().values()):
        for env_name in setting.env_names:
            flag = setting.flags[0] if setting.flags else setting.name
            entries.append(
                f".TP\n.B {_roff(env_name)}\nSame as \\fB{_roff(flag)}\\fR. {_roff(setting.description)}"
            )
    entries.append(
        f".TP\n.B {_roff(HEADER_ENV_PREFIX)}<NAME>\nOne header: the name's underscores become "
        "dashes (\\fBST_PROXY_HEADER_X_API_KEY\\fR sets \\fBX\\-Api\\-Key\\fR)."
    )
    entries.append(
        ".TP\n.B HTTP_PROXY, HTTPS_PROXY, NO_PROXY\nUsed for upstream connections unless "
        "\\fB\\-\\-no\\-use\\-env\\-proxy\\fR is given."
    )
    intro = (
        "Every setting can also be given as an environment variable; flags win over the environment, "
        "which wins over profile files. Booleans accept true/1/yes/on and false/0/no/off in any case; "
        "lists are comma\\-separated; an empty variable counts as unset."
    )
    return intro + "\n" + "\n".join(entries)


_FILES = r"""
.TP
.B \%~/.config/mcp\-sse\-proxy/*.yaml
Profiles in the user configuration directory ($XDG_CONFIG_HOME on Linux; the platform's equivalent on
macOS and Windows). A file holds one profile, named after the file, or a \fBprofiles:\fR mapping of names
to settings. Files named by \fB\-\-config\fR and \fBST_PROXY_CONFIG\fR are read first; the first
definition of a name wins.
.TP
.B \%~/.local/state/mcp\-sse\-proxy/log/mcp\-sse\-proxy\-debug.log
The debug log written with \fB\-\-debug\-enabled\fR (the platform's user log directory), appended,
created with mode 0600 and rotated by size.
"""

_EXIT_STATUS = r"""
.TP
.B 0
Success.
.TP
.B 1
The proxy failed while running.
.TP
.B 2
Usage or configuration error: the message names the profile, the setting, the source of the value and
what was expected.
"""

_EXAMPLES = r"""
One server, a secret header taken from the environment:
.PP
.nf
.RS
mcp\-sse\-proxy \-\-sse\-url https://mcp.example.com/mcp \-\-header \(aqAuthorization: Bearer ${TOKEN}\(aq
.RE
.fi
.PP
Everything from the environment, as a desktop client's \fBenv\fR block gives it:
.PP
.nf
.RS
ST_PROXY_SSE_URL=http://127.0.0.1:8000/sse mcp\-sse\-proxy
.RE
.fi
.PP
Two profiles from \%~/.config/mcp\-sse\-proxy/*.yaml behind one server (tools appear as work__x, notes__y):
.PP
.nf
.RS
mcp\-sse\-proxy \-\-profile work,notes
.RE
.fi
.PP
Try the connection before adding it to a client, and see what the profile resolves to:
.PP
.nf
.RS
mcp\-sse\-proxy \-\-profile work \-\-check
mcp\-sse\-proxy \-\-profile work \-\-print\-config
.RE
.fi
"""


def render_manpage(parser: argparse.ArgumentParser | None = None) -> str:
    """The roff source of mcp-sse-proxy(1)."""
    from argparse_manpage.manpage import Manpage

    page = Manpage(
        parser or build_parser(full=True),
        _data={
            "project_name": PROG,
            "version": __version__,
            "description": SHORT_DESCRIPTION,
            "manual_title": "User Commands",
        },
    )
    page.add_section("environment", ">", _environment_section())
    page.add_section("files", ">", _FILES.strip())
    page.add_section("exit status", ">", _EXIT_STATUS.strip())
    page.add_section("examples", ">", _EXAMPLES.strip())
    return _safe_lines(str(page))


def _safe_lines(roff: str) -> str:
    """Text lines that roff would read as requests: a leading `'` is a control character, like `.`."""
    return "\n".join("\\&" + line if line.startswith("'") else line for line in roff.split("\n"))


def render_options_table() -> str:
    """The Markdown table of every setting: flags, environment variables, YAML key, default."""
    from mcp_sse_proxy.config.schema import loader_options, settings

    rows = ["| Flag | Environment | YAML key | Default | Meaning |", "| --- | --- | --- | --- | --- |"]
    for setting in (*loader_options().values(), *settings().values()):
        flags = ", ".join(f"`{flag}`" for flag in setting.flags) or "—"
        envs = ", ".join(f"`{name}`" for name in setting.env_names) or "—"
        key = f"`{setting.name}`" if setting.name in settings() else "—"
        default = "—" if setting.default in (None, [], {}) else f"`{_plain(setting.default)}`"
        meaning = setting.description.replace("|", "\\|")
        rows.append(f"| {flags} | {envs} | {key} | {default} | {meaning} |")
    return "\n".join(rows) + "\n"


def _plain(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mcp_sse_proxy.manpage", description=__doc__)
    parser.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    parser.add_argument("--readme-table", action="store_true", help="the README options table instead")
    args = parser.parse_args(argv)
    text = render_options_table() if args.readme_table else render_manpage()
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
