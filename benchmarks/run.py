"""Benchmark the proxy against a direct connection to the same upstream, in one interleaved run.

    python benchmarks/run.py            # full run; writes benchmarks/RESULTS.md
    python benchmarks/run.py --quick    # smoke run with tiny counts (< 30 s), writes nothing by default

A lean upstream (`upstream.py`, raw asyncio HTTP) serves both transports on 127.0.0.1. For each transport
the same workload goes to the proxy (a subprocess driven over stdio), directly to the upstream over httpx2,
and to every `--compare` command, one chunk each in turn, so noise from a shared machine falls on all of
them alike. Figures are medians (latency percentiles over all samples), and each is given as a ratio to
direct. See benchmarks/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import workload  # noqa: E402
from clients import Build, DirectSse, DirectStreamable, ProxyClient, Target, TargetFailed  # noqa: E402
from processes import Children, usage  # noqa: E402

REPO = HERE.parent
DEFAULT_PROXY = "{python} -m mcp_sse_proxy --sse-url {url} --transport {transport}"
#: The aggregate case: one proxy process serving `{profiles}` (p1,…,pN, all on the same upstream) from `{config}`.
DEFAULT_AGGREGATE = "{python} -m mcp_sse_proxy --config {config} --profile {profiles} --transport {transport}"
BARE = "{python} benchmarks/bare_relay.py {url} {transport}"
PHASES = ("cold", "latency", "throughput", "large", "memory", "aggregate")
#: name → (upstream path, the proxy's --transport value, direct client)
TRANSPORTS: dict[str, tuple[str, str, type[DirectSse] | type[DirectStreamable]]] = {
    "sse": ("/sse", "sse", DirectSse),
    "streamable-http": ("/mcp", "streamable-http", DirectStreamable),
    # Streamable HTTP whose server answers every request with a one-event SSE body instead of JSON.
    "streamable-http-sse": ("/mcp-sse", "streamable-http", DirectStreamable),
}
DIRECT = "direct"


@dataclass(frozen=True)
class Counts:
    cold: int
    warmup: int
    latency: int
    latency_rounds: int
    throughput: int
    throughput_rounds: int
    concurrency: int
    large: int
    large_size: int
    memory_first: int
    memory_total: int
    aggregate_cold: int
    aggregate_calls: int
    aggregate_rounds: int
    timeout: float


FULL = Counts(
    cold=7,
    warmup=200,
    latency=1000,
    latency_rounds=5,
    throughput=2000,
    throughput_rounds=3,
    concurrency=32,
    large=5,
    large_size=workload.LARGE_SIZE,
    memory_first=1000,
    memory_total=10000,
    aggregate_cold=3,
    aggregate_calls=1000,
    aggregate_rounds=3,
    timeout=1200,
)
QUICK = Counts(
    cold=2,
    warmup=10,
    latency=60,
    latency_rounds=2,
    throughput=200,
    throughput_rounds=1,
    concurrency=32,
    large=2,
    large_size=workload.LARGE_SIZE // 4,
    memory_first=100,
    memory_total=1000,
    aggregate_cold=1,
    aggregate_calls=100,
    aggregate_rounds=1,
    timeout=60,
)


@dataclass
class Figures:
    """What one target measured on one transport; absent keys were not measured."""

    samples: dict[str, list[float]] = field(default_factory=dict)
    values: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, key: str, value: float) -> None:
        self.samples.setdefault(key, []).append(value)

    def get(self, key: str) -> float | None:
        if key in self.values:
            return self.values[key]
        return statistics.median(self.samples[key]) if self.samples.get(key) else None


# ------------------------------------------------------------------------------------------------------
# The run


class Bench:
    def __init__(self, args: argparse.Namespace, counts: Counts, workdir: Path) -> None:
        self.args = args
        self.counts = counts
        self.workdir = workdir
        self.children = Children()
        self.proxies: dict[str, str] = {"proxy": args.proxy_cmd, **dict(args.compare)}
        if args.bare:
            self.proxies.setdefault("bare", BARE)
        self.python = args.python
        self.base_url = ""
        self.results: dict[str, dict[str, Figures]] = {}
        #: transport → {"direct" | "aggregate ×N": figures}
        self.aggregates: dict[str, dict[str, Figures]] = {}
        self.phases = set(args.phases)

    def log(self, text: str) -> None:
        if not self.args.silent:
            sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] {text}\n")

    async def run(self) -> None:
        try:
            await self._start_upstream()
            for transport in self.args.transports:
                self.results[transport] = {name: Figures() for name in [DIRECT, *self.proxies]}
                await self._transport(transport)
        finally:
            await self.children.stop_all()

    async def _start_upstream(self) -> None:
        proc = await self.children.spawn(
            [self.python, str(HERE / "upstream.py"), "--port", "0"], stderr=self.workdir / "upstream.log"
        )
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 15)
        if not line.startswith(b"READY "):
            raise RuntimeError(f"the upstream did not start; see {self.workdir / 'upstream.log'}")
        self.base_url = f"http://127.0.0.1:{int(line.split()[1])}"
        self.log(f"upstream at {self.base_url}")

    def _proxy_client(self, name: str, transport: str, tag: str) -> ProxyClient:
        path, flag, _ = TRANSPORTS[transport]
        template = self.proxies[name]
        command = template.format(url=self.base_url + path, transport=flag, python=shlex.quote(self.python))
        stderr = self.workdir / f"{name}-{transport}-{tag}.log"
        return ProxyClient(name, shlex.split(command), self.children, stderr, REPO)

    def _direct(self, transport: str) -> Target:
        path, _, cls = TRANSPORTS[transport]
        return cls(self.base_url + path)

    async def _transport(self, transport: str) -> None:
        figures = self.results[transport]
        if "cold" in self.phases:
            self.log(f"{transport}: cold start × {self.counts.cold}")
            await self._cold(transport, figures)
        if self.phases & {"latency", "throughput", "large"}:
            await self._session(transport, figures)
        if "memory" in self.phases:
            self.log(f"{transport}: memory over {self.counts.memory_total} requests")
            await self._memory(transport, figures)
        if "aggregate" in self.phases and self.args.aggregate:
            self.log(f"{transport}: aggregates of {', '.join(map(str, self.args.aggregate))} profiles")
            await self._aggregate(transport)

    # -- cold start -------------------------------------------------------------------------------------

    async def _cold(self, transport: str, figures: dict[str, Figures]) -> None:
        for _ in range(self.counts.cold):
            for name in self.proxies:
                client = self._proxy_client(name, transport, "cold")
                started = time.perf_counter()
                await client.spawn()
                received, line = await client.call(workload.initialize)
                figures[name].add("cold_ms", (received - started) * 1000)
                if b'"result"' not in line:
                    raise TargetFailed(f"{name}: initialize failed: {line[:300]!r}")
                if await client.close() not in (0, None):
                    figures[name].notes.append("exited with an error status after stdin closed")
            ms, peak_kb = await self._direct_start(transport)
            figures[DIRECT].add("cold_ms", ms)
            figures[DIRECT].add("peak_rss_mb", peak_kb / 1024)
            figures[DIRECT].add("floor_ms", await self._floor())

    async def _direct_start(self, transport: str) -> tuple[float, float]:
        path, flag, _ = TRANSPORTS[transport]
        started = time.perf_counter()
        proc = await self.children.spawn(
            [self.python, str(HERE / "direct_start.py"), self.base_url + path, flag],
            stderr=self.workdir / "direct_start.log",
        )
        try:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            elapsed = (time.perf_counter() - started) * 1000
            peak = await asyncio.wait_for(proc.stdout.readline(), 30)
            if b'"result"' not in line:
                raise TargetFailed(f"direct start failed; see {self.workdir / 'direct_start.log'}")
            return elapsed, float(peak)
        finally:
            await self.children.stop(proc)

    async def _floor(self) -> float:
        started = time.perf_counter()
        proc = await self.children.spawn([self.python, "-c", "import httpx2"])
        await asyncio.wait_for(proc.wait(), 30)
        await self.children.stop(proc)
        return (time.perf_counter() - started) * 1000

    # -- one long session per target: latency, throughput, large results -----------------------------------

    async def _session(self, transport: str, figures: dict[str, Figures]) -> None:
        targets: list[Target] = [self._direct(transport)]
        targets += [self._proxy_client(name, transport, "session") for name in self.proxies]
        try:
            for target in targets:
                await target.open()
            counts = self.counts
            self.log(f"{transport}: warm-up × {counts.warmup}")
            for target in targets:
                for _ in range(counts.warmup):
                    await target.call(workload.echo_call)
            if "latency" in self.phases:
                self.log(f"{transport}: sequential latency × {counts.latency}")
                for _ in range(counts.latency_rounds):
                    for target in targets:
                        for latency in await sequential(target, counts.latency // counts.latency_rounds):
                            figures[target.name].add("latency_us", latency * 1e6)
            if "throughput" in self.phases:
                self.log(f"{transport}: throughput {counts.throughput_rounds} × {counts.throughput}")
                for _ in range(counts.throughput_rounds):
                    for target in targets:
                        before = usage(target.pid) if target.pid else None
                        rate = await burst(target, counts.throughput, counts.concurrency)
                        figures[target.name].add("throughput_rps", rate)
                        if before is not None and target.pid is not None:
                            cpu = usage(target.pid).cpu_s - before.cpu_s
                            figures[target.name].add("cpu_us_per_call", cpu / counts.throughput * 1e6)
            if "large" in self.phases:
                size = counts.large_size
                self.log(f"{transport}: large results {counts.large} × {size // 1024} KiB")
                workload.blob_digest(size)
                for _ in range(counts.large):
                    for target in targets:
                        started = time.perf_counter()
                        received, line = await target.call(lambda i: workload.blob_call(i, size))
                        figures[target.name].add("large_mbps", len(line) / 1e6 / (received - started))
                        workload.check_blob(line, size)
            for target in targets:
                if target.pid is not None:
                    used = usage(target.pid)
                    figures[target.name].values["peak_rss_mb"] = used.peak_rss_mb
                    figures[target.name].values["cpu_s"] = used.cpu_s
        finally:
            for target in targets:
                status = await target.close()
                if status not in (0, None):
                    figures[target.name].notes.append(f"exit status {status} after stdin closed")

    # -- memory over many requests ---------------------------------------------------------------------

    async def _memory(self, transport: str, figures: dict[str, Figures]) -> None:
        clients = [self._proxy_client(name, transport, "memory") for name in self.proxies]
        counts = self.counts
        try:
            for client in clients:
                await client.open()
            for key, n in (
                ("rss_first_mb", counts.memory_first),
                ("rss_total_mb", counts.memory_total - counts.memory_first),
            ):
                for client in clients:
                    await burst(client, n, counts.concurrency)
                    assert client.pid is not None
                    figures[client.name].values[key] = usage(client.pid).rss_mb
        finally:
            for client in clients:
                await client.close()

    # -- the aggregate: several profiles in one proxy process ------------------------------------------

    def _aggregate_client(self, transport: str, profiles: int, tag: str) -> ProxyClient:
        path, flag, _ = TRANSPORTS[transport]
        config = self.workdir / f"aggregate-{transport}-{profiles}.yaml"
        if not config.exists():
            config.write_text(workload.aggregate_config(self.base_url + path, profiles))
        command = self.args.aggregate_cmd.format(
            config=shlex.quote(str(config)),
            profiles=",".join(f"p{i}" for i in range(1, profiles + 1)),
            transport=flag,
            python=shlex.quote(self.python),
        )
        name = f"aggregate ×{profiles}"
        stderr = self.workdir / f"aggregate{profiles}-{transport}-{tag}.log"
        return ProxyClient(name, shlex.split(command), self.children, stderr, REPO)

    async def _aggregate(self, transport: str) -> None:
        sizes = self.args.aggregate
        figures = {DIRECT: Figures(), **{f"aggregate ×{n}": Figures() for n in sizes}}
        self.aggregates[transport] = figures
        for floor in self.results[transport][DIRECT].samples.get("floor_ms", []):
            figures[DIRECT].add("floor_ms", floor)
        counts = self.counts
        for _ in range(counts.aggregate_cold):
            for n in sizes:
                client = self._aggregate_client(transport, n, "cold")
                started = time.perf_counter()
                await client.spawn()
                received, line = await client.call(workload.initialize)
                if b'"result"' not in line:
                    raise TargetFailed(f"{client.name}: initialize failed: {line[:300]!r}")
                figures[client.name].add("cold_ms", (received - started) * 1000)
                await client.close()
            if not figures[DIRECT].samples.get("floor_ms"):
                figures[DIRECT].add("floor_ms", await self._floor())
        direct = self._direct(transport)
        clients = [(self._aggregate_client(transport, n, "session"), n) for n in sizes]
        targets: list[tuple[Target, Build]] = [(direct, workload.echo_call)]
        targets += [(client, workload.aggregate_echo(n)) for client, n in clients]
        try:
            for target, build in targets:
                await target.open()
                for _ in range(counts.warmup):
                    workload.check_echo((await target.call(build))[1])
            for _ in range(counts.aggregate_rounds):
                for target, build in targets:
                    for latency in await sequential(target, counts.latency // counts.latency_rounds, build):
                        figures[target.name].add("latency_us", latency * 1e6)
                for target, build in targets:
                    before = usage(target.pid) if target.pid else None
                    rate = await burst(target, counts.aggregate_calls, counts.concurrency, build)
                    figures[target.name].add("throughput_rps", rate)
                    if before is not None and target.pid is not None:
                        cpu = usage(target.pid).cpu_s - before.cpu_s
                        figures[target.name].add("cpu_us_per_call", cpu / counts.aggregate_calls * 1e6)
            for target, _ in targets:
                if target.pid is not None:
                    figures[target.name].values["peak_rss_mb"] = usage(target.pid).peak_rss_mb
        finally:
            for target, _ in targets:
                status = await target.close()
                if status not in (0, None):
                    figures[target.name].notes.append(f"exit status {status} after stdin closed")


async def sequential(target: Target, n: int, build: Build = workload.echo_call) -> list[float]:
    """Latencies of `n` echo calls one after the other; every answer is checked after its timing."""
    latencies = []
    for _ in range(n):
        started = time.perf_counter()
        received, line = await target.call(build)
        latencies.append(received - started)
        workload.check_echo(line)
    return latencies


async def burst(target: Target, n: int, concurrency: int, build: Build = workload.echo_call) -> float:
    """Requests per second for `n` echo calls kept `concurrency` at a time in flight; every answer is
    checked (after the whole burst's time is taken), so a proxy that mixes up answers fails the run."""
    remaining = n
    lines: list[bytes] = []

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            lines.append((await target.call(build))[1])

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    rate = n / (time.perf_counter() - started)
    for line in lines:
        workload.check_echo(line)
    return rate


# ------------------------------------------------------------------------------------------------------
# Report

Verdict = Callable[[float | None, float | None, float | None], bool | None]


@dataclass(frozen=True)
class Row:
    label: str
    key: str
    digits: int
    #: the reference column: "direct" or the key of a direct figure used as the reference
    reference: str | None
    #: (text, test on (figure, reference, the bare relay's figure)) for rows that have a target
    target: tuple[str, Verdict] | None = None


def _ratio_at_most(limit: float) -> Verdict:
    return lambda value, ref, _bare: None if value is None or not ref else value / ref <= limit


def _ratio_at_least(limit: float) -> Verdict:
    return lambda value, ref, _bare: None if value is None or not ref else value / ref >= limit


def _at_most(limit: float) -> Verdict:
    return lambda value, _ref, _bare: None if value is None else value <= limit


def _at_most_bare_and(limit: float) -> Verdict:
    """At most the bare relay's figure (when it ran) and at most `limit` × the reference."""

    def verdict(value: float | None, ref: float | None, bare: float | None) -> bool | None:
        if value is None or not ref:
            return None
        return value / ref <= limit and (bare is None or value <= bare)

    return verdict


COLD = Row(
    "cold start → initialize, ms (÷ `import httpx2` floor)",
    "cold_ms",
    0,
    "floor_ms",
    ("≤ 1.6× floor", _ratio_at_most(1.6)),
)
P50 = Row(
    "sequential latency p50, µs", "latency_p50", 0, "latency_p50", ("≤ bare, ≤ 1.4×", _at_most_bare_and(1.4))
)
P99 = Row("sequential latency p99, µs", "latency_p99", 0, "latency_p99", ("≤ 2.0×", _ratio_at_most(2.0)))
THROUGHPUT = Row(
    "throughput, 32 in flight, req/s", "throughput_rps", 0, "throughput_rps", ("≥ 0.9×", _ratio_at_least(0.9))
)
CPU_PER_CALL = Row("CPU per call in the throughput run, µs", "cpu_us_per_call", 0, None)
ROWS = [
    COLD,
    Row("cold start → initialize, ms (÷ minimal httpx2 client)", "cold_ms", 0, "cold_ms"),
    P50,
    P99,
    THROUGHPUT,
    Row("large results, MB/s", "large_mbps", 1, "large_mbps", ("≥ 0.8×", _ratio_at_least(0.8))),
    Row("peak RSS, MB (÷ minimal httpx2 client)", "peak_rss_mb", 1, "peak_rss_mb", ("≤ 42 MB", _at_most(42))),
    Row("RSS after first requests, MB", "rss_first_mb", 1, None),
    Row(
        "RSS after all requests, MB (÷ after first)",
        "rss_total_mb",
        1,
        "rss_first_mb",
        ("≤ 1.05×", _ratio_at_most(1.05)),
    ),
    Row("CPU of the session, s", "cpu_s", 2, None),
    CPU_PER_CALL,
]
AGGREGATE_ROWS = [
    COLD,
    Row(P50.label, P50.key, 0, P50.reference, ("≤ 1.4×", _ratio_at_most(1.4))),
    P99,
    THROUGHPUT,
    Row("peak RSS, MB", "peak_rss_mb", 1, None, ("≤ 55 MB", _at_most(55))),
    CPU_PER_CALL,
]


def finalize(figures: Figures) -> None:
    latencies = sorted(figures.samples.get("latency_us", []))
    if latencies:
        figures.values["latency_p50"] = percentile(latencies, 50)
        figures.values["latency_p99"] = percentile(latencies, 99)


def percentile(ordered: Sequence[float], pct: float) -> float:
    index = (len(ordered) - 1) * pct / 100
    low = int(index)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (index - low)


def _fmt(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _reference(row: Row, name: str, figures: dict[str, Figures]) -> float | None:
    if row.reference is None:
        return None
    if row.key in ("rss_total_mb",):
        return figures[name].get(row.reference)
    return figures[DIRECT].get(row.reference)


def table(
    transport: str, figures: dict[str, Figures], counts: Counts, rows: Sequence[Row] = ROWS
) -> tuple[str, list[tuple[str, str, bool | None]]]:
    for fig in figures.values():
        finalize(fig)
    names = [name for name in figures if name != DIRECT]
    header = ["figure", "reference"]
    for name in names:
        header += [name, "ratio"]
    header += ["target"] + [f"met ({name})" for name in names]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    verdicts: list[tuple[str, str, bool | None]] = []
    for row in rows:
        label = (
            row.label.replace("first requests", f"{counts.memory_first:,} requests")
            .replace("all requests", f"{counts.memory_total:,} requests")
            .replace("large results", f"{counts.large_size / 2**20:g} MiB results")
        )
        if all(figures[name].get(row.key) is None for name in names):
            continue  # a phase that did not run
        reference = None
        if row.reference is not None and row.key != "rss_total_mb":
            reference = figures[DIRECT].get(row.reference)
        cells = [label, _fmt(reference, row.digits)]
        if row.key == "rss_total_mb":
            cells[1] = "(own first figure)"
        met_cells = []
        for name in names:
            value = figures[name].get(row.key)
            ref = _reference(row, name, figures)
            ratio = None if value is None or not ref else value / ref
            cells += [_fmt(value, row.digits), "—" if ratio is None else f"{ratio:.2f}×"]
            bare = figures["bare"].get(row.key) if "bare" in figures and name != "bare" else None
            verdict = row.target[1](value, ref, bare) if row.target else None
            met_cells.append("" if row.target is None else {True: "yes", False: "**no**", None: "—"}[verdict])
            if row.target is not None and name != "bare":
                verdicts.append((name, f"{transport}: {row.target[0]} — {label}", verdict))
        cells += [row.target[0] if row.target else ""] + met_cells
        lines.append("| " + " | ".join(cells) + " |")
    notes = [f"- {name}: {note}" for name, fig in figures.items() for note in sorted(set(fig.notes))]
    return "\n".join(lines + ([""] + notes if notes else [])), verdicts


def report(bench: Bench, elapsed: float) -> str:
    counts = bench.counts
    parts = []
    all_verdicts = []
    for transport, figures in bench.results.items():
        text, verdicts = table(transport, figures, counts)
        all_verdicts += verdicts
        parts.append(f"### {transport}\n\n{text}\n")
        if transport in bench.aggregates:
            text, verdicts = table(
                f"{transport} aggregate", bench.aggregates[transport], counts, AGGREGATE_ROWS
            )
            all_verdicts += verdicts
            parts.append(f"### {transport}: several profiles in one process\n\n{text}\n")
    met = [v for v in all_verdicts if v[2] is True]
    missed = [v for v in all_verdicts if v[2] is False]
    summary = [f"Targets met: {len(met)} of {len([v for v in all_verdicts if v[2] is not None])}."]
    summary += [f"- missed by {name}: {what}" for name, what, _ in missed]
    return "\n".join(parts) + "\n" + "\n".join(summary) + "\n"


def environment(bench: Bench, elapsed: float) -> str:
    import httpx2

    cpu_model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    commit = ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--", "mcp_sse_proxy"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        if commit and changed:
            commit += " with uncommitted changes to mcp_sse_proxy/"
    c = bench.counts
    commands = "\n".join(f"  - `{name}`: `{cmd}`" for name, cmd in bench.proxies.items())
    return (
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}\n"
        f"- machine: {os.cpu_count()} CPUs ({cpu_model or platform.machine()}), {platform.system()} "
        f"{platform.release()}\n"
        f"- Python {platform.python_version()} ({bench.python}), httpx2 {httpx2.__version__}\n"
        f"- commit: {commit or 'unknown'}; run took {elapsed:.0f} s\n"
        f"- counts: cold start × {c.cold}; warm-up {c.warmup}; sequential {c.latency} in {c.latency_rounds} "
        f"rounds; throughput {c.throughput_rounds} × {c.throughput} with {c.concurrency} in flight; "
        f"{c.large} × {c.large_size / 2**20:g} MiB results; memory after {c.memory_first} and "
        f"{c.memory_total} requests\n"
        f"- commands:\n{commands}\n"
    )


# ------------------------------------------------------------------------------------------------------
# Command line


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="benchmarks/run.py",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny counts: a smoke run that finishes in < 30 s"
    )
    parser.add_argument(
        "--proxy-cmd",
        default=DEFAULT_PROXY,
        help="command running the proxy; {url}, {transport} and {python} are substituted "
        f"(default: {DEFAULT_PROXY!r})",
    )
    parser.add_argument(
        "--compare",
        action="append",
        default=[],
        metavar="NAME='CMD {url}'",
        type=_compare,
        help="another proxy command to run in the same interleaved run (repeatable)",
    )
    parser.add_argument(
        "--bare",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also run the calibration relay benchmarks/bare_relay.py as target 'bare' "
        "(default: on for a full run, off for --quick)",
    )
    parser.add_argument(
        "--aggregate",
        type=lambda s: [int(n) for n in s.split(",") if n],
        default=[2, 4],
        metavar="N[,N]",
        help="profile counts for the aggregate phase: one proxy process serving N profiles (default: 2,4)",
    )
    parser.add_argument(
        "--aggregate-cmd",
        default=DEFAULT_AGGREGATE,
        help="command running the aggregate; {config}, {profiles}, {transport} and {python} are "
        f"substituted (default: {DEFAULT_AGGREGATE!r})",
    )
    parser.add_argument(
        "--transports",
        type=lambda s: s.split(","),
        default=["sse", "streamable-http"],
        help=f"comma-separated, from {', '.join(TRANSPORTS)} (default: sse,streamable-http)",
    )
    parser.add_argument(
        "--phases",
        type=lambda s: s.split(","),
        default=list(PHASES),
        help=f"comma-separated subset of {','.join(PHASES)} (e.g. to profile one)",
    )
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="interpreter for the upstream, the floor and {python} (default: this one)",
    )
    parser.add_argument("--timeout", type=float, help="bound on the whole run, s (default: 1200; quick: 60)")
    parser.add_argument(
        "--output",
        type=Path,
        help="append the results as markdown here (default: benchmarks/RESULTS.md for a full "
        "run of the default phases; nothing for --quick)",
    )
    parser.add_argument("--no-write", action="store_true", help="write no results file")
    parser.add_argument("--silent", action="store_true", help="no progress lines on stderr")
    args = parser.parse_args(argv)
    unknown = set(args.transports) - set(TRANSPORTS)
    if unknown:
        parser.error(f"unknown transport(s): {', '.join(sorted(unknown))}")
    unknown = set(args.phases) - set(PHASES)
    if unknown:
        parser.error(f"unknown phase(s): {', '.join(sorted(unknown))}")
    if args.bare is None:
        args.bare = not args.quick
    if any(n < 2 for n in args.aggregate):
        parser.error("--aggregate counts are 2 or more (one profile is the plain proxy)")
    return args


def _compare(text: str) -> tuple[str, str]:
    name, sep, command = text.partition("=")
    if not sep or not name or "{url}" not in command:
        raise argparse.ArgumentTypeError("expected NAME='command with {url}'")
    if name in ("proxy", DIRECT):
        raise argparse.ArgumentTypeError(f"{name!r} is reserved")
    return name, command


RESULTS_HEAD = (
    "# Benchmark results\n\nAppended by `python benchmarks/run.py`, one section per run, newest last; see "
    "benchmarks/README.md for the method. Ratios are to the direct connection measured in the same "
    "interleaved run; compare ratios within a run, not figures across runs.\n"
)


def append_results(output: Path, env: str, text: str) -> None:
    """Add this run under its own heading, keeping every earlier run (the history shows up in review)."""
    previous = output.read_text() if output.exists() else RESULTS_HEAD
    when = env.splitlines()[0].removeprefix("- date: ")
    machine = env.splitlines()[1].removeprefix("- machine: ")
    section = f"\n## Run of {when} on {machine}\n\n{env}\n{text}"
    output.write_text(previous.rstrip("\n") + "\n" + section)


async def _main(bench: Bench) -> None:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    await asyncio.wait_for(bench.run(), bench.args.timeout or bench.counts.timeout)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    counts = QUICK if args.quick else FULL
    workdir = Path(tempfile.mkdtemp(prefix="mcp-sse-proxy-bench-"))
    bench = Bench(args, counts, workdir)
    started = time.perf_counter()
    try:
        asyncio.run(_main(bench))
    except (KeyboardInterrupt, asyncio.CancelledError):  # Ctrl-C, or SIGTERM (which cancels the run)
        sys.stderr.write(f"interrupted; every subprocess was stopped; logs are in {workdir}\n")
        return 130
    except TimeoutError:
        sys.stderr.write(f"the run exceeded its time bound; logs are in {workdir}\n")
        return 1
    except (TargetFailed, RuntimeError, OSError, AssertionError) as exc:
        sys.stderr.write(f"benchmark failed: {exc}\nlogs are in {workdir}\n")
        return 1
    elapsed = time.perf_counter() - started
    text = report(bench, elapsed)
    sys.stdout.write(text)
    output = args.output
    full_default = not args.quick and set(args.phases) == set(PHASES)
    if output is None and full_default:
        output = HERE / "RESULTS.md"
    if output is not None and not args.no_write:
        append_results(output, environment(bench, elapsed), text)
        sys.stderr.write(f"appended to {output}\n")
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
