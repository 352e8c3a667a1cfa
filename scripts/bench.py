"""Benchmark voiceguide against the encoder floor and a pydub-stitching peer, in one run.

    python scripts/bench.py            # full run: psoas, a 40-minute and a 2-hour session (~4 min)
    python scripts/bench.py --quick    # CI-size run: psoas, 10- and 30-minute sessions (~1 min)

Everything is measured on this machine in this run, so the ratios compare like
with like:

- floor: ffmpeg alone encoding the session's exact PCM (read from a file) with
  the same encoder settings as a render; nothing can be faster than this.
- warm / cold: `voiceguide render` as a user runs it (a fresh process, speech
  cached / cache empty), wall time and peak RSS.
- peer: the same segments stitched with pydub's `+` and exported with the same
  ffmpeg, as script-to-audio generators do.
- start-up: `voiceguide --help` and `voiceguide plan psoas`, best and median of 15.
- cold speech: `voiceguide plan psoas` with an empty cache (all its speech
  synthesized), median and maximum of 10: a stalled worker shows in the maximum.
- batch: four routines rendered by one command, allowed one core, then two
  (CPU affinity); throughput ratio.

Timings on a shared VM are noisy, so each render and its floor are run
alternately several times and the best of each is compared. Peak RSS is the
largest resident set of any process in the render (the Python process, a
speech worker or ffmpeg), read with ``resource.getrusage(RUSAGE_CHILDREN)``.
Prints a table and writes the same figures as JSON (bench-results.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
COLD_RUNS = 10  # cold synthesis: the median is the typical cost, the maximum catches stalls
STARTUP_RUNS = 15  # start-up times on a shared VM scatter by +-50 ms: the median of many is the honest figure
TARGETS = {"warm": 1.15, "cold": 1.3, "rss_mb": 150.0, "startup_s": 0.4, "batch_speedup": 1.7}


# --- Measuring a child process -------------------------------------------------------


def _measured_child(cores: int, command: list[str]) -> None:
    """Run ``command`` (on ``cores`` CPUs if not 0) and print its wall time, exit code, peak RSS and output as JSON.

    Runs in a wrapper process of its own, so RUSAGE_CHILDREN covers this command alone.
    """
    if cores:
        os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:cores]))  # inherited by the command
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    print(json.dumps({"wall": wall, "rss_mb": peak_kb / 1024, "code": result.returncode,
                      "stdout": result.stdout, "stderr": result.stderr[-2000:]}))


def measure(command: list[str], env: dict[str, str], cores: int = 0) -> dict[str, Any]:
    """Wall time and peak RSS of ``command`` (and its children), measured in a fresh wrapper process."""
    wrapper = [sys.executable, __file__, "--measure", str(cores), "--", *command]
    out = subprocess.run(wrapper, capture_output=True, text=True, env=env, check=True).stdout
    result: dict[str, Any] = json.loads(out)
    if result["code"] != 0:
        raise SystemExit(f"benchmark command failed ({result['code']}): {' '.join(command)}\n{result['stderr']}")
    return result


def voiceguide_command() -> list[str]:
    """The installed console script beside this Python, else ``python -m voiceguide.cli``."""
    script = Path(sys.executable).with_name("voiceguide")
    return [str(script)] if script.exists() else [sys.executable, "-m", "voiceguide.cli"]


# --- The session's exact PCM, for the floor and the peer -------------------------------


def session_audio(flags: list[str]) -> tuple[Any, dict[str, Any]]:
    """The plan and clips a render with these flags uses (speech must already be cached)."""
    from voiceguide.cli import _session_options
    from voiceguide.pipeline import _lengths, _script_options
    from voiceguide.plan.script import build_script
    from voiceguide.plan.timeline import build_plan
    from voiceguide.routine.builtin import load_builtin
    from voiceguide.speech.cache import ClipCache
    from voiceguide.speech.registry import get_engine

    duration = flags[flags.index("--duration") + 1] if "--duration" in flags else None
    hold = [flags[flags.index("--hold") + 1]] if "--hold" in flags else None
    options = _session_options(hold=hold, duration=duration)
    routine = load_builtin("psoas")
    lengths, clips = _lengths(routine, options, get_engine(), ClipCache(), estimate=False)
    plan = build_plan(build_script(routine, _script_options(routine, options, lengths)), lengths)
    return plan, clips


def write_raw(flags: list[str], path: Path) -> float:
    """Write the session's PCM to ``path``; return its length in seconds."""
    from voiceguide.audio.assemble import pcm_chunks

    plan, clips = session_audio(flags)
    with open(path, "wb") as raw:
        for chunk in pcm_chunks(plan, clips):
            raw.write(chunk)
    return float(plan.duration)


def floor_command(raw: Path, out: Path) -> list[str]:
    """ffmpeg alone, with exactly the encoder settings a render uses (no tags, no chapters)."""
    from voiceguide.export.formats import DEFAULT_BITRATE, FORMAT_ARGS
    from voiceguide.ffmpeg import ffmpeg_exe

    return [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "s16le", "-ar", "44100", "-ac", "1",
            "-i", str(raw), "-ar", "44100", "-ac", "1", "-b:a", DEFAULT_BITRATE, *FORMAT_ARGS["mp3"], str(out)]


def _peer_child(flags: list[str], out: str) -> None:
    """The peer baseline: stitch the same segments with pydub's `+`, then export (runs in its own process)."""
    import warnings

    from voiceguide.export.formats import DEFAULT_BITRATE
    from voiceguide.ffmpeg import ffmpeg_exe

    plan, clips = session_audio(flags)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pydub import AudioSegment
    AudioSegment.converter = ffmpeg_exe()
    started = time.perf_counter()
    session = AudioSegment.silent(duration=0, frame_rate=plan.rate)
    cursor = 0
    for event in plan.speech():
        gap_ms = (event.start - cursor) * 1000 / plan.rate
        session = session + AudioSegment.silent(duration=gap_ms, frame_rate=plan.rate)
        session = session + AudioSegment(data=clips[event.text].pcm, sample_width=2, frame_rate=plan.rate, channels=1)
        cursor = event.end
    session = session + AudioSegment.silent(duration=(plan.total - cursor) * 1000 / plan.rate, frame_rate=plan.rate)
    stitched = time.perf_counter()
    session.export(out, format="mp3", bitrate=DEFAULT_BITRATE)
    print(json.dumps({"stitch": stitched - started, "export": time.perf_counter() - stitched}))


# --- The run -------------------------------------------------------------------------


def best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"wall": min(r["wall"] for r in runs), "rss_mb": max(r["rss_mb"] for r in runs),
            "runs": [round(r["wall"], 3) for r in runs]}


def run(quick: bool, output: Path) -> dict[str, Any]:
    sessions = ({"psoas": [], "10min": ["--duration", "10m"], "30min": ["--duration", "30m"]} if quick else
                {"psoas": [], "40min": ["--duration", "40m"], "2h": ["--duration", "2h"]})
    long_name, longest = list(sessions)[1], list(sessions)[2]
    repeats = {"psoas": 3, long_name: 2 if quick else 3, longest: 1 if quick else 2}
    vg = voiceguide_command()
    results: dict[str, Any] = {"machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                                           "platform": platform.platform()}, "quick": quick, "sessions": {}}
    with tempfile.TemporaryDirectory(prefix="voiceguide-bench-") as work_dir:
        work = Path(work_dir)
        warm_env = {**os.environ, "VOICEGUIDE_CACHE_DIR": str(work / "cache")}
        os.environ["VOICEGUIDE_CACHE_DIR"] = str(work / "cache")  # for this process's own library calls
        subprocess.run([*vg, "plan", "psoas"], env=warm_env, check=True, capture_output=True)  # warm the cache
        for name, flags in sessions.items():
            print(f"measuring {name} ...", file=sys.stderr)
            raw = work / f"{name}.raw"
            seconds = write_raw(flags, raw)
            floor_runs, warm_runs = [], []
            for _ in range(repeats[name]):  # alternate, so drift on the machine hits both alike
                floor_runs.append(measure(floor_command(raw, work / "floor.mp3"), warm_env))
                warm_runs.append(measure([*vg, "render", "psoas", *flags, "-q", "-o", str(work / "warm.mp3")], warm_env))
            raw.unlink()
            entry: dict[str, Any] = {"audio_s": round(seconds, 1), "floor": best(floor_runs), "warm": best(warm_runs)}
            if name != longest:  # cold: an empty cache every time
                cold_runs = []
                for attempt in range(2 if name == long_name else 1):
                    cold_env = {**os.environ, "VOICEGUIDE_CACHE_DIR": str(work / f"cold-{name}-{attempt}")}
                    cold_runs.append(measure([*vg, "render", "psoas", *flags, "-q", "-o", str(work / "cold.mp3")], cold_env))
                entry["cold"] = best(cold_runs)
            if name != longest:  # the peer is quadratic: a 2-hour stitch would take many minutes
                peer = measure([sys.executable, __file__, "--peer", str(work / "peer.mp3"), "--", *flags], warm_env)
                split = json.loads(peer["stdout"])
                entry["peer"] = {"wall": peer["wall"], "rss_mb": peer["rss_mb"], "stitch": split["stitch"],
                                 "export": split["export"]}
            results["sessions"][name] = entry

        print("measuring start-up ...", file=sys.stderr)
        results["startup"] = {}
        for label, args in (("--help", ["--help"]), ("plan psoas", ["plan", "psoas"])):
            walls = [measure([*vg, *args], warm_env)["wall"] for _ in range(STARTUP_RUNS)]
            results["startup"][label] = {"best": min(walls), "median": statistics.median(walls)}

        print("measuring cold speech ...", file=sys.stderr)
        walls = [measure([*vg, "plan", "psoas"], {**os.environ, "VOICEGUIDE_CACHE_DIR": str(work / f"speech-{n}")})["wall"]
                 for n in range(COLD_RUNS)]
        results["cold_speech"] = {"runs": COLD_RUNS, "median": statistics.median(walls), "max": max(walls)}

        print("measuring batch ...", file=sys.stderr)
        folder = work / "batch"
        folder.mkdir()
        source = (ROOT / "voiceguide" / "routines" / "psoas.yaml").read_text(encoding="utf-8")
        for i in range(4):
            (folder / f"variant-{i}.yaml").write_text(source.replace("name: Psoas release", f"name: Variant {i}", 1),
                                                      encoding="utf-8")
        hold = "45" if quick else "120"
        batch = {}
        for cores in (1, 2):  # the same command, allowed one core, then two
            runs = [measure([*vg, "render", str(folder), "--hold", hold, "-q", "--output-dir", str(work / f"batch-{cores}")],
                            warm_env, cores=cores) for _ in range(2)]
            batch[cores] = min(r["wall"] for r in runs)
        results["batch"] = {"routines": 4, "hold_s": int(hold), "one_core": batch[1], "two_cores": batch[2],
                            "speedup": batch[1] / batch[2]}
    results["checks"] = checks(results, long_name, longest)
    output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return results


def checks(results: dict[str, Any], long_name: str, longest: str) -> dict[str, dict[str, Any]]:
    """Each target, the measured value and whether it is met."""
    sessions = results["sessions"]
    long, longer = sessions[long_name], sessions[longest]
    warm = long["warm"]["wall"] / long["floor"]["wall"]
    cold = long["cold"]["wall"] / long["floor"]["wall"]
    growth = longer["warm"]["rss_mb"] / long["warm"]["rss_mb"]
    startup = max(s["median"] for s in results["startup"].values())
    found = {
        f"warm render {long_name} / floor": (warm, TARGETS["warm"], warm <= TARGETS["warm"]),
        f"cold render {long_name} / floor": (cold, TARGETS["cold"], cold <= TARGETS["cold"]),
        f"peak RSS {longest} render (MB)": (longer["warm"]["rss_mb"], TARGETS["rss_mb"],
                                            longer["warm"]["rss_mb"] <= TARGETS["rss_mb"]),
        f"RSS growth {long_name} -> {longest}": (growth, 1.1, growth <= 1.1),
        "start-up, median of 15 (s)": (startup, TARGETS["startup_s"], startup < TARGETS["startup_s"]),
        "batch throughput, 2 cores vs 1": (results["batch"]["speedup"], TARGETS["batch_speedup"],
                                        results["batch"]["speedup"] >= TARGETS["batch_speedup"]),
    }
    return {name: {"value": round(value, 3), "target": target, "met": met} for name, (value, target, met) in found.items()}


def table(results: dict[str, Any]) -> str:
    """The figures as a Markdown table (what the README quotes)."""
    rows = ["| session | audio | floor s | warm s (x floor) | cold s (x floor) | peer s (x floor) | warm MB | peer MB |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, s in results["sessions"].items():
        floor = s["floor"]["wall"]

        def cell(key: str, s: dict[str, Any] = s, floor: float = floor) -> str:
            return f"{s[key]['wall']:.2f} ({s[key]['wall'] / floor:.2f}x)" if key in s else "-"

        rows.append(f"| {name} | {s['audio_s'] / 60:.1f} min | {floor:.2f} | {cell('warm')} | {cell('cold')} | "
                    f"{cell('peer')} | {s['warm']['rss_mb']:.0f} | "
                    f"{s['peer']['rss_mb']:.0f} |" if "peer" in s else
                    f"| {name} | {s['audio_s'] / 60:.1f} min | {floor:.2f} | {cell('warm')} | {cell('cold')} | - | "
                    f"{s['warm']['rss_mb']:.0f} | - |")
    start = results["startup"]
    batch = results["batch"]
    rows += ["", "| start-up | best s | median s |", "| --- | --- | --- |"]
    rows += [f"| voiceguide {label} | {v['best']:.3f} | {v['median']:.3f} |" for label, v in start.items()]
    cold = results["cold_speech"]
    rows += ["", f"cold speech (plan psoas, empty cache), {cold['runs']} runs: median {cold['median']:.2f} s, "
                 f"max {cold['max']:.2f} s"]
    rows += ["", f"batch: {batch['routines']} routines (holds {batch['hold_s']} s): 1 core {batch['one_core']:.2f} s, "
                 f"2 cores {batch['two_cores']:.2f} s, throughput {batch['speedup']:.2f}x",
             "", "| target | measured | limit | met |", "| --- | --- | --- | --- |"]
    rows += [f"| {name} | {c['value']} | {c['target']} | {'yes' if c['met'] else 'NO'} |"
             for name, c in results["checks"].items()]
    return "\n".join(rows)


def main() -> None:
    if sys.argv[1:2] == ["--measure"]:
        _measured_child(int(sys.argv[2]), sys.argv[4:])
        return
    if sys.argv[1:2] == ["--peer"]:
        _peer_child(sys.argv[4:], sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI-size run: shorter sessions, fewer repeats")
    parser.add_argument("--json", type=Path, default=Path("bench-results.json"), help="where to write the figures")
    args = parser.parse_args()
    results = run(args.quick, args.json)
    print(table(results))
    print(f"\nwrote {args.json}")
    if not all(c["met"] for c in results["checks"].values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
