"""Opening the sign-in page in the user's browser without touching the proxy's stdin or stdout.

`webbrowser` runs `$BROWSER` and `xdg-open` with the proxy's own stdin and stdout inherited; stdout is
the JSON-RPC channel and browsers print to it ("Opening in existing browser session."). So `$BROWSER` and
the freedesktop openers are started here with every standard stream on /dev/null, the way `webbrowser`
would choose them (`$BROWSER` entries split on os.pathsep, `%s` replaced by the URL); macOS and Windows,
whose openers do not inherit the streams, go through `webbrowser`.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import subprocess
import sys

log = logging.getLogger("mcp_sse_proxy.auth")


def open_browser(url: str) -> bool:
    """Start a browser on `url`; whether something was started (never raises)."""
    try:
        for command in _candidates(url):
            if _spawn(command):
                return True
        if sys.platform in ("darwin", "win32"):
            import webbrowser

            return webbrowser.open(url)
    except Exception as exc:  # a broken browser set-up must not fail the sign-in: the URL is shown too
        log.warning("could not open a browser: %s", exc)
    return False


def browser_available() -> bool:
    """Whether `open_browser` has anything to start here ($BROWSER, a desktop session, macOS, Windows)."""
    return sys.platform in ("darwin", "win32") or bool(_candidates("about:blank"))


def _candidates(url: str) -> list[list[str]]:
    commands = []
    for entry in os.environ.get("BROWSER", "").split(os.pathsep):
        if not entry.strip():
            continue
        words = shlex.split(entry)
        if not words:
            continue
        if any("%s" in word for word in words):
            commands.append([word.replace("%s", url) for word in words])
        else:
            commands.append([*words, url])
    if sys.platform not in ("darwin", "win32") and (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        for opener in ("xdg-open", "gio"):
            path = shutil.which(opener)
            if path:
                commands.append([path, "open", url] if opener == "gio" else [path, url])
    return commands


def _spawn(command: list[str]) -> bool:
    try:
        subprocess.Popen(  # noqa: S603 - the user's own browser command
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )
    except OSError as exc:
        log.debug("browser command %s failed: %s", command[0], exc)
        return False
    return True
