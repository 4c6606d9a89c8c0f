"""Fixtures for every test directory: the anyio backend, a HOME and XDG directories of each test's own, and
the one way to start peer processes (`tests/peers.py`); a test that starts a process is marked `integration`.

No test reads the developer's own profiles (`~/.config/mcp-sse-proxy/`) or writes the real user cache, log
or data directories: every process a test starts inherits these variables from `os.environ`.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.peers import PeerProcesses

_ISOLATED = ("HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME")


def _point_home_at(root: Path, setenv) -> None:
    for name in _ISOLATED:
        path = root / name.lower()
        path.mkdir(parents=True, exist_ok=True)
        setenv(name, str(path))


@pytest.fixture(scope="session", autouse=True)
def _session_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """For servers started by module- and session-scoped fixtures, before any test's own HOME exists."""
    saved = {name: os.environ.get(name) for name in _ISOLATED}
    _point_home_at(tmp_path_factory.mktemp("session-home"), os.environ.__setitem__)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(autouse=True)
def _own_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test: a fresh HOME and XDG directories, restored afterwards."""
    _point_home_at(tmp_path_factory.mktemp("home"), monkeypatch.setenv)


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


def _peers() -> Iterator[PeerProcesses]:
    peers = PeerProcesses()
    try:
        yield peers
    finally:
        peers.close()


@pytest.fixture
def peer_processes() -> Iterator[PeerProcesses]:
    """`peer_processes.start(module, *args, path=..., scheme=...)` → a running peer, stopped after the test."""
    yield from _peers()


@pytest.fixture(scope="module")
def module_peer_processes() -> Iterator[PeerProcesses]:
    yield from _peers()


@pytest.fixture(scope="session")
def session_peer_processes() -> Iterator[PeerProcesses]:
    yield from _peers()


#: What the source of a test, or of a fixture it uses, says when it starts a process.
_STARTS_PROCESS = (
    "subprocess.",
    "sys.executable",
    "open_process(",
    "running_server(",
    "run_module(",
    "spawn(",
    "Peer(",
    "tests.peers",
)
_PEER_FIXTURES = frozenset({"peer_processes", "module_peer_processes", "session_peer_processes"})


@functools.cache
def _starts_process(function: object) -> bool:
    try:
        source = inspect.getsource(function)  # type: ignore[arg-type]
    except (OSError, TypeError):
        return False
    return any(token in source for token in _STARTS_PROCESS)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `integration` every test that starts a process: all of tests/integration, and any test whose
    own code or one of whose fixtures (at any depth) spawns one."""
    for item in items:
        if "tests/integration/" in item.nodeid or _uses_process(item):
            item.add_marker(pytest.mark.integration)


def _uses_process(item: pytest.Item) -> bool:
    if _PEER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
        return True
    if _starts_process(getattr(item, "function", None)):
        return True
    info = getattr(item, "_fixtureinfo", None)
    for definitions in info.name2fixturedefs.values() if info is not None else ():
        if any(_starts_process(definition.func) for definition in definitions):
            return True
    return False
