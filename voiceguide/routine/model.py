"""The routine models: strict, frozen, unknown keys rejected."""

# No `from __future__ import annotations` here or in voice.py: msgspec would have to evaluate every
# annotation from its text on the first decode (2-3 ms of each command that reads a routine).
from typing import Annotated, Any

import msgspec
import msgspec.structs
from msgspec import Meta

from voiceguide.routine.text import label_problem, spoken_problem, template_problem
from voiceguide.routine.voice import VoiceSettings

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
StretchId = Annotated[str, Meta(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=60)]


class _Model(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Strict, frozen, unknown keys rejected. NaN never passes: every number has bounds."""


class _FieldProblem(ValueError):
    """A cross-field check failing on one field: the message starts with '@field:' so it can be located."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"@{field}: {message}")


def _check(field: str, text: str | None, problem: Any) -> None:
    """Raise a _FieldProblem on ``field`` if ``problem(text)`` finds one."""
    found = problem(text) if text is not None else None
    if found:
        raise _FieldProblem(field, found)


# The placeholders each phrase template may use (the others are said as written).
TEMPLATES: dict[str, tuple[str, ...]] = {"side": ("side",), "first_up": ("name",), "next_up": ("name",),
                                        "round": ("n", "total"), "time_left": ("seconds",)}


class Phrases(_Model, frozen=True, kw_only=True):
    """Every fixed phrase, so a routine can be written in another language."""

    hold: Text = "Hold."
    get_ready: Text = "Get into position."
    side: Annotated[Text, Meta(description="Announces a side; {side} is its label.")] = "{side} side."
    switch_sides: Text = "Switch sides."
    halfway: Text = "Halfway."
    breathe: Text = "Breathe."
    first_up: Annotated[Text, Meta(
        description="Names the first stretch after the introduction; {name} is its name.")] = "First: {name}."
    next_up: Annotated[Text, Meta(
        description="Opens the rest before a stretch (its instructions follow); {name} is its name.")] = \
        "Next up: {name}."
    release: Annotated[Text, Meta(description="Said the moment a hold ends; empty for none.")] = "And release."
    time_left: Annotated[Text, Meta(description="Paces a long hold; {seconds} is the time left.")] = "{seconds} seconds left."
    round: Annotated[Text, Meta(description="{n} and {total} are filled in.")] = "Round {n} of {total}."
    numbers: Annotated[list[Text], Meta(
        description="Words for the countdown numbers 1, 2, 3...; digits are spoken when empty.")] = \
        msgspec.field(default_factory=list)
    session_end: Text = "That's the end of the session. Well done."

    def __post_init__(self) -> None:
        for name in self.__struct_fields__:
            value = getattr(self, name)
            if name in TEMPLATES:
                _check(name, value, lambda text, name=name: template_problem(text, TEMPLATES[name]))
            elif isinstance(value, str):
                _check(name, value, spoken_problem)
        for index, word in enumerate(self.numbers, 1):
            _check(f"numbers.{index - 1}", word, lambda text, n=index: spoken_problem(text) or (
                None if text else f"the word for {n} must not be empty"))

    def number(self, n: int) -> str:
        """The spoken word for countdown number ``n``."""
        return self.numbers[n - 1] if n <= len(self.numbers) else str(n)


class Cue(_Model, frozen=True, kw_only=True):
    """A coaching line spoken during a hold."""

    at: Annotated[float, Meta(ge=-MAX_HOLD_SECONDS, le=MAX_HOLD_SECONDS,
                              description="Seconds into the hold; negative counts back from its end.")]
    say: SpokenText

    def __post_init__(self) -> None:
        _check("say", self.say, spoken_problem)


class Defaults(_Model, frozen=True, kw_only=True):
    """Settings every stretch inherits unless it overrides them."""

    hold: Annotated[PositiveSeconds, Meta(description="Seconds each hold lasts.")] = 30.0
    rest: Annotated[Seconds, Meta(description="Seconds between stretches (and between rounds).")] = 5.0
    prepare: Annotated[Seconds, Meta(description="Seconds to get into position before the hold.")] = 3.0
    switch: Annotated[Seconds, Meta(description="Seconds to change position between sides.")] = 3.0
    countdown: Annotated[int, Meta(ge=0, le=10, description="Spoken countdown length at the end of a hold; 0 = none.")] = 3
    halfway: Annotated[bool, Meta(description="Say the halfway phrase in the middle of each hold.")] = False
    breathe: Annotated[PositiveSeconds | None, Meta(description="Say the breathe phrase every N seconds of a hold.")] = None
    repeat: Annotated[int, Meta(ge=1, le=20, description="Rounds of each stretch (all its sides).")] = 1
    tones: Annotated[bool, Meta(
        description="Chime when a hold starts and ends, and ring a bell at the end of the session.")] = False
    pause: Annotated[float, Meta(ge=0.2, le=5, description="Seconds of quiet between consecutive lines (a breath).")] = 0.7
    max_silence: Annotated[float, Meta(ge=5, le=MAX_HOLD_SECONDS, description=(
        "Longest silence inside a hold: longer holds get paced cues (coaching lines, time left, breathing)."))] | None = 25.0


class Stretch(_Model, frozen=True, kw_only=True):
    """One stretch: spoken instructions, then a hold per side (per round)."""

    id: StretchId | None = None
    name: Name
    instructions: Text | None = None
    caution: Annotated[Text | None, Meta(description="Spoken after the instructions: when to take care or skip it.")] = None
    sides: Annotated[list[Label], Meta(min_length=1, max_length=8)] | None = None
    side_label: Annotated[Text | None, Meta(
        description="How each side is announced, e.g. '{side} leg back'; {side} is the side.")] = None
    hold: Annotated[PositiveSeconds | dict[str, float] | None, Meta(
        description="Seconds of each hold, or a mapping of side label to seconds.")] = None
    rest: Seconds | None = None
    prepare: Seconds | None = None
    switch: Seconds | None = None
    countdown: Annotated[int, Meta(ge=0, le=10)] | None = None
    halfway: bool | None = None
    breathe: PositiveSeconds | None = None
    repeat: Annotated[int, Meta(ge=1, le=20)] | None = None
    cues: Annotated[list[Cue], Meta(max_length=50)] = msgspec.field(default_factory=list)
    coaching: Annotated[Annotated[list[SpokenText], Meta(max_length=20)], Meta(
        description="Coaching lines without a time: spread through the hold (library stretches bring theirs).")] = \
        msgspec.field(default_factory=list)

    def __post_init__(self) -> None:
        _check("name", self.name, label_problem)
        _check("instructions", self.instructions, spoken_problem)
        _check("caution", self.caution, spoken_problem)
        for index, line in enumerate(self.coaching):
            _check(f"coaching.{index}", line, spoken_problem)
        _check("side_label", self.side_label, label_problem)
        for index, side in enumerate(self.sides or []):
            _check(f"sides.{index}", side, label_problem)
        if self.sides is not None and len(set(self.sides)) != len(self.sides):
            raise _FieldProblem("sides", f"side labels must be unique (got {self.sides})")
        if self.side_label is not None and (problem := template_problem(self.side_label, ("side",))):
            raise _FieldProblem("side_label", problem)
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


class Routine(_Model, frozen=True, kw_only=True):
    """A whole session: an introduction, stretches in order, a closing line."""

    name: Name
    description: Text | None = None
    intro: Annotated[Text | None, Meta(description="Spoken first; defaults to the routine's name.")] = None
    closing: Annotated[Text | None, Meta(description="Spoken last, before the session-end phrase.")] = None
    defaults: Defaults = msgspec.field(default_factory=Defaults)
    voice: VoiceSettings = msgspec.field(default_factory=VoiceSettings)
    phrases: Phrases = msgspec.field(default_factory=Phrases)
    music: Annotated[Annotated[list[Text], Meta(max_length=20)] | None, Meta(
        description="Background music files (paths relative to the routine file), played in turn.")] = None
    stretches: Annotated[list[Stretch], Meta(min_length=1, max_length=MAX_STRETCHES)]

    def __post_init__(self) -> None:
        _check("name", self.name, label_problem)
        _check("intro", self.intro, spoken_problem)
        _check("closing", self.closing, spoken_problem)
        seen: set[str] = set()
        for stretch in self.stretches:
            for key in {stretch.name.casefold(), (stretch.id or stretch.name).casefold()}:
                if key in seen:
                    raise _FieldProblem("stretches", f"two stretches are called {key!r}; give each a unique name or id")
                seen.add(key)


# Which model each nested field holds, for "did you mean" suggestions.
_NESTED: dict[type[msgspec.Struct], dict[str, type[msgspec.Struct]]] = {
    Routine: {"defaults": Defaults, "voice": VoiceSettings, "phrases": Phrases, "stretches": Stretch},
    Stretch: {"cues": Cue},
}


# --- YAML with line numbers ---------------------------------------------------

Path_ = tuple[str | int, ...]


def _dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _num(value: object) -> str:
    """Format a bound without a pointless '.0'."""
    return f"{value:g}" if isinstance(value, float) else str(value)
