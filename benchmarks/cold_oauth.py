"""Cold start with a stored OAuth token, against the `import httpx2` floor and a plain profile.

The upstream (`upstream.py --bearer TOKEN`) answers 401 with a Bearer challenge to any request without
the token. The proxy runs with the default `auth: auto` (an explicit OAuth setting would turn the validation memo
off, by design of `config/schema.memo_key`) and its own HOME/XDG directories, in which the 0600 file store (`mcp_sse_proxy/auth/store.py`) already holds a fresh token for that server: the
start must cost what a plain start costs, and must not import the `mcp` SDK (only a sign-in needs it).
Interleaved rounds (floor, plain, stored token), medians; then one `-X importtime` start of each kind
tells which packages the start imported.

    python benchmarks/cold_oauth.py [--runs 7] [--output benchmarks/RESULTS.md]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
TOKEN = "bench-stored-token-0123456789"
#: Packages whose import at start-up would mean the fast path was not taken (or a needless cost).
WATCHED = ("mcp", "keyring", "jsonschema", "yaml", "pydantic")
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "b", "version": "1"},
    },
}


def _upstream(python: str, *args: str) -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen(
        [python, str(HERE / "upstream.py"), "--port", "0", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith(b"READY "):
        proc.kill()
        raise RuntimeError("the upstream did not start")
    return proc, f"http://127.0.0.1:{int(line.split()[1])}/mcp"


def _home(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME"):
        path = root / name.lower()
        path.mkdir(parents=True, exist_ok=True)
        env[name] = str(path)
    return env


def _store_token(env: dict[str, str], url: str) -> None:
    """Save a fresh token for `url` in the file store under `env`'s data directory (in a child, so this
    process imports nothing of the proxy)."""
    code = f"""
from mcp_sse_proxy.auth.keys import canonical_resource, store_key
from mcp_sse_proxy.auth.record import TokenRecord
from mcp_sse_proxy.auth.store import TokenStore
import time
resource = canonical_resource({url!r})
record = TokenRecord(key=store_key(resource, None), resource=resource, access_token={TOKEN!r},
                     expires_at=time.time() + 3600)
assert TokenStore(preference="file").save(record) == "file"
"""
    subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, check=True)


def _start(
    argv: list[str], env: dict[str, str], stderr: int | None = subprocess.DEVNULL
) -> tuple[float, bytes]:
    """Seconds from spawn to the initialize answer (or to exit, for the floor), and that answer."""
    began = time.perf_counter()
    proc = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, env=env, cwd=REPO
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps(INITIALIZE).encode() + b"\n")
    proc.stdin.flush()
    answer = proc.stdout.readline()
    elapsed = time.perf_counter() - began
    proc.stdin.close()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return elapsed, answer


def _imports(argv: list[str], env: dict[str, str]) -> tuple[set[str], float]:
    """Top-level packages a start imported, and the summed self time of all imports (ms)."""
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [argv[0], "-X", "importtime", *argv[1:]],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            env=env,
            cwd=REPO,
        )
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps(INITIALIZE).encode() + b"\n")
        proc.stdin.flush()
        proc.stdout.readline()
        proc.stdin.close()
        proc.wait(10)
        log.seek(0)
        lines = log.read().decode(errors="replace").splitlines()
    packages: set[str] = set()
    total = 0
    for line in lines:
        if not line.startswith("import time:") or "|" not in line:
            continue
        fields = line.split("|")
        if not fields[0].split(":")[1].strip().isdigit():
            continue  # the header line
        total += int(fields[0].split(":")[1])
        packages.add(fields[2].strip().split(".")[0])
    return packages, total / 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--output", type=Path, help="append the table (markdown) to this file")
    args = parser.parse_args()
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="cold-oauth-") as tmp:
        env = _home(Path(tmp))
        env.pop("MCP_SSE_PROXY_CONFIG", None)
        plain_up, plain_url = _upstream(python)
        auth_up, auth_url = _upstream(python, "--bearer", TOKEN)
        try:
            _store_token(env, auth_url)
            targets = {
                "floor": [python, "-c", "import httpx2"],
                "plain": [
                    python,
                    "-m",
                    "mcp_sse_proxy",
                    "--sse-url",
                    plain_url,
                    "--transport",
                    "streamable-http",
                ],
                "stored token": [
                    python,
                    "-m",
                    "mcp_sse_proxy",
                    "--sse-url",
                    auth_url,
                    "--transport",
                    "streamable-http",
                ],
            }
            for argv in targets.values():  # warm the page cache and the validation memo
                _start(argv, env)
            times: dict[str, list[float]] = {name: [] for name in targets}
            for _ in range(args.runs):
                for name, argv in targets.items():
                    elapsed, answer = _start(argv, env)
                    if name != "floor" and b'"result"' not in answer:
                        raise RuntimeError(f"{name}: no initialize result: {answer[:200]!r}")
                    times[name].append(elapsed)
            imports = {name: _imports(argv, env) for name, argv in targets.items() if name != "floor"}
        finally:
            for proc in (plain_up, auth_up):
                assert proc.stdin is not None
                proc.stdin.close()  # the upstream ends when its stdin closes
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    floor = statistics.median(times["floor"]) * 1000
    rows = [
        "| start | median ms | ÷ floor | imports (self ms) | watched packages imported |",
        "|---|---|---|---|---|",
        f'| `python -c "import httpx2"` (floor) | {floor:.0f} | 1.00× | | |',
    ]
    for name in ("plain", "stored token"):
        median = statistics.median(times[name]) * 1000
        packages, total = imports[name]
        watched = ", ".join(sorted(p for p in WATCHED if p in packages)) or "none"
        rows.append(f"| {name} | {median:.0f} | {median / floor:.2f}× | {total:.0f} | {watched} |")
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    text = (
        f"### cold start with a stored OAuth token ({stamp}, {args.runs} interleaved runs)\n\n"
        + "\n".join(rows)
        + "\n\nTarget: ≤ 1.6× floor for both; `mcp` not imported when the stored token suffices.\n"
    )
    print(text)
    if args.output is not None:
        with args.output.open("a", encoding="utf-8") as out:
            out.write("\n" + text)
    return 1 if "mcp" in imports["stored token"][0] else 0


if __name__ == "__main__":
    sys.exit(main())
