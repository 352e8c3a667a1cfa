"""The cue script's types: what a line is, why it is said, and the blocks of time it sits in.

Roles and kinds are ``str`` enums, so they compare equal to (and print as)
the strings the plan JSON and sidecars have always carried. A tone is its own
type, never text: nothing a routine says can be mistaken for one.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from voiceguide.plan.tones import Tone
from voiceguide.routine.text import plain_text


class _Word(str, Enum):
    """A str enum that prints as its value (Python 3.10 has no enum.StrEnum)."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class Role(_Word):
    """Why a line is said."""

    INTRO = "intro"
    TITLE = "title"
    INSTRUCTIONS = "instructions"
    ROUND = "round"
    SIDE = "side"
    GET_READY = "get_ready"
    SWITCH = "switch"
    START = "start"
    HALFWAY = "halfway"
    BREATHE = "breathe"
    COUNT = "count"
    COACHING = "coaching"
    NEXT_UP = "next_up"
    CLOSING = "closing"
    TONE = "tone"
    PREVIEW = "preview"
    RELEASE = "release"
    TIME_LEFT = "time_left"
    CAUTION = "caution"


class Kind(_Word):
    """What an event of the plan is: a spoken line, or a window of fixed length."""

    SPEECH = "speech"
    HOLD = "hold"
    REST = "rest"
    PREPARE = "prepare"
    SWITCH = "switch"


PAUSE_AFTER_LINE = 0.7  # seconds of quiet after each spoken line: a breath (routines set it as defaults.pause)

Say = str | Tone  # what a line makes heard: words for the speech engine, or a generated tone


@dataclass(frozen=True)
class Line:
    """One spoken line (or tone) and why it is said."""

    text: Say
    role: Role

    def __post_init__(self) -> None:
        if isinstance(self.text, str):
            object.__setattr__(self, "text", plain_text(self.text))
        object.__setattr__(self, "role", Role(self.role))


@dataclass(frozen=True)
class Place:
    """Where a block belongs: which stretch, side and round (all None for intro and closing)."""

    chapter: str
    stretch: str | None = None
    side: str | None = None
    round: int | None = None


@dataclass(frozen=True)
class SpeechBlock:
    """Lines said one after another; the block lasts as long as they take."""

    lines: tuple[Line, ...]
    place: Place
    min_seconds: float = 0.0  # a rest that carries speech lasts at least this long
    span: Kind | None = None  # the block is also a span of this kind (a rest) in the plan
    pause: float = PAUSE_AFTER_LINE  # seconds of quiet after each line: a breath between them


@dataclass(frozen=True)
class TimedLine:
    """A line said at a fixed offset into a window; optional lines are dropped if they don't fit."""

    at: float
    line: Line
    required: bool = True
    # How many seconds the line may take at most (a countdown number has one second).
    slot: float | None = None


@dataclass(frozen=True)
class Window:
    """A fixed stretch of time (a hold, rest or gap) with lines at offsets inside it."""

    kind: Kind
    seconds: float
    cues: tuple[TimedLine, ...]
    place: Place


Block = SpeechBlock | Window


@dataclass(frozen=True)
class CueScript:
    """The routine as a sequence of blocks."""

    routine: str
    blocks: tuple[Block, ...]
