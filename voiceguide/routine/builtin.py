"""Built-in routines and the starter template."""

from __future__ import annotations

from pathlib import Path

from voiceguide.errors import RoutineError
from voiceguide.routine.load import load_routine_file, parse_routine, parse_routine_cached
from voiceguide.routine.model import Routine

STARTER = """\
# A voiceguide routine. Render it with:  voiceguide render {file}
# Every key is documented in the README; `voiceguide schema` gives editors a schema.
name: {name}
description: A short routine to start from.
intro: Welcome. Two stretches, the first held for thirty seconds on each side, the second for twenty.

defaults:
  hold: 30          # seconds of each hold
  rest: 5           # seconds between stretches ("Next up" is said here)
  prepare: 3        # seconds to get into position before a hold
  switch: 3         # seconds to change sides
  countdown: 3      # spoken 3-2-1 at the end of each hold

stretches:
  - name: Runner's stretch
    instructions: >-
      Kneel on one knee with the other foot in front. Push your hips forward
      until you feel a stretch along the front of the hip.
    sides: [left, right]
    cues:
      - at: 10      # seconds into the hold; negative counts from the end
        say: Tilt your pelvis to deepen the stretch.

  - name: Standing reach
    instructions: Stand tall and reach both arms overhead.
    hold: 20
"""


def write_starter(name: str, force: bool = False) -> Path:
    """Write a starter routine file; refuse to overwrite unless ``force``."""
    path = Path(name if name.endswith((".yaml", ".yml")) else f"{name}.yaml")
    if path.exists() and not force:
        raise RoutineError(f"{path}: already exists (use --force to overwrite)")
    title = path.stem.replace("-", " ").replace("_", " ").strip().capitalize() or "My routine"
    text = STARTER.format(name=title, file=path)
    parse_routine(text, str(path))  # the starter must always be valid
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise RoutineError(f"{path}: cannot write ({exc.strerror})") from None
    return path


# --- Built-in routines --------------------------------------------------------

ROUTINES_DIR = Path(__file__).with_name("builtins")  # package data (importlib.resources costs ~5 ms of start-up)


def builtin_names() -> list[str]:
    """Names of the routines shipped with voiceguide."""
    folder = ROUTINES_DIR
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_builtin(name: str) -> Routine:
    """Load a built-in routine by name."""
    if name not in builtin_names():
        choices = ", ".join(builtin_names())
        raise RoutineError(f"{name}: no such routine file or built-in routine (built-ins: {choices})")
    resource = ROUTINES_DIR / f"{name}.yaml"
    return parse_routine_cached(resource.read_text(encoding="utf-8"), f"{name} (built-in)")


def resolve_routine(spec: str | Path) -> tuple[Routine, str]:
    """Load ROUTINE given as a file path or a built-in name; also return a base name for output."""
    text = str(spec)
    path = Path(text)
    if path.suffix.lower() in {".yaml", ".yml"} or path.exists() or "/" in text:
        return load_routine_file(path), path.stem
    return load_builtin(text), text


def expand_routine_args(specs: list[str]) -> list[str]:
    """Routine arguments as given, with each folder replaced by the routine files in it (sorted)."""
    out: list[str] = []
    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            found = sorted(str(p) for p in path.iterdir() if p.suffix.lower() in {".yaml", ".yml"} and p.is_file())
            if not found:
                raise RoutineError(f"{path}: no routine files (*.yaml) in this folder")
            out += found
        else:
            out.append(spec)
    return out
