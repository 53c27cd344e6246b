"""Summarize a py-spy profile (``py-spy record --threads --format raw``: collapsed stacks).

    python -m bench.profile bench/results/<run>/<scenario>.pyspy.txt [--top 30]

Prints the functions with the most samples, inclusive (the function and what it calls) and
self (its own code, with the C code it calls that has no Python frames of its own: asyncpg's
protocol, pydantic-core, uvloop), as shares of the busy samples of the thread that serves
requests (the event loop and the greenlets SQLAlchemy runs on it). ``bench/run --py-spy``
records one profile per Fundline scenario and keeps this summary in the results.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

FRAME = re.compile(r"(.*) \((.*):\d+\)$")
SITE = re.compile(r".*/(site-packages|src|lib/python3\.\d+)/")


def short(frame: str) -> str:
    """``func (/…/site-packages/pkg/mod.py:12)`` → ``func (pkg/mod.py)``."""
    match = FRAME.match(frame)
    if not match:
        return frame
    function, path = match.groups()
    return f"{function} ({SITE.sub('', path)})"


def summarize(path: Path, *, top: int = 25) -> dict[str, Any]:
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    lines = path.read_text().splitlines()
    loop_thread = next(
        (line.split(";", 1)[0] for line in lines if "Runner.run" in line or "asyncio_run" in line),
        None,
    )
    for line in lines:
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [short(f) for f in stack.split(";")]
        # With --threads the first frame names the thread: keep the event loop's only.
        if frames[0].startswith("thread (") and frames[0] != loop_thread:
            continue
        n = int(count)
        total += n
        for frame in set(frames):
            inclusive[frame] += n
        own[frames[-1]] += n
    share = 100 / max(1, total)
    return {
        "samples": total,
        "inclusive_pct": {f: round(n * share, 1) for f, n in inclusive.most_common(top)},
        "self_pct": {f: round(n * share, 1) for f, n in own.most_common(top)},
    }


def main(argv: Sequence[str] | None = None) -> None:
    from rich.console import Console

    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args(argv)
    summary = summarize(args.profile, top=args.top)
    console = Console(highlight=False, soft_wrap=True)
    console.print(f"{summary['samples']} samples of the event-loop thread")
    for title in ("inclusive_pct", "self_pct"):
        console.print(f"\n{title.removesuffix('_pct')}:", markup=False)
        for frame, pct in summary[title].items():
            console.print(f"  {pct:5.1f}%  {frame}", markup=False)


if __name__ == "__main__":
    main()
