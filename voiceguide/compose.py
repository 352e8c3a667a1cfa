"""Composing a session from the stretch library: `voiceguide new`.

Stretches are picked from the requested body areas in turn (so a session for
hips and hamstrings alternates between them), strengthening holds last, until
the estimate reaches the target. The holds are then fitted by the same exact
planning a render uses: everything but the holds is fixed time, so the holds
are scaled to fill the rest and rounded to whole seconds, and the file written
plans to within a second or two of the target.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from voiceguide.errors import OptionError, RoutineError
from voiceguide.routine import Routine, parse_routine
from voiceguide.routine.library import AREAS, LEVELS, Entry, check_area, entries
from voiceguide.speech import ClipCache, Engine

MIN_MINUTES, MAX_MINUTES = 3.0, 120.0
MIN_HOLD, MAX_HOLD = 15, 120  # seconds: shorter is not a stretch, longer is not what a library session is for
REST, PREPARE, SWITCH = 10, 5, 5
FULL_BODY = ("neck", "shoulders", "chest", "upper-back", "lower-back", "hips", "glutes", "hamstrings", "quads", "calves")
SPEECH_ESTIMATE = 25.0  # seconds of speech around each stretch (name, instructions, sides, release)


@dataclass(frozen=True)
class NewSession:
    """What `voiceguide new` is asked for; checked when built."""

    name: str
    areas: tuple[str, ...]
    minutes: float = 10.0
    level: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip() or not self.name.isprintable():
            raise OptionError("name: give the session a name (printable text)")
        if not self.areas:
            raise OptionError(f"--area: name at least one body area ({', '.join(AREAS)})")
        for area in self.areas:
            check_area(area)
        if not isinstance(self.minutes, (int, float)) or not MIN_MINUTES <= self.minutes <= MAX_MINUTES:
            raise OptionError(f"--minutes: must be between {MIN_MINUTES:g} and {MAX_MINUTES:g} (got {self.minutes!r})")
        if self.level is not None and self.level not in LEVELS:
            raise OptionError(f"--level: unknown level {self.level!r} (levels: {', '.join(LEVELS)})")


def _estimate(entry: Entry) -> float:
    sides = len(entry.sides or [None])
    return sides * entry.hold + (sides - 1) * SWITCH + PREPARE + REST + SPEECH_ESTIMATE


def _own_first(pool: list[Entry], area: str) -> list[Entry]:
    """Entries whose first area is ``area`` before those that also reach it (stable otherwise)."""
    return [e for e in pool if e.areas[0] == area] + [e for e in pool if e.areas[0] != area]


def _fill(pools: list[list[Entry]], target: float) -> list[Entry]:
    """Entries from the pools in turn, each once, until the estimate reaches 90% of ``target`` seconds
    (none that would take it past 115%)."""
    picked: list[Entry] = []
    total = 0.0
    while total < target * 0.9:
        added = False
        for pool in pools:
            entry = next((e for e in pool if e not in picked), None)
            if entry is None or (total + _estimate(entry) > target * 1.15 and picked):
                continue
            picked.append(entry)
            total += _estimate(entry)
            added = True
            if total >= target * 0.9:
                break
        if not added:
            break
    return picked


def pick_stretches(request: NewSession) -> list[Entry]:
    """Library entries for the request: areas in turn, each entry once, strength holds last."""
    # "full-body" draws on every area in turn, top to bottom, so a short session still covers the body.
    areas = [a for area in request.areas for a in (FULL_BODY if area == "full-body" else (area,))]
    # Each area offers its own stretches first (those listing it first), then those that also reach it.
    pools = [_own_first(entries(area, request.level), area) for area in dict.fromkeys(areas)]
    if not any(pools):
        raise OptionError(f"--area: no {request.level or ''} stretches for {', '.join(request.areas)}".replace("  ", " "))
    picked = _fill(pools, request.minutes * 60)
    return sorted(picked, key=lambda e: e.kind == "strength")  # stable: stretches first, then strength holds


def _routine_text(request: NewSession, holds: list[tuple[Entry, int]]) -> str:
    areas = " and ".join(a.replace("-", " ") for a in request.areas)
    lines = [
        "# Composed by `voiceguide new` from the stretch library; edit freely.",
        f"name: {_quoted(request.name)}",
        f"description: A session for the {areas}, composed from the stretch library.",
        "intro: >-",
        f"  Welcome. This session works your {areas}, with {len(holds)} stretches and holds.",
        "  Move slowly into each one and aim for a gentle stretch, never pain.",
        "  If anything hurts, ease off or skip it.",
        "closing: >-",
        "  That is the end of the session. Take a moment to notice how you feel, then get up slowly.",
        "voice:",
        "  rate: 160",
        "defaults:",
        f"  rest: {REST}",
        f"  prepare: {PREPARE}",
        f"  switch: {SWITCH}",
        "  countdown: 3",
        "stretches:",
    ]
    for entry, hold in holds:
        lines += [f"  - use: {entry.id}", f"    hold: {hold}"]
    return "\n".join(lines) + "\n"


def _quoted(text: str) -> str:
    import json

    return json.dumps(text, ensure_ascii=False)  # JSON strings are YAML strings


def compose(request: NewSession, *, engine: Engine | None = None, cache: ClipCache | None = None) -> str:
    """The routine text for ``request``, its holds fitted by exact planning (speech is synthesized and cached)."""
    from voiceguide.pipeline import plan_session

    picked = pick_stretches(request)
    holds = [(entry, int(entry.hold)) for entry in picked]
    target = request.minutes * 60
    plan = plan_session(parse_routine(_routine_text(request, holds), request.name), engine=engine, cache=cache)
    hold_time = sum(e.end - e.start for e in plan.events if e.kind == "hold") / plan.rate
    fixed = plan.duration - hold_time
    if fixed + MIN_HOLD * sum(len(e.sides or [None]) for e in picked) > target:
        raise OptionError(f"--minutes: {request.minutes:g} minutes is too short for these stretches "
                          f"(speech and changes alone take {fixed / 60:.1f} minutes)")
    scale = (target - fixed) / hold_time
    holds = _whole_seconds([(e, min(MAX_HOLD, max(MIN_HOLD, round(h * scale)))) for e, h in holds], target - fixed)
    short = target - fixed - sum(h * len(e.sides or [None]) for e, h in holds)
    if short > 5:
        raise OptionError(f"--minutes: the library has too few {' or '.join(request.areas)} stretches to fill "
                          f"{request.minutes:g} minutes (about {(target - short) / 60:.0f} at most); add another --area")
    return _routine_text(request, holds)


def _whole_seconds(holds: list[tuple[Entry, int]], wanted: float) -> list[tuple[Entry, int]]:
    """Holds in whole seconds adding up to ``wanted`` as nearly as they can: what rounding left over is spent
    one second at a time (a hold counts once per side), within MIN_HOLD and MAX_HOLD."""
    holds = list(holds)
    for _ in range(4 * len(holds)):
        left = wanted - sum(h * len(e.sides or [None]) for e, h in holds)
        step = 1 if left > 0 else -1
        candidates = [i for i, (e, h) in enumerate(holds)
                      if len(e.sides or [None]) <= abs(left) + 0.5 and MIN_HOLD <= h + step <= MAX_HOLD]
        if abs(left) < 1 or not candidates:
            break
        i = min(candidates, key=lambda k: (len(holds[k][0].sides or [None]), k))
        holds[i] = (holds[i][0], holds[i][1] + step)
    return holds


def write_new_session(request: NewSession, path: str | Path, force: bool = False, *, engine: Engine | None = None,
                      cache: ClipCache | None = None) -> tuple[Path, Routine]:
    """Compose a session and write it to ``path`` (atomically; never over an existing file unless ``force``)."""
    path = Path(path)
    if path.suffix.lower() not in {".yaml", ".yml"}:
        path = path.with_name(path.name + ".yaml")
    if path.exists() and not force:
        raise RoutineError(f"{path}: already exists (use --force to overwrite)")
    if path.exists() and not path.is_file():
        raise RoutineError(f"{path}: is not a regular file")
    text = compose(request, engine=engine, cache=cache)
    routine = parse_routine(text, str(path))  # what is written always loads
    folder = path.parent if str(path.parent) else Path(".")
    temp: str | None = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".part")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(temp, 0o666 & ~_umask())
        os.replace(temp, path)
        temp = None
    except OSError as exc:
        raise RoutineError(f"{path}: cannot write ({exc.strerror})") from None
    finally:
        if temp is not None:
            Path(temp).unlink(missing_ok=True)
    return path, routine


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
