"""A scripted browser for the sign-in tests: `BROWSER="python tests/oauth/browser.py %s"`.

Appends one JSON line per open to `$OAUTH_TEST_BROWSER_LOG` (so tests count browser opens), then, unless
`$OAUTH_TEST_BROWSER_MODE` is `ignore` (a user who never approves), follows the authorization URL through
the authorization server's redirects to the proxy's loopback callback, as a browser would.
"""

from __future__ import annotations

import json
import os
import sys
import time

import httpx2


def main(url: str) -> int:
    log_path = os.environ.get("OAUTH_TEST_BROWSER_LOG")
    if log_path:
        with open(log_path, "a", encoding="utf-8") as log:
            log.write(json.dumps({"url": url, "pid": os.getppid(), "time": time.time()}) + "\n")
    if os.environ.get("OAUTH_TEST_BROWSER_MODE") == "ignore":
        return 0
    with httpx2.Client(follow_redirects=True, timeout=10.0) as client:
        response = client.get(url)
    if log_path:
        with open(log_path + ".done", "a", encoding="utf-8") as log:
            log.write(json.dumps({"status": response.status_code, "final": str(response.url)}) + "\n")
    return 0 if response.status_code == 200 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
