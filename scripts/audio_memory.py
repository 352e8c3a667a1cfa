"""Peak RSS of a render's whole process tree, on generated dense routines (issue 15).

    python scripts/audio_memory.py [--stretches 20 60] [--runs 1] [--fmt mp3]

Writes dense routines (each stretch on two sides with four unique cues: about a
quarter of the session is speech), warms the cache with one render each, then
renders again while sampling /proc every 20 ms for the RSS of the voiceguide
process and all its descendants, and prints the peak of the sum.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = ("gently", "slowly", "breathe", "shoulder", "hip", "spine", "reach", "soften", "lengthen", "knee",
         "ankle", "wrist", "relax", "jaw", "ribs", "pelvis", "heel", "neck", "lower", "back")


def dense_routine(stretches: int) -> str:
    """YAML for a routine of ``stretches`` stretches, one minute a side, every line unique."""
    lines = ["name: Dense test routine", "intro: A dense generated routine for measuring memory.",
             "voice:", "  rate: 160", "defaults:", "  hold: 45", "  rest: 6", "  prepare: 5", "  switch: 5",
             "  countdown: 3", "stretches:"]
    for n in range(stretches):
        w = [WORDS[(n * 7 + k) % len(WORDS)] for k in range(8)]
        lines += [f"  - name: Stretch number {n + 1} for the {w[0]} and {w[1]}",
                  f"    instructions: Stretch {n + 1}. Move the {w[2]} and the {w[3]} {w[4]} while you keep the "
                  f"{w[5]} still, then settle into position {n + 1} and let the {w[6]} {w[7]}.",
                  "    sides: [left, right]", "    cues:"]
        for k, at in enumerate((8, 16, 24, 32)):
            lines.append(f"      - {{at: {at}, say: \"Cue {k + 1} of stretch {n + 1}: let the {w[k]} {w[k + 4]} now.\"}}")
    return "\n".join(lines) + "\n"


def tree_rss(root: int) -> int:
    """Resident bytes of ``root`` and every descendant."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(entry), int(fields[1])
        children.setdefault(ppid, []).append(pid)
        rss[pid] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack += children.get(pid, [])
    return total


def sampled(command: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds and the peak process-tree RSS (bytes) of one run."""
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    peak = 0
    while process.poll() is None:
        peak = max(peak, tree_rss(process.pid))
        time.sleep(0.02)
    if process.returncode:
        sys.exit(f"render failed: {command}")
    return time.perf_counter() - start, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stretches", type=int, nargs="+", default=[20, 60])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--fmt", default="mp3")
    parser.add_argument("--psoas", action="store_true", help="also the built-in psoas routine")
    args = parser.parse_args()
    env = dict(os.environ)
    cli = [sys.executable, "-m", "voiceguide.cli"]
    with tempfile.TemporaryDirectory() as work:
        jobs: list[tuple[str, list[str]]] = []
        if args.psoas:
            jobs.append(("psoas", ["render", "psoas"]))
        for count in args.stretches:
            routine = Path(work) / f"dense-{count}.yaml"
            routine.write_text(dense_routine(count))
            jobs.append((f"dense {count} stretches", ["render", str(routine)]))
        for name, job in jobs:
            out = Path(work) / f"out.{args.fmt}"
            subprocess.run([*cli, *job, "-o", str(out)], env=env, check=True, stdout=subprocess.DEVNULL)  # warm
            for _ in range(args.runs):
                seconds, peak = sampled([*cli, *job, "-o", str(out)], env)
                print(f"{name:28s} {seconds:6.2f} s  peak tree RSS {peak / 1e6:6.1f} MB", flush=True)


if __name__ == "__main__":
    main()
