"""Routine files: strict models, safe YAML loading and built-in routines.

A routine file is validated here, at the boundary, into frozen models that
reject unknown keys; everything downstream sees only valid data. Every error
names the file, the line and the field: ``my.yaml:14: stretches[1].hold: ...``.
"""

from __future__ import annotations

import difflib
import hashlib
import math
import re
from pathlib import Path
from typing import Annotated, Any

import msgspec
import msgspec.structs
from msgspec import Meta

from voiceguide.errors import RoutineError

MAX_FILE_BYTES = 1_000_000
MAX_YAML_NODES = 50_000  # bounds alias expansion ("billion laughs")
MAX_HOLD_SECONDS = 3600.0
MAX_LINE_CHARS = 1000
MAX_STRETCHES = 200

Seconds = Annotated[float, Meta(ge=0, le=MAX_HOLD_SECONDS)]
PositiveSeconds = Annotated[float, Meta(gt=0, le=MAX_HOLD_SECONDS)]
Text = Annotated[str, Meta(max_length=MAX_LINE_CHARS)]
SpokenText = Annotated[str, Meta(min_length=1, max_length=MAX_LINE_CHARS)]
Label = Annotated[str, Meta(min_length=1, max_length=60)]
Name = Annotated[str, Meta(min_length=1, max_length=120)]


def _described(kind: Any, description: str) -> Any:
    return Annotated[kind, Meta(description=description)]


class _Model(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Strict, frozen, unknown keys rejected. NaN never passes: every number has bounds."""


class _FieldProblem(ValueError):
    """A cross-field check failing on one field: the message starts with '@field:' so it can be located."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"@{field}: {message}")


class Voice(_Model, kw_only=True):
    """How lines are spoken; every field is optional and falls back to the engine's default."""

    id: _described(str | None, "Engine voice id, e.g. 'gmw/en-us' (see `voiceguide voices`).") = None
    language: _described(str | None, "Language code, e.g. 'en-us'; picks a matching voice.") = None
    rate: Annotated[int, Meta(ge=80, le=450, description="Speaking rate in words per minute.")] | None = None
    volume: Annotated[float, Meta(ge=0, le=1, description="Engine volume, 0 to 1.")] | None = None
    pitch: Annotated[int, Meta(ge=0, le=100, description="Voice pitch, 0 to 100 (espeak's default is 50).")] | None = None


class Phrases(_Model, kw_only=True):
    """Every fixed phrase, so a routine can be written in another language."""

    hold: Text = "Hold."
    get_ready: Text = "Get into position."
    side: _described(Text, "Announces a side; {side} is its label.") = "{side} side."
    switch_sides: Text = "Switch sides."
    halfway: Text = "Halfway."
    breathe: Text = "Breathe."
    next_up: _described(Text, "Spoken during the rest; {name} is the next stretch.") = "Next up: {name}."
    round: _described(Text, "{n} and {total} are filled in.") = "Round {n} of {total}."
    numbers: _described(list[Text], "Words for the countdown numbers 1, 2, 3...; digits are spoken when empty.") = \
        msgspec.field(default_factory=list)
    session_end: Text = "That's the end of the session. Well done."

    def number(self, n: int) -> str:
        """The spoken word for countdown number ``n``."""
        return self.numbers[n - 1] if n <= len(self.numbers) else str(n)


class Cue(_Model, kw_only=True):
    """A coaching line spoken during a hold."""

    at: Annotated[float, Meta(ge=-MAX_HOLD_SECONDS, le=MAX_HOLD_SECONDS,
                              description="Seconds into the hold; negative counts back from its end.")]
    say: SpokenText


class Defaults(_Model, kw_only=True):
    """Settings every stretch inherits unless it overrides them."""

    hold: _described(PositiveSeconds, "Seconds each hold lasts.") = 30.0
    rest: _described(Seconds, "Seconds between stretches (and between rounds).") = 5.0
    prepare: _described(Seconds, "Seconds to get into position before the hold.") = 3.0
    switch: _described(Seconds, "Seconds to change position between sides.") = 3.0
    countdown: Annotated[int, Meta(ge=0, le=10, description="Spoken countdown length at the end of a hold; 0 = none.")] = 3
    halfway: _described(bool, "Say the halfway phrase in the middle of each hold.") = False
    breathe: _described(PositiveSeconds | None, "Say the breathe phrase every N seconds of a hold.") = None
    repeat: Annotated[int, Meta(ge=1, le=20, description="Rounds of each stretch (all its sides).")] = 1
    tones: _described(bool, "Chime when a hold starts and ends, and ring a bell at the end of the session.") = False


class Stretch(_Model, kw_only=True):
    """One stretch: spoken instructions, then a hold per side (per round)."""

    id: Annotated[str, Meta(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=60)] | None = None
    name: Name
    instructions: Text | None = None
    sides: Annotated[list[Label], Meta(min_length=1, max_length=8)] | None = None
    hold: _described(PositiveSeconds | dict[str, float] | None,
                     "Seconds of each hold, or a mapping of side label to seconds.") = None
    rest: Seconds | None = None
    prepare: Seconds | None = None
    switch: Seconds | None = None
    countdown: Annotated[int, Meta(ge=0, le=10)] | None = None
    halfway: bool | None = None
    breathe: PositiveSeconds | None = None
    repeat: Annotated[int, Meta(ge=1, le=20)] | None = None
    cues: Annotated[list[Cue], Meta(max_length=50)] = msgspec.field(default_factory=list)

    def __post_init__(self) -> None:
        if self.sides is not None and len(set(self.sides)) != len(self.sides):
            raise _FieldProblem("sides", f"side labels must be unique (got {self.sides})")
        if isinstance(self.hold, dict):
            for side, seconds in self.hold.items():
                if not 0 < seconds <= MAX_HOLD_SECONDS:  # also false for NaN
                    bound = "greater than 0" if not seconds > 0 else f"at most {MAX_HOLD_SECONDS:g}"
                    raise _FieldProblem(f"hold.{side}", f"must be {bound} (got {_num(seconds)})")
            if not self.sides:
                raise _FieldProblem("hold", "a per-side hold needs 'sides'")
            if set(self.hold) != set(self.sides):
                raise _FieldProblem("hold", f"per-side hold must name exactly the sides {self.sides} (got {list(self.hold)})")

    @property
    def key(self) -> str:
        """The id if given, else the name: how the CLI refers to this stretch."""
        return self.id or self.name


class Routine(_Model, kw_only=True):
    """A whole session: an introduction, stretches in order, a closing line."""

    name: Name
    description: Text | None = None
    intro: _described(Text | None, "Spoken first; defaults to the routine's name.") = None
    closing: _described(Text | None, "Spoken last, before the session-end phrase.") = None
    defaults: Defaults = msgspec.field(default_factory=Defaults)
    voice: Voice = msgspec.field(default_factory=Voice)
    phrases: Phrases = msgspec.field(default_factory=Phrases)
    music: _described(Annotated[list[Text], Meta(max_length=20)] | None,
                      "Background music files (paths relative to the routine file), played in turn.") = None
    stretches: Annotated[list[Stretch], Meta(min_length=1, max_length=MAX_STRETCHES)]

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for stretch in self.stretches:
            for key in {stretch.name.casefold(), (stretch.id or stretch.name).casefold()}:
                if key in seen:
                    raise _FieldProblem("stretches", f"two stretches are called {key!r}; give each a unique name or id")
                seen.add(key)


# Which model each nested field holds, for "did you mean" suggestions.
_NESTED: dict[type[_Model], dict[str, type[_Model]]] = {
    Routine: {"defaults": Defaults, "voice": Voice, "phrases": Phrases, "stretches": Stretch},
    Stretch: {"cues": Cue},
}


# --- YAML with line numbers ---------------------------------------------------

Path_ = tuple[str | int, ...]


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
    model: type[_Model] | None = Routine
    for part in path:
        if isinstance(part, int) or model is None:
            continue
        model = _NESTED.get(model, {}).get(part)
    return list(model.__struct_fields__) if model else []


_LOCATION = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_PATH_PART = re.compile(r"\.([A-Za-z_][\w-]*)|\[(\d+)\]|\[\.\.\.\]")
_BOUND = re.compile(r"^Expected `(?P<kind>\w+)` (?P<op>>=|<=|>|<) (?P<limit>\S+)$")
_LENGTH = re.compile(r"^Expected `(?P<kind>\w+)` of length (?P<op>>=|<=) (?P<limit>\d+)$")
_TYPE = re.compile(r"^Expected `(?P<expected>[^`]+)`, got `(?P<got>\w+)`$")
_BOUND_WORDS = {">": "greater than", ">=": "at least", "<": "less than", "<=": "at most"}
_TYPE_WORDS = {"float": "a number of seconds", "int": "a whole number", "str": "text", "bool": "true or false",
               "array": "a list", "object": "a mapping"}


def _split_error(text: str) -> tuple[str, Path_]:
    """msgspec's 'Expected ... - at `$.a[0].b`' -> (message, ('a', 0, 'b'))."""
    match = _LOCATION.match(text)
    assert match is not None  # the pattern matches any text
    path: list[str | int] = []
    for name, index in _PATH_PART.findall(match["path"] or ""):
        if name:
            path.append(name)
        elif index:
            path.append(int(index))
        # "[...]" is a mapping value: its key is unknown, so the mapping itself is reported
    message = match["message"]
    if message.startswith("@"):  # a cross-field check naming its field (_FieldProblem)
        field, _, message = message[1:].partition(": ")
        path += field.split(".")
    return message, tuple(path)


def _at(data: Any, path: Path_) -> Any:
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _describe(message: str, path: Path_, data: Any) -> tuple[str, Path_]:
    """One of our messages for a msgspec error, and the path to report it at."""
    if found := re.match(r"Object contains unknown field `(.*)`$", message):
        key = found[1]
        hint = difflib.get_close_matches(key, _fields_at(path), n=1)
        suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
        return f"{_dotted(path)}: unknown key {key!r}{suggestion}", path + (key,)
    if found := re.match(r"Object missing required field `(.*)`$", message):
        path += (found[1],)
        return f"{_dotted(path)}: required", path
    field = _dotted(path)
    got = _at(data, path)
    if isinstance(got, float) and math.isnan(got):
        return f"{field}: must be a number (got nan)", path
    if found := _BOUND.match(message):
        return f"{field}: must be {_BOUND_WORDS[found['op']]} {_num(float(found['limit']))} (got {got!r})", path
    if found := _LENGTH.match(message):
        unit = "characters" if found["kind"] == "str" else "item(s)"
        if found["kind"] == "str" and found["op"] == ">=":
            return f"{field}: must not be empty", path
        least = "at least" if found["op"] == ">=" else "at most"
        return f"{field}: must have {least} {found['limit']} {unit}", path
    if found := re.match(r"Expected `str` matching regex '(.*)'$", message):
        return f"{field}: must be lowercase letters, digits, '-' and '_' (got {got!r})", path
    if found := _TYPE.match(message):
        wanted = [kind for kind in found["expected"].split(" | ") if kind != "null"]
        words = " or ".join(_TYPE_WORDS.get(kind, kind) for kind in wanted)
        if wanted == ["float", "object"]:
            words = "a number of seconds, or a mapping of side to seconds"
        return f"{field}: must be {words} (got {got!r})", path
    return f"{field}: {message[:1].lower()}{message[1:]}", path


def _num(value: object) -> str:
    """Format a bound without a pointless '.0'."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def parse_routine(text: str, source: str = "<routine>") -> Routine:
    """Validate routine YAML text; raise RoutineError naming source, line and field."""
    if "\x00" in text:
        raise RoutineError(f"{source}:1: not a text file (contains NUL bytes)")
    from voiceguide.safeyaml import compose, to_python  # PyYAML loads only when a file must be parsed

    node = compose(text, source)
    if node is None:
        raise RoutineError(f"{source}:1: the file is empty; a routine needs 'name' and 'stretches'")
    data, lines = to_python(node, source)
    if not isinstance(data, dict):
        raise RoutineError(f"{source}:1: a routine must be a mapping with 'name' and 'stretches'")
    try:
        return msgspec.convert(data, Routine, strict=True)
    except msgspec.ValidationError as exc:
        message, path = _split_error(str(exc))
        described, where = _describe(message, path, data)
        raise RoutineError(f"{source}:{_nearest_line(lines, where)}: {described}") from None


# A parsed routine is remembered (as msgspec JSON, validated again on the way back in) under the hash
# of its text and of this module, so PyYAML is not even imported for a routine seen before.
_MODEL_STAMP = hashlib.sha256(Path(__file__).read_bytes() + msgspec.__version__.encode()).digest()


def parse_routine_cached(text: str, source: str = "<routine>") -> Routine:
    """parse_routine, remembering valid routines in the cache (invalid ones are never stored)."""
    from voiceguide.host import default_cache_dir, recall, remember

    folder, key = default_cache_dir(), hashlib.sha256(_MODEL_STAMP + text.encode()).hexdigest()
    known = recall(folder, "routines", key)
    if known is not None:
        try:
            return msgspec.json.decode(known, type=Routine, strict=True)
        except (msgspec.ValidationError, msgspec.DecodeError):
            pass  # stale or damaged: parse again
    routine = parse_routine(text, source)
    remember(folder, "routines", key, msgspec.json.encode(routine))
    return routine


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
    routine = parse_routine_cached(text, str(path))
    if routine.music:  # music is named relative to the routine file
        routine = msgspec.structs.replace(routine, music=[str(path.parent / name) for name in routine.music])
    return routine


# --- Schema and starter ------------------------------------------------------


def routine_schema() -> dict[str, Any]:
    """JSON Schema of a routine file."""
    generated = msgspec.json.schema(Routine)
    definitions = generated["$defs"]
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **definitions.pop("Routine")}
    schema["title"] = "voiceguide routine"
    schema["$defs"] = definitions
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
ROUTINES_DIR = Path(__file__).with_name("routines")  # package data (importlib.resources costs ~5 ms of start-up)


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
