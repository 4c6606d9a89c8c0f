"""Summarise a py-spy `--format raw` profile: where the samples went, by function and by package.

    py-spy record -r 1000 -f raw -o prof.txt -- python -m mcp_sse_proxy ...   # e.g. as --proxy-cmd
    python benchmarks/profile_report.py prof.txt [--top 25]

Line numbers are dropped, so a function counts once however many lines of it were sampled. "self" is
the share of samples with the function as the innermost frame, "total" with it anywhere on the stack.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def _frame(text: str) -> tuple[str, str]:
    match = _FRAME.match(text.strip())
    if not match:
        return text.strip(), ""
    return match["func"], match["file"]


def _package(file: str) -> str:
    if file.startswith("<"):
        return file
    head = file.split("/", 1)[0]
    return head.removesuffix(".py") if "/" not in file else head


def summarise(path: Path, top: int, patterns: list[str]) -> str:
    own: Counter[str] = Counter()
    matched: Counter[str] = Counter()
    total: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    samples = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        samples += count
        frames = [_frame(part) for part in stack.split(";")]
        names = [f"{func} ({file})" for func, file in frames]
        own[names[-1]] += count
        packages[_package(frames[-1][1])] += count
        for name in set(names):
            total[name] += count
        for pattern in patterns:
            if pattern in stack:
                matched[pattern] += count
    if not samples:
        return f"{path}: no samples\n"

    def block(title: str, counter: Counter[str]) -> list[str]:
        rows = [f"{title}", f"{'share':>7}  {'samples':>8}  name"]
        rows += [f"{n / samples:7.1%}  {n:8d}  {name}" for name, n in counter.most_common(top)]
        return rows + [""]

    lines = [f"{path}: {samples} samples", ""]
    if patterns:
        lines += ["samples whose stack contains each pattern"]
        lines += [f"{matched[p] / samples:7.1%}  {matched[p]:8d}  {p}" for p in patterns] + [""]
    lines += block("self time by package (innermost frame)", packages)
    lines += block("self time by function", own)
    lines += block("total time by function (anywhere on the stack)", total)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profiles", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument(
        "--stack",
        action="append",
        default=[],
        metavar="TEXT",
        help="also report the share of stacks containing TEXT (repeatable), e.g. 'Relay._send'",
    )
    args = parser.parse_args()
    for path in args.profiles:
        print(summarise(path, args.top, args.stack))


if __name__ == "__main__":
    main()
