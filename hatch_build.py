"""Wheel build hook: render the man page from the argparse parser and install it as share/man/man1.

The page is generated in a subprocess (`python -m mcp_sse_proxy.manpage`) from the source being built,
so the build never imports the package into hatchling's own process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

MAN_PAGE = "mcp-sse-proxy.1"


class ManPageBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        output = Path(self.root) / "build" / "man" / MAN_PAGE
        path = os.pathsep.join(filter(None, [self.root, os.environ.get("PYTHONPATH")]))
        env = {**os.environ, "PYTHONPATH": path}
        subprocess.run(
            [sys.executable, "-m", "mcp_sse_proxy.manpage", "--output", str(output)],
            check=True,
            cwd=self.root,
            env=env,
        )
        build_data["shared_data"][str(output)] = f"share/man/man1/{MAN_PAGE}"
