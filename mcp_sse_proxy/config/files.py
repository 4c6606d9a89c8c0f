"""Finding and reading the configuration files: the I/O around the pure `load_config`.

The search order is `--config` files, then `ST_PROXY_CONFIG` files, then `*.yaml`/`*.yml` in the user config
directory; `load_config_from_system` reads them (and header files) from disk.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from mcp_sse_proxy.config.errors import ConfigError
from mcp_sse_proxy.config.merge import expand_home
from mcp_sse_proxy.config.model import AppConfig
from mcp_sse_proxy.config.sources import Document, FlagValue, read_environment, read_flags

APP_NAME = "mcp-sse-proxy"


def selected_config_paths(flags: Sequence[FlagValue], environ: Mapping[str, str]) -> tuple[str, ...]:
    """Files named by `--config` (in order), then by `ST_PROXY_CONFIG`. Pure."""
    _, _, flag_paths, _ = read_flags(flags)
    env_paths = read_environment({k: v for k, v in environ.items() if k == "ST_PROXY_CONFIG"}).config_paths
    return (*flag_paths, *env_paths)


def user_config_dir() -> Path:
    """`$XDG_CONFIG_HOME/mcp-sse-proxy` on Linux, the platform's equivalent elsewhere."""
    from platformdirs import user_config_path

    return user_config_path(APP_NAME, appauthor=False)


def find_config_files(flags: Sequence[FlagValue], environ: Mapping[str, str]) -> list[Path]:
    """The search order: `--config` files, `ST_PROXY_CONFIG` files, then `*.yaml`/`*.yml` in the user
    config directory (sorted by name). Named files must exist; the directory may not."""
    named = [Path(expand_home(p, environ)) for p in selected_config_paths(flags, environ)]
    directory = user_config_dir()
    found = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]) if directory.is_dir() else []
    seen: set[Path] = set()
    ordered = []
    for path in [*named, *found]:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            ordered.append(path)
    return ordered


def searched_places(flags: Sequence[FlagValue], environ: Mapping[str, str]) -> str:
    """Where `find_config_files` looks, in words: the named files, then the user config directory."""
    named = [expand_home(p, environ) for p in selected_config_paths(flags, environ)]
    places = [*named, f"*.yaml or *.yml in {user_config_dir()}"]
    return ", ".join(places[:-1]) + f" and {places[-1]}" if len(places) > 1 else places[0]


def read_documents(paths: Iterable[Path]) -> list[Document]:
    """Read each file; an unreadable one raises ConfigError naming it."""
    documents = []
    problems = []
    for path in paths:
        try:
            documents.append(Document(str(path), path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            problems.append(f"{path}: cannot read configuration file: {reason}")
    if problems:
        raise ConfigError(problems)
    return documents


def load_config_from_system(flags: Sequence[FlagValue], environ: Mapping[str, str]) -> AppConfig:
    """`load_config` with the files found on disk and header files read from disk."""
    from mcp_sse_proxy.config import load_config
    from mcp_sse_proxy.config.memo import FileValidationMemo

    documents = read_documents(find_config_files(flags, environ))
    memo = FileValidationMemo.default()
    searched = searched_places(flags, environ)
    return load_config(flags, environ, documents, read_text=_read_text, memo=memo, searched=searched)


def _read_text(path: str) -> str:
    return Path(path).read_text(encoding="utf-8")
