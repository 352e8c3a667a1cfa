"""Routine files: strict models, safe YAML loading and built-in routines.

A routine file is validated here, at the boundary, into frozen models that
reject unknown keys; everything downstream sees only valid data. Every error
names the file, the line and the field: ``my.yaml:14: stretches[1].hold: ...``.
"""

from __future__ import annotations

import difflib
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from voiceguide.errors import RoutineError

MAX_FILE_BYTES = 1_000_000
MAX_YAML_NODES = 50_000  # bounds alias expansion ("billion laughs")
MAX_HOLD_SECONDS = 3600.0
MAX_LINE_CHARS = 1000
MAX_STRETCHES = 200

Seconds = Annotated[float, Field(ge=0, le=MAX_HOLD_SECONDS, allow_inf_nan=False)]
PositiveSeconds = Annotated[float, Field(gt=0, le=MAX_HOLD_SECONDS, allow_inf_nan=False)]
Text = Annotated[str, Field(max_length=MAX_LINE_CHARS)]
Label = Annotated[str, Field(min_length=1, max_length=60)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Voice(_Model):
    """How lines are spoken; every field is optional and falls back to the engine's default."""

    id: str | None = Field(None, description="Engine voice id, e.g. 'gmw/en-us' (see `voiceguide voices`).")
    language: str | None = Field(None, description="Language code, e.g. 'en-us'; picks a matching voice.")
    rate: int | None = Field(None, ge=80, le=450, description="Speaking rate in words per minute.")
    volume: float | None = Field(None, ge=0, le=1, allow_inf_nan=False, description="Engine volume, 0 to 1.")


class Phrases(_Model):
    """Every fixed phrase, so a routine can be written in another language."""

    hold: Text = "Hold."
    get_ready: Text = "Get into position."
    side: Text = Field("{side} side.", description="Announces a side; {side} is its label.")
    switch_sides: Text = "Switch sides."
    halfway: Text = "Halfway."
    breathe: Text = "Breathe."
    next_up: Text = Field("Next up: {name}.", description="Spoken during the rest; {name} is the next stretch.")
    round: Text = Field("Round {n} of {total}.", description="{n} and {total} are filled in.")
    numbers: list[Text] = Field(
        default_factory=list,
        description="Words for the countdown numbers 1, 2, 3...; digits are spoken when empty.",
    )
    session_end: Text = "That's the end of the session. Well done."

    def number(self, n: int) -> str:
        """The spoken word for countdown number ``n``."""
        return self.numbers[n - 1] if n <= len(self.numbers) else str(n)


class Cue(_Model):
    """A coaching line spoken during a hold."""

    at: float = Field(
        allow_inf_nan=False,
        ge=-MAX_HOLD_SECONDS,
        le=MAX_HOLD_SECONDS,
        description="Seconds into the hold; negative counts back from its end.",
    )
    say: Annotated[str, Field(min_length=1, max_length=MAX_LINE_CHARS)]


class Defaults(_Model):
    """Settings every stretch inherits unless it overrides them."""

    hold: PositiveSeconds = Field(30.0, description="Seconds each hold lasts.")
    rest: Seconds = Field(5.0, description="Seconds between stretches (and between rounds).")
    prepare: Seconds = Field(3.0, description="Seconds to get into position before the hold.")
    switch: Seconds = Field(3.0, description="Seconds to change position between sides.")
    countdown: int = Field(3, ge=0, le=10, description="Spoken countdown length at the end of a hold; 0 = none.")
    halfway: bool = Field(False, description="Say the halfway phrase in the middle of each hold.")
    breathe: PositiveSeconds | None = Field(None, description="Say the breathe phrase every N seconds of a hold.")
    repeat: int = Field(1, ge=1, le=20, description="Rounds of each stretch (all its sides).")


class Stretch(_Model):
    """One stretch: spoken instructions, then a hold per side (per round)."""

    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=60)] | None = None
    name: Annotated[str, Field(min_length=1, max_length=120)]
    instructions: Text | None = None
    sides: list[Label] | None = Field(None, min_length=1, max_length=8)
    hold: PositiveSeconds | dict[str, PositiveSeconds] | None = None
    rest: Seconds | None = None
    prepare: Seconds | None = None
    switch: Seconds | None = None
    countdown: Annotated[int, Field(ge=0, le=10)] | None = None
    halfway: bool | None = None
    breathe: PositiveSeconds | None = None
    repeat: Annotated[int, Field(ge=1, le=20)] | None = None
    cues: list[Cue] = Field(default_factory=list, max_length=50)

    @field_validator("sides")
    @classmethod
    def _unique_sides(cls, sides: list[str] | None) -> list[str] | None:
        if sides is not None and len(set(sides)) != len(sides):
            raise ValueError(f"side labels must be unique (got {sides})")
        return sides

    @model_validator(mode="after")
    def _per_side_hold_matches_sides(self) -> Stretch:
        if isinstance(self.hold, dict):
            if not self.sides:
                raise ValueError("a per-side hold needs 'sides'")
            if set(self.hold) != set(self.sides):
                raise ValueError(f"per-side hold must name exactly the sides {self.sides} (got {list(self.hold)})")
        return self

    @property
    def key(self) -> str:
        """The id if given, else the name: how the CLI refers to this stretch."""
        return self.id or self.name


class Routine(_Model):
    """A whole session: an introduction, stretches in order, a closing line."""

    name: Annotated[str, Field(min_length=1, max_length=120)]
    description: Text | None = None
    intro: Text | None = Field(None, description="Spoken first; defaults to the routine's name.")
    closing: Text | None = Field(None, description="Spoken last, before the session-end phrase.")
    defaults: Defaults = Field(default_factory=Defaults)
    voice: Voice = Field(default_factory=Voice)
    phrases: Phrases = Field(default_factory=Phrases)
    stretches: list[Stretch] = Field(min_length=1, max_length=MAX_STRETCHES)

    @field_validator("stretches")
    @classmethod
    def _unique_stretches(cls, stretches: list[Stretch]) -> list[Stretch]:
        seen: set[str] = set()
        for stretch in stretches:
            for key in {stretch.name.casefold(), (stretch.id or stretch.name).casefold()}:
                if key in seen:
                    raise ValueError(f"two stretches are called {key!r}; give each a unique name or id")
                seen.add(key)
        return stretches


# --- YAML with line numbers ---------------------------------------------------

Path_ = tuple[str | int, ...]


class _SafeLoader(yaml.SafeLoader):
    """SafeLoader that never constructs Python objects from tags."""


def _compose(text: str, source: str) -> yaml.Node | None:
    try:
        loader = _SafeLoader(text)  # the reader rejects non-printable characters already here
    except yaml.reader.ReaderError as exc:
        line = text[: exc.position].count("\n") + 1
        raise RoutineError(f"{source}:{line}: YAML syntax error: character {exc.character!r} is not allowed") from None
    try:
        return loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problem = exc.problem or "invalid YAML"
        raise RoutineError(f"{source}:{line}: YAML syntax error: {problem}") from None
    except yaml.YAMLError as exc:
        raise RoutineError(f"{source}: YAML error: {exc}") from None
    finally:
        loader.dispose()


def _to_python(node: yaml.Node, source: str) -> tuple[Any, dict[Path_, int]]:
    """Convert a composed YAML tree to plain data, recording the line of every path."""
    lines: dict[Path_, int] = {}
    budget = [MAX_YAML_NODES]
    constructor = _SafeLoader("")

    def convert(n: yaml.Node, path: Path_) -> Any:
        budget[0] -= 1
        if budget[0] < 0:
            raise RoutineError(f"{source}:{n.start_mark.line + 1}: too many YAML nodes (aliases expand too far)")
        lines.setdefault(path, n.start_mark.line + 1)
        if n.tag not in _PLAIN_TAGS:
            raise RoutineError(f"{source}:{n.start_mark.line + 1}: {_dotted(path)}: YAML tag {n.tag!r} is not allowed")
        if isinstance(n, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in n.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                    raise RoutineError(f"{source}:{key_node.start_mark.line + 1}: keys must be plain names")
                key = str(key_node.value)
                if key in out:
                    raise RoutineError(f"{source}:{key_node.start_mark.line + 1}: {_dotted(path + (key,))}: duplicate key")
                lines[path + (key,)] = key_node.start_mark.line + 1
                out[key] = convert(value_node, path + (key,))
            return out
        if isinstance(n, yaml.SequenceNode):
            return [convert(item, path + (i,)) for i, item in enumerate(n.value)]
        try:
            return constructor.construct_object(n, deep=True)
        except (yaml.YAMLError, ValueError) as exc:
            raise RoutineError(f"{source}:{n.start_mark.line + 1}: {_dotted(path)}: bad value ({exc})") from None

    try:
        return convert(node, ()), lines
    finally:
        constructor.dispose()


_PLAIN_TAGS = {
    "tag:yaml.org,2002:" + t for t in ("str", "int", "float", "bool", "null", "map", "seq")
}


def _dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _nearest_line(lines: dict[Path_, int], path: Path_) -> int:
    while path and path not in lines:
        path = path[:-1]
    return lines.get(path, 1)


def _fields_at(path: Path_) -> list[str]:
    """The field names allowed at a path, for 'did you mean' suggestions."""
    model: type[BaseModel] | None = Routine
    for part in path:
        if model is None:
            return []
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return []
        annotation = field.annotation
        args = getattr(annotation, "__args__", ())
        candidates = [annotation, *args, *(a for arg in args for a in getattr(arg, "__args__", ()))]
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
    return list(model.model_fields) if model else []


def _describe(error: dict[str, Any], path: Path_) -> str:
    kind = error["type"]
    got = error.get("input")
    ctx = error.get("ctx") or {}
    if kind == "extra_forbidden":
        key = path[-1] if path else "?"
        where = _dotted(path[:-1])
        hint = difflib.get_close_matches(str(key), _fields_at(path[:-1]), n=1)
        suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
        return f"{where}: unknown key {key!r}{suggestion}"
    field = _dotted(path)
    if kind == "missing":
        return f"{field}: required"
    if kind in {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}:
        bound = {"greater_than": "greater than", "greater_than_equal": "at least",
                 "less_than": "less than", "less_than_equal": "at most"}[kind]
        limit = next(iter(ctx.values()), "?")
        return f"{field}: must be {bound} {_num(limit)} (got {got!r})"
    if kind == "too_short":
        return f"{field}: must have at least {ctx.get('min_length', 1)} item(s)"
    if kind == "too_long":
        return f"{field}: must have at most {ctx.get('max_length')} item(s)/characters"
    if kind in {"float_type", "int_type", "float_parsing", "int_from_float", "finite_number"}:
        what = "a whole number" if kind.startswith("int") else "a number of seconds"
        return f"{field}: must be {what} (got {got!r})"
    message = error["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    if kind in {"string_type", "bool_type", "list_type", "dict_type", "model_type"} or "type" in kind:
        return f"{field}: {message[0].lower()}{message[1:]} (got {got!r})"
    return f"{field}: {message[0].lower()}{message[1:]}"


def _num(value: object) -> str:
    """Format a bound without a pointless '.0'."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def _clean_loc(loc: tuple[Any, ...]) -> Path_:
    """Drop pydantic's union-branch markers from an error location."""
    return tuple(p for p in loc if isinstance(p, int) or not _is_branch_tag(p))


def _is_branch_tag(part: str) -> bool:
    # Pydantic names union branches by type ("float", "dict[str,constrained-float]").
    return "[" in part or part.startswith(("constrained-", "function-")) or part in _TYPE_NAMES


_TYPE_NAMES = {"float", "int", "str", "bool", "none", "list", "dict"}


def parse_routine(text: str, source: str = "<routine>") -> Routine:
    """Validate routine YAML text; raise RoutineError naming source, line and field."""
    if "\x00" in text:
        raise RoutineError(f"{source}:1: not a text file (contains NUL bytes)")
    node = _compose(text, source)
    if node is None:
        raise RoutineError(f"{source}:1: the file is empty; a routine needs 'name' and 'stretches'")
    data, lines = _to_python(node, source)
    if not isinstance(data, dict):
        raise RoutineError(f"{source}:1: a routine must be a mapping with 'name' and 'stretches'")
    try:
        return Routine.model_validate(data)
    except ValidationError as exc:
        # Report one error, the most specific (deepest) one: inside a union
        # ("a number, or a mapping of side to number") the deeper branch is
        # the one the user meant. One clear line beats a wall of them.
        errors = exc.errors(include_url=False)
        # At equal depth an unknown key explains more than a missing one ("hodl" is why "hold" is missing).
        error = max(errors, key=lambda e: (len(_clean_loc(e["loc"])), e["type"] == "extra_forbidden"))
        path = _clean_loc(error["loc"])
        raise RoutineError(f"{source}:{_nearest_line(lines, path)}: {_describe(dict(error), path)}") from None


def load_routine_file(path: str | Path) -> Routine:
    """Read and validate a routine file."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise RoutineError(f"{path}: no such routine file") from None
    except IsADirectoryError:
        raise RoutineError(f"{path}: is a directory, not a routine file") from None
    except OSError as exc:
        raise RoutineError(f"{path}: cannot read ({exc.strerror})") from None
    if b"\x00" in raw[:4096]:
        raise RoutineError(f"{path}:1: not a text file (contains NUL bytes; routines are UTF-8 YAML)")
    if len(raw) > MAX_FILE_BYTES:
        raise RoutineError(f"{path}:1: file is larger than {MAX_FILE_BYTES // 1000} kB; not a routine")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise RoutineError(f"{path}:{line}: not UTF-8 text (byte {exc.start})") from None
    return parse_routine(text, str(path))


# --- Schema and starter ------------------------------------------------------


def routine_schema() -> dict[str, Any]:
    """JSON Schema of a routine file."""
    schema = Routine.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "voiceguide routine"
    return schema


STARTER = """\
# A voiceguide routine. Render it with:  voiceguide render {file}
# Every key is documented in the README; `voiceguide schema` gives editors a schema.
name: {name}
description: A short routine to start from.
intro: Welcome. Two stretches, each held for thirty seconds.

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

DEFAULT_ROUTINE = "psoas"


def builtin_names() -> list[str]:
    """Names of the routines shipped with voiceguide."""
    folder = resources.files("voiceguide") / "routines"
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_builtin(name: str) -> Routine:
    """Load a built-in routine by name."""
    if name not in builtin_names():
        choices = ", ".join(builtin_names())
        raise RoutineError(f"{name}: no such routine file or built-in routine (built-ins: {choices})")
    resource = resources.files("voiceguide") / "routines" / f"{name}.yaml"
    return parse_routine(resource.read_text(encoding="utf-8"), f"{name} (built-in)")


def resolve_routine(spec: str | Path) -> tuple[Routine, str]:
    """Load ROUTINE given as a file path or a built-in name; also return a base name for output."""
    text = str(spec)
    path = Path(text)
    if path.suffix.lower() in {".yaml", ".yml"} or path.exists() or "/" in text:
        return load_routine_file(path), path.stem
    return load_builtin(text), text
