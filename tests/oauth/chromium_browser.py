"""Headless Chromium as the sign-in browser: `BROWSER="python tests/oauth/chromium_browser.py %s"`.

Loads the URL in a throw-away profile and exits once the page it ends on (the loopback callback's) has loaded
(`--dump-dom`); the final page goes to stderr, never stdout. Appends one JSON line per open to
`$OAUTH_TEST_BROWSER_LOG` when set, as tests/oauth/browser.py does. `CHROMIUM` overrides the binary.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run")
TIMEOUT = 60.0


def chromium_path() -> str | None:
    """The Chromium binary on this machine, or None."""
    return os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def load(url: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Load `url` in headless Chromium, following redirects and scripts; the final DOM is the result's stdout."""
    binary = chromium_path()
    if binary is None:
        raise FileNotFoundError("no chromium on PATH (set CHROMIUM)")
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        argv = [binary, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", url]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def main(url: str) -> int:
    log_path = os.environ.get("OAUTH_TEST_BROWSER_LOG")
    if log_path:
        with open(log_path, "a", encoding="utf-8") as log:
            log.write(
                json.dumps({"url": url, "pid": os.getppid(), "time": time.time(), "browser": "chromium"})
                + "\n"
            )
    result = load(url)
    sys.stderr.write(result.stdout[-2000:])
    return result.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
