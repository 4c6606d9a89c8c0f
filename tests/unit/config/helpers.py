"""Small builders shared by the config tests: flags, documents and a loader call with no I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mcp_sse_proxy.config import AppConfig, Document, FlagValue, load_config
from mcp_sse_proxy.config.schema import loader_options, settings

URL = "http://127.0.0.1:8000/sse"


def flag(name: str, raw: str, spelling: str | None = None) -> FlagValue:
    """A flag occurrence as the parser records it; the spelling defaults to the setting's primary flag."""
    setting = {**settings(), **loader_options()}[name]
    return FlagValue(name, raw, spelling or setting.flags[0])


def load(
    flags: Sequence[FlagValue] = (),
    environ: Mapping[str, str] | None = None,
    files: Mapping[str, str] | None = None,
    headers_files: Mapping[str, str] | None = None,
) -> AppConfig:
    """`load_config` over in-memory inputs; header files come from `headers_files` (path → text)."""
    documents = [Document(path, text) for path, text in (files or {}).items()]
    table = dict(headers_files or {})

    def read_text(path: str) -> str:
        if path not in table:
            raise FileNotFoundError(2, "No such file or directory", path)
        return table[path]

    return load_config(flags, environ or {}, documents, read_text=read_text)
