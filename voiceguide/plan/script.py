"""The cue script: what is said, in order, and which windows of time are fixed.

A routine (plus options from the command line) becomes a flat sequence of
blocks. A :class:`SpeechBlock` lasts as long as its lines take to say; a
:class:`Window` (hold, rest, prepare, switch) lasts exactly its seconds, with
lines placed at offsets inside it. No audio and no sample arithmetic here: the
timeline turns blocks into exact times once speech durations are known.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from voiceguide.errors import OptionError, PlanError
from voiceguide.plan.options import ScriptOptions
from voiceguide.routine.model import MAX_HOLD_SECONDS, Routine, Stretch
from voiceguide.routine.text import plain_text

# Roles a spoken line can have; the timeline and sidecars carry them along.
INTRO, TITLE, INSTRUCTIONS, ROUND, SIDE, GET_READY, SWITCH = (
    "intro", "title", "instructions", "round", "side", "get_ready", "switch")
START, HALFWAY, BREATHE, COUNT, COACHING, NEXT_UP, CLOSING = (
    "start", "halfway", "breathe", "count", "coaching", "next_up", "closing")

TONE = "tone"

HOLD, REST, PREPARE, SWITCH_GAP = "hold", "rest", "prepare", "switch"


@dataclass(frozen=True)
class Line:
    """One spoken line and why it is said."""

    text: str
    role: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", plain_text(self.text))


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

    kind: str
    seconds: float
    cues: tuple[TimedLine, ...]
    place: Place


Block = SpeechBlock | Window


@dataclass(frozen=True)
class CueScript:
    """The routine as a sequence of blocks."""

    routine: str
    blocks: tuple[Block, ...]


def check_script(routine: Routine, options: ScriptOptions) -> None:
    """What the options mean for this routine: stretch names that exist, and holds within the limit once scaled."""
    keys = {s.key.casefold(): s for s in routine.stretches} | {s.name.casefold(): s for s in routine.stretches}
    for name in options.holds:
        if name.casefold() not in keys:
            names = ", ".join(repr(s.key) for s in routine.stretches)
            raise OptionError(f"--hold: no stretch called {name!r} in {routine.name!r} (stretches: {names})")
    for stretch in routine.stretches:
        for side in stretch.sides or [None]:
            seconds = hold_seconds(routine, stretch, side, options)
            if not 0 < seconds <= MAX_HOLD_SECONDS:
                what = f"{stretch.name} ({side})" if side else stretch.name
                raise OptionError(f"--hold-scale: {options.hold_scale:g} makes the hold of {what!r} {seconds:g} s; "
                                  f"holds must be more than 0 and at most {MAX_HOLD_SECONDS:g} s")


def hold_seconds(routine: Routine, stretch: Stretch, side: str | None, options: ScriptOptions) -> float:
    """The hold length of one side of a stretch after every override is applied."""
    by_key = {k.casefold(): v for k, v in options.holds.items()}
    explicit = by_key.get(stretch.key.casefold(), by_key.get(stretch.name.casefold()))
    if explicit is not None:
        base = explicit
    elif options.hold is not None:
        base = options.hold
    elif isinstance(stretch.hold, dict):
        base = stretch.hold[side] if side is not None else min(stretch.hold.values())
    elif stretch.hold is not None:
        base = stretch.hold
    else:
        base = routine.defaults.hold
    # Round to the millisecond so scaled holds stay readable and exact in samples.
    return round(max(base * options.hold_scale, min(base, options.hold_floor)), 3)


def longest_hold(routine: Routine, options: ScriptOptions) -> float:
    """The longest hold before scaling (what bounds the scale a routine can take)."""
    unscaled = replace(options, hold_scale=1.0, hold_floor=0.0)
    return max(hold_seconds(routine, stretch, side, unscaled)
               for stretch in routine.stretches for side in stretch.sides or [None])


def ordered_sides(sides: list[str] | None, order: str) -> list[str | None]:
    """The sides of a stretch in the order they are held."""
    if not sides:
        return [None]
    if order == "reversed":
        return list(reversed(sides))
    if order in {"right-first", "left-first"}:
        first = order.split("-")[0]
        return sorted(sides, key=lambda s: s.casefold() != first)
    return list(sides)


def _chapter_title(stretch: Stretch, side: str | None, round_: int, rounds: int) -> str:
    details = [d for d in (side, f"round {round_}" if rounds > 1 else None) if d]
    return f"{stretch.name} ({', '.join(details)})" if details else stretch.name


def _hold_cues(routine: Routine, stretch: Stretch, seconds: float, countdown: int, halfway: bool,
               where: str) -> tuple[TimedLine, ...]:
    phrases = routine.phrases
    breathe = stretch.breathe if stretch.breathe is not None else routine.defaults.breathe
    cues: list[TimedLine] = []
    if phrases.hold:
        cues.append(TimedLine(0.0, Line(phrases.hold, START)))
    if countdown > seconds:
        raise PlanError(f"{where}: a countdown of {countdown} is longer than the {seconds:g} s hold; "
                        "shorten the countdown or lengthen the hold")
    for n in range(countdown, 0, -1):
        cues.append(TimedLine(seconds - n, Line(phrases.number(n), COUNT), slot=1.0))
    for cue in stretch.cues:
        at = cue.at if cue.at >= 0 else seconds + cue.at
        if not 0 <= at < seconds:
            raise PlanError(f"{where}: coaching cue {cue.say!r} at {cue.at:g} s is outside the {seconds:g} s hold")
        cues.append(TimedLine(at, Line(cue.say, COACHING)))
    if halfway and phrases.halfway:
        cues.append(TimedLine(seconds / 2, Line(phrases.halfway, HALFWAY), required=False))
    if breathe and phrases.breathe:
        at = breathe
        while at < seconds - countdown - 1:
            cues.append(TimedLine(at, Line(phrases.breathe, BREATHE), required=False))
            at += breathe
    return tuple(sorted(cues, key=lambda c: c.at))


def _setting(stretch: Stretch, routine: Routine, name: str) -> float:
    value = getattr(stretch, name)
    return getattr(routine.defaults, name) if value is None else value


def build_script(routine: Routine, options: ScriptOptions | None = None) -> CueScript:
    """Turn a validated routine into the ordered blocks of a session."""
    options = options or ScriptOptions()
    check_script(routine, options)
    phrases = routine.phrases
    blocks: list[Block] = [SpeechBlock((Line(routine.intro or routine.name, INTRO),), Place("Introduction"))]

    for index, stretch in enumerate(routine.stretches):
        rounds = stretch.repeat or routine.defaults.repeat
        rest = options.rest if options.rest is not None else _setting(stretch, routine, "rest")
        countdown = options.countdown if options.countdown is not None else int(_setting(stretch, routine, "countdown"))
        halfway = bool(_setting(stretch, routine, "halfway")) if options.halfway is None else options.halfway
        sides = ordered_sides(stretch.sides, options.side_order)
        for round_ in range(1, rounds + 1):
            for side_index, side in enumerate(sides):
                place = Place(_chapter_title(stretch, side, round_, rounds), stretch.name, side, round_)
                where = place.chapter
                first_of_round = side_index == 0
                # Rest before every stretch but the first, and between rounds, with a preview of what comes.
                if first_of_round and (index > 0 or round_ > 1) and rest > 0:
                    preview = phrases.next_up.format(name=stretch.name) if round_ == 1 else ""
                    cues = (TimedLine(0.0, Line(preview, NEXT_UP)),) if preview else ()
                    blocks.append(Window(REST, rest, cues, place))
                lines: list[Line] = []
                if first_of_round and round_ == 1:
                    lines.append(Line(stretch.name + ".", TITLE))
                    if stretch.instructions:
                        lines.append(Line(stretch.instructions, INSTRUCTIONS))
                if first_of_round and rounds > 1 and phrases.round:
                    lines.append(Line(phrases.round.format(n=round_, total=rounds), ROUND))
                if not first_of_round and phrases.switch_sides:
                    lines.append(Line(phrases.switch_sides, SWITCH))
                if side is not None and phrases.side:
                    lines.append(Line(phrases.side.format(side=side[:1].upper() + side[1:]), SIDE))
                if first_of_round and phrases.get_ready:
                    lines.append(Line(phrases.get_ready, GET_READY))
                if lines:
                    blocks.append(SpeechBlock(tuple(lines), place))
                gap_kind = PREPARE if first_of_round else SWITCH_GAP
                gap = _setting(stretch, routine, "prepare" if first_of_round else "switch")
                if gap > 0:
                    blocks.append(Window(gap_kind, gap, (), place))
                seconds = hold_seconds(routine, stretch, side, options)
                cues = _hold_cues(routine, stretch, seconds, countdown, halfway, where)
                blocks.append(Window(HOLD, seconds, cues, place))

    closing = tuple(Line(text, CLOSING) for text in (routine.closing, phrases.session_end) if text)
    if closing:
        blocks.append(SpeechBlock(closing, Place("Closing")))
    tones = routine.defaults.tones if options.tones is None else options.tones
    return CueScript(routine.name, _with_tones(blocks) if tones else tuple(blocks))


def _with_tones(blocks: list[Block]) -> tuple[Block, ...]:
    """Chime at every hold's first sample and at the sample it ends; a bell to close the session.

    A line planned for the same moment (the "Hold." cue, "Switch sides.",
    "Next up") follows right after its chime.
    """
    from voiceguide.plan.tones import HOLD_END, HOLD_START, SESSION_END, tone_seconds, tone_text

    def chime_then(window: Window, name: str) -> Window:
        after = round(tone_seconds(name) + 0.1, 3)
        moved = tuple(replace(c, at=after) if c.at < after and c.line.role != COUNT else c for c in window.cues)
        return replace(window, cues=(TimedLine(0.0, Line(tone_text(name), TONE)), *moved))

    out: list[Block] = []
    after_hold = False
    for block in blocks:
        if after_hold and isinstance(block, SpeechBlock):
            block = replace(block, lines=(Line(tone_text(HOLD_END), TONE), *block.lines))
        elif after_hold and isinstance(block, Window):
            block = chime_then(block, HOLD_END)
        if isinstance(block, Window) and block.kind == HOLD:
            block = chime_then(block, HOLD_START)
        after_hold = isinstance(block, Window) and block.kind == HOLD
        out.append(block)
    if after_hold:
        out.append(SpeechBlock((Line(tone_text(HOLD_END), TONE),), out[-1].place))
    last = out[-1]
    bell = Line(tone_text(SESSION_END), TONE)
    if isinstance(last, SpeechBlock):
        out[-1] = replace(last, lines=(*last.lines, bell))
    else:
        out.append(SpeechBlock((bell,), Place("Closing")))
    return tuple(out)


def spoken_texts(script: CueScript) -> list[str]:
    """Every distinct text the script speaks, in first-use order (what synthesis must produce)."""
    seen: dict[str, None] = {}
    for block in script.blocks:
        lines = block.lines if isinstance(block, SpeechBlock) else tuple(c.line for c in block.cues)
        for line in lines:
            seen.setdefault(line.text, None)
    return list(seen)
