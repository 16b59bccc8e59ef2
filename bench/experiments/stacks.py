"""Summarise py-spy's collapsed stacks (`py-spy record --format raw`): where the time goes.

    python bench/experiments/stacks.py profile.txt [--top 30] [--under FUNCTION]

Prints the share of samples by the function at the top of the stack (self time), by each
function anywhere on the stack (inclusive time, counted once per sample), and by part of
the program (the innermost project, Django, asgiref, uvicorn or asyncio frame).
"""

from __future__ import annotations

import argparse
import collections
import re

FRAME = re.compile(r"^(?P<func>[^ ]+) \((?P<file>[^:]+)(?::\d+)?\)$")
PARTS = (
    ("streaming/", "project"),
    ("django/", "django"),
    ("asgiref/", "asgiref"),
    ("uvicorn/", "uvicorn"),
    ("asyncio/", "asyncio"),
    ("json/", "json"),
)


def name(frame: str) -> str:
    m = FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    file = m["file"]
    for marker in ("site-packages/", "lib/python3.11/", "wt-bench/"):
        if marker in file:
            file = file.split(marker, 1)[1]
    return f"{m['func']} ({file})"


def part(frames: list[str]) -> str:
    for frame in reversed(frames):
        for marker, label in PARTS:
            if marker in frame:
                return label
    return "other"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("path")
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--under", help="count only samples with this function on the stack")
    a = ap.parse_args()
    self_t: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    parts: collections.Counter[str] = collections.Counter()
    total = 0
    with open(a.path) as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack:
                continue
            frames = [name(fr) for fr in stack.split(";")]
            if a.under and not any(a.under in fr for fr in frames):
                continue
            n = int(count)
            total += n
            self_t[frames[-1]] += n
            for fr in set(frames):
                incl[fr] += n
            parts[part(frames)] += n
    print(f"{total} samples" + (f" under {a.under}" if a.under else ""))
    print("\n## by part (innermost known frame)")
    for key, n in parts.most_common():
        print(f"{100 * n / total:6.1f}%  {key}")
    print("\n## self")
    for key, n in self_t.most_common(a.top):
        print(f"{100 * n / total:6.1f}%  {key}")
    print("\n## inclusive")
    for key, n in incl.most_common(a.top):
        print(f"{100 * n / total:6.1f}%  {key}")


if __name__ == "__main__":
    main()
