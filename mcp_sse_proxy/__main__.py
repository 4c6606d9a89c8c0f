"""`python -m mcp_sse_proxy`: the same as the `mcp-sse-proxy` command."""

import sys

from mcp_sse_proxy.cli import main

if __name__ == "__main__":
    sys.exit(main())
