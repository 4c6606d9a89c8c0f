"""The token store (file backend), the cross-process lock and the loopback callback, without servers."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import anyio
import httpx2
import pytest

from mcp_sse_proxy.auth.callback import CallbackServer, PortsInUse
from mcp_sse_proxy.auth.lock import FileLock
from mcp_sse_proxy.auth.record import TokenRecord
from mcp_sse_proxy.auth.store import TokenStore
from tests.waiting import eventually_sync

REPO_ROOT = Path(__file__).resolve().parents[3]


def _record(key: str = "k1") -> TokenRecord:
    return TokenRecord(key, "http://h/mcp", issuer="http://as", access_token="at-1", refresh_token="rt-1")


def test_the_file_store_is_private_and_round_trips(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "oauth", preference="file")
    assert store.load("k1") is None and store.summary("k1") is None
    record = _record()
    assert store.save(record) == "file"
    assert store.load("k1") == record
    path = tmp_path / "oauth" / "k1.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [s["key"] for s in store.summaries()] == ["k1"]
    assert "at-1" not in json.dumps(store.summary("k1"))
    assert store.delete("k1") and not store.delete("k1")
    assert list(tmp_path.joinpath("oauth").iterdir()) == []


def test_a_damaged_file_reads_as_nothing_stored(tmp_path: Path) -> None:
    store = TokenStore(tmp_path, preference="file")
    (tmp_path / "k1.json").write_text("{not json")
    assert store.load("k1") is None


def test_without_a_real_keyring_auto_falls_back_to_the_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    store = TokenStore(tmp_path, preference="auto")
    assert store.save(_record()) == "file"


def test_checking_for_a_stored_token_does_not_import_keyring(tmp_path: Path) -> None:
    """The fast path: no record, or a record in the file backend, never costs the keyring import."""
    TokenStore(tmp_path, preference="file").save(_record())
    code = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from mcp_sse_proxy.auth.store import TokenStore
        store = TokenStore(Path({str(tmp_path)!r}))
        assert store.load("k1") is not None and store.load("absent") is None
        print("keyring" in sys.modules, "mcp" in sys.modules)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["False", "False"]


def test_the_lock_excludes_another_process_and_is_released_when_it_dies(tmp_path: Path) -> None:
    path = tmp_path / "k.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, pathlib; from mcp_sse_proxy.auth.lock import FileLock; "
            f"l = FileLock(pathlib.Path({str(path)!r})); assert l.acquire(5); print('held', flush=True); "
            "sys.stdin.read()",
        ],
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        lock = FileLock(path)
        assert not lock.acquire(0.2)
        holder.kill()
        holder.wait(5)
        assert lock.acquire(5)
        lock.release()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(5)


def test_an_abandoned_wait_does_not_keep_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "k.lock"
    first = FileLock(path)
    assert first.acquire(1)
    waiter = FileLock(path)
    assert not waiter.acquire(0.1)  # gives up; its helper thread still waits
    first.release()
    third = FileLock(path)
    assert third.acquire(5), "the abandoned waiter took the lock and kept it"
    third.release()


@pytest.mark.anyio
async def test_the_callback_falls_back_to_the_next_port_and_hands_over_the_code() -> None:
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    taken = busy.getsockname()[1]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    try:
        server = await CallbackServer.bind([taken, free])
        assert server.port == free
        async with anyio.create_task_group() as tg:
            await server.serve(tg)
            async with httpx2.AsyncClient() as client:
                missing = await client.get(f"http://127.0.0.1:{free}/favicon.ico")
                assert missing.status_code == 404
                page = await client.get(
                    f"http://127.0.0.1:{free}/callback?code=c1&state=s1&iss=http%3A%2F%2Fas"
                )
                assert page.status_code == 200 and "signed in" in page.text
            with anyio.fail_after(5):
                result = await server.result()
            tg.cancel_scope.cancel()
        await server.aclose()
        assert (result.code, result.state, result.iss, result.error) == ("c1", "s1", "http://as", None)
    finally:
        busy.close()


@pytest.mark.anyio
async def test_every_callback_port_in_use_is_an_error_not_a_crash() -> None:
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        with pytest.raises(PortsInUse) as caught:
            await CallbackServer.bind([busy.getsockname()[1]])
        assert caught.value.ports == [busy.getsockname()[1]]
    finally:
        busy.close()


def test_the_browser_gets_no_stdin_or_stdout(tmp_path: Path, monkeypatch) -> None:
    """$BROWSER programs must not read the client's JSON-RPC or write into it."""
    from mcp_sse_proxy.auth.browser import open_browser

    marker = tmp_path / "opened"
    script = tmp_path / "browser.py"
    script.write_text(
        "import sys, os\n"
        f"open({str(marker)!r}, 'w').write(sys.argv[1] + ' ' + str(os.isatty(1)) + ' ' + sys.stdin.read())\n"
        "print('Opening in existing browser session.')\n"
    )
    monkeypatch.setenv("BROWSER", f"{sys.executable} {script} %s")
    assert open_browser("http://as/authorize?x=1")
    eventually_sync(lambda: marker.exists() and marker.read_text(), what="the browser wrote its marker")
    assert marker.read_text() == "http://as/authorize?x=1 False "
    assert os.environ["BROWSER"]


def test_with_nothing_stored_requests_do_not_read_the_store_until_it_changes(tmp_path: Path) -> None:
    """`OAuthAuth.current()` runs for every request of a profile that may sign in: with no record it
    looks at the store's directory, and reads a record file again only once the directory changed."""
    from mcp_sse_proxy.auth import store as store_module
    from mcp_sse_proxy.auth.bearer import OAuthAuth
    from mcp_sse_proxy.config.model import Profile

    directory = tmp_path / "oauth"
    directory.mkdir()
    store = TokenStore(directory, preference="file")
    auth = OAuthAuth(Profile(name="p", url="http://h/mcp"), interactive=False, store=store)
    reads: list[str] = []
    real_read = store._read_entry

    def counting_read(key: str) -> dict[str, object] | None:
        reads.append(key)
        return real_read(key)

    store._read_entry = counting_read  # type: ignore[method-assign]
    old = (store_module.time.time_ns() - 10 * store_module.RACY_NS) // 1_000_000_000
    os.utime(directory, (old, old))
    assert auth.current() is None
    first = len(reads)
    for _ in range(50):
        assert auth.current() is None
    assert len(reads) == first  # the unchanged directory was enough

    record = TokenRecord(auth.key, "http://h/mcp", issuer="http://as", access_token="at-2")
    store.save(record)  # the directory changed (and is "racy": read every time until it settles)
    assert auth.current() == record


def test_a_recently_changed_store_directory_has_no_version(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "oauth", preference="file")
    assert store.version() == (0, 0)  # no directory (yet): a version of its own
    store.save(_record())
    assert store.version() is None  # changed just now: coarse file times cannot tell the next change
    os.utime(tmp_path / "oauth", (1_000_000, 1_000_000))
    assert store.version() is not None


def test_with_no_store_directory_requests_do_not_read_the_store(tmp_path: Path) -> None:
    from mcp_sse_proxy.auth.bearer import OAuthAuth
    from mcp_sse_proxy.config.model import Profile

    store = TokenStore(tmp_path / "oauth", preference="file")
    auth = OAuthAuth(Profile(name="p", url="http://h/mcp"), interactive=False, store=store)
    reads: list[str] = []
    real_read = store._read_entry
    store._read_entry = lambda key: reads.append(key) or real_read(key)  # type: ignore[method-assign]
    for _ in range(20):
        assert auth.current() is None
    assert len(reads) == 1
    record = TokenRecord(auth.key, "http://h/mcp", issuer="http://as", access_token="at-3")
    store.save(record)
    assert auth.current() == record
