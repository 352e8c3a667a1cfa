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
from voiceguide.plan.blocks import Block, CueScript, Kind, Line, Place, Role, Say, SpeechBlock, TimedLine, Window
from voiceguide.plan.coaching import Pacer
from voiceguide.plan.options import ScriptOptions
from voiceguide.plan.tones import Tone, tone_seconds
from voiceguide.routine.model import MAX_HOLD_SECONDS, Routine, Stretch
from voiceguide.routine.text import plain_text

__all__ = ["Block", "CueScript", "Kind", "Line", "Place", "Role", "Say", "ScriptOptions", "SpeechBlock", "TimedLine",
           "Tone", "Window", "build_script", "check_script", "hold_seconds", "longest_hold", "ordered_sides",
           "plain_text", "spoken_texts"]

MAX_SPOKEN_LINES = 5000

# The roles and kinds by their old names (Role.COUNT and Kind.HOLD are the same values).
INTRO, TITLE, INSTRUCTIONS, ROUND, SIDE, GET_READY, SWITCH = (
    Role.INTRO, Role.TITLE, Role.INSTRUCTIONS, Role.ROUND, Role.SIDE, Role.GET_READY, Role.SWITCH)
START, HALFWAY, BREATHE, COUNT, COACHING, NEXT_UP, CLOSING, TONE = (
    Role.START, Role.HALFWAY, Role.BREATHE, Role.COUNT, Role.COACHING, Role.NEXT_UP, Role.CLOSING, Role.TONE)
HOLD, REST, PREPARE, SWITCH_GAP = Kind.HOLD, Kind.REST, Kind.PREPARE, Kind.SWITCH


def check_script(routine: Routine, options: ScriptOptions) -> None:
    """What the options mean for this routine: stretch names that exist, and holds within the limit once scaled."""
    keys = {s.key.casefold(): s for s in routine.stretches} | {s.name.casefold(): s for s in routine.stretches}
    for name in options.holds:
        if name.casefold() not in keys:
            names = ", ".join(repr(s.key) for s in routine.stretches)
            raise OptionError(f"--hold: no stretch called {name!r} in {routine.name!r} (stretches: {names})")
    for stretch in routine.stretches:
        for side in ordered_sides(stretch.sides, "as-written"):
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
               for stretch in routine.stretches for side in ordered_sides(stretch.sides, "as-written"))


def ordered_sides(sides: list[str] | None, order: str) -> list[str | None]:
    """The sides of a stretch in the order they are held."""
    if not sides:
        return [None]
    if order == "reversed":
        return list(reversed(sides))
    if order in {"right-first", "left-first"}:
        first = order.split("-")[0]
        leading: list[str | None] = [side for side in sides if side.casefold() == first]
        return leading + [side for side in sides if side.casefold() != first]
    return list(sides)


def _chapter_title(stretch: Stretch, side: str | None, round_: int, rounds: int) -> str:
    details = [d for d in (side, f"round {round_}" if rounds > 1 else None) if d]
    return f"{stretch.name} ({', '.join(details)})" if details else stretch.name


def _hold_cues(routine: Routine, stretch: Stretch, seconds: float, countdown: int, halfway: bool,
               where: str, pacer: Pacer) -> tuple[TimedLine, ...]:
    phrases = routine.phrases
    breathe = stretch.breathe if stretch.breathe is not None else routine.defaults.breathe
    cues: list[TimedLine] = []
    if phrases.hold:
        cues.append(TimedLine(0.0, Line(phrases.hold, Role.START)))
    if countdown > seconds:
        raise PlanError(f"{where}: a countdown of {countdown} is longer than the {seconds:g} s hold; "
                        "shorten the countdown or lengthen the hold")
    for n in range(countdown, 0, -1):
        cues.append(TimedLine(seconds - n, Line(phrases.number(n), Role.COUNT), slot=1.0))
    for cue in stretch.cues:
        at = cue.at if cue.at >= 0 else seconds + cue.at
        if not 0 <= at < seconds:
            raise PlanError(f"{where}: coaching cue {cue.say!r} at {cue.at:g} s is outside the {seconds:g} s hold")
        cues.append(TimedLine(at, Line(cue.say, Role.COACHING)))
    if halfway and phrases.halfway:
        cues.append(TimedLine(seconds / 2, Line(phrases.halfway, Role.HALFWAY), required=False))
    if breathe and phrases.breathe:
        at = breathe
        while at < seconds - countdown - 1:
            cues.append(TimedLine(at, Line(phrases.breathe, Role.BREATHE), required=False))
            at += breathe
    return pacer.pace(sorted(cues, key=lambda c: c.at), seconds, routine.defaults.max_silence)


def _setting(stretch: Stretch, routine: Routine, name: str) -> float:
    value = getattr(stretch, name)
    return getattr(routine.defaults, name) if value is None else value


@dataclass(frozen=True)
class _Turn:
    """One side of one round of a stretch, with the settings that apply to it."""

    stretch: Stretch
    side: str | None
    round: int
    rounds: int
    first_side: bool  # the first side of its round
    after_rest: bool  # comes after another stretch or round (so a rest comes first)
    place: Place


def build_script(routine: Routine, options: ScriptOptions | None = None) -> CueScript:
    """Turn a validated routine into the ordered blocks of a session.

    Raises OptionError for options this routine cannot take and PlanError for
    what cannot be timed (a countdown longer than its hold, a cue outside it,
    more spoken lines than MAX_SPOKEN_LINES), all before anything is synthesized.
    """
    options = options or ScriptOptions()
    check_script(routine, options)
    pause = routine.defaults.pause
    blocks: list[Block] = [SpeechBlock((Line(routine.intro or routine.name, Role.INTRO),), Place("Introduction"),
                                       pause=pause)]
    for index, stretch in enumerate(routine.stretches):
        pacer = Pacer(stretch.coaching, routine.phrases.time_left, routine.phrases.breathe)
        for turn in _turns(stretch, index, routine, options):
            blocks += _turn_blocks(routine, turn, options, pacer)
    closing = tuple(Line(text, Role.CLOSING) for text in (routine.closing, routine.phrases.session_end) if text)
    if closing:
        blocks.append(SpeechBlock(closing, Place("Closing"), pause=pause))
    tones = routine.defaults.tones if options.tones is None else options.tones
    script = CueScript(routine.name, _with_tones(blocks) if tones else tuple(blocks))
    _check_line_count(script)
    return script


def _turns(stretch: Stretch, index: int, routine: Routine, options: ScriptOptions) -> list[_Turn]:
    """Every side of every round of a stretch, in the order they are held."""
    rounds = stretch.repeat or routine.defaults.repeat
    sides = ordered_sides(stretch.sides, options.side_order)
    return [_Turn(stretch, side, round_, rounds, first_side=number == 0, after_rest=index > 0 or round_ > 1,
                  place=Place(_chapter_title(stretch, side, round_, rounds), stretch.name, side, round_))
            for round_ in range(1, rounds + 1) for number, side in enumerate(sides)]


def _turn_blocks(routine: Routine, turn: _Turn, options: ScriptOptions, pacer: Pacer) -> list[Block]:
    """The lead-in (during the rest before a new stretch: its name and instructions), the gap to get into
    position, the hold, and the release the moment it ends."""
    blocks: list[Block] = []
    pause = routine.defaults.pause
    rest = options.rest if options.rest is not None else _setting(turn.stretch, routine, "rest")
    introducing = turn.first_side and turn.round == 1
    if turn.first_side and turn.after_rest and rest > 0 and not introducing:  # a quiet rest between rounds
        blocks.append(Window(Kind.REST, rest, (), turn.place))
    lines = _lead_in(routine, turn, first=not turn.after_rest)
    if lines:
        # Before a new stretch the rest carries its name and instructions: the person moves while listening.
        resting = rest if introducing and turn.after_rest else 0.0
        blocks.append(SpeechBlock(tuple(lines), turn.place, min_seconds=resting, pause=pause,
                                  span=Kind.REST if resting else None))
    gap = _setting(turn.stretch, routine, "prepare" if turn.first_side else "switch")
    if gap > 0:
        blocks.append(Window(Kind.PREPARE if turn.first_side else Kind.SWITCH, gap, (), turn.place))
    return blocks + _hold_blocks(routine, turn, options, pacer)


def _hold_blocks(routine: Routine, turn: _Turn, options: ScriptOptions, pacer: Pacer) -> list[Block]:
    """The hold with its cues, then the release on its last sample."""
    seconds = hold_seconds(routine, turn.stretch, turn.side, options)
    countdown = options.countdown if options.countdown is not None else int(_setting(turn.stretch, routine, "countdown"))
    halfway = bool(_setting(turn.stretch, routine, "halfway")) if options.halfway is None else options.halfway
    cues = _hold_cues(routine, turn.stretch, seconds, countdown, halfway, turn.place.chapter, pacer)
    blocks: list[Block] = [Window(Kind.HOLD, seconds, cues, turn.place)]
    if routine.phrases.release:  # come out of it
        blocks.append(SpeechBlock((Line(routine.phrases.release, Role.RELEASE),), turn.place,
                                  pause=routine.defaults.pause))
    return blocks


def _lead_in(routine: Routine, turn: _Turn, first: bool) -> list[Line]:
    """What is said before a side's hold: the stretch's name (once) and instructions, the round, the side."""
    phrases, lines = routine.phrases, []
    if turn.first_side and turn.round == 1:
        lines += _introduction(routine, turn.stretch, first)
    if turn.first_side and turn.rounds > 1 and phrases.round:
        lines.append(Line(phrases.round.format(n=turn.round, total=turn.rounds), Role.ROUND))
    if not turn.first_side and phrases.switch_sides:
        lines.append(Line(phrases.switch_sides, Role.SWITCH))
    side = _side_line(routine, turn)
    if side is not None:
        lines.append(side)
    if turn.first_side and phrases.get_ready:
        lines.append(Line(phrases.get_ready, Role.GET_READY))
    return lines


def _introduction(routine: Routine, stretch: Stretch, first: bool) -> list[Line]:
    """A stretch's name (said once, in the line that introduces it), instructions and caution."""
    phrases = routine.phrases
    announce = (phrases.first_up if first else phrases.next_up).format(name=stretch.name)
    lines = [Line(announce or stretch.name + ".", Role.TITLE)]
    lines += [Line(text, role) for text, role in ((stretch.instructions, Role.INSTRUCTIONS),
                                                  (stretch.caution, Role.CAUTION)) if text]
    return lines


def _side_line(routine: Routine, turn: _Turn) -> Line | None:
    """The side, said as the stretch means it ("Left knee down.") or with the ``side`` phrase ("Left side.")."""
    if turn.side is None:
        return None
    if turn.stretch.side_label:
        label = turn.stretch.side_label.format(side=turn.side)
        return Line(label[:1].upper() + label[1:].rstrip(".") + ".", Role.SIDE)
    if routine.phrases.side:
        return Line(routine.phrases.side.format(side=turn.side[:1].upper() + turn.side[1:]), Role.SIDE)
    return None


def _check_line_count(script: CueScript) -> None:
    """PlanError if the script has more required lines than a session may speak (before any synthesis)."""
    count = sum(len(block.lines) if isinstance(block, SpeechBlock) else sum(1 for c in block.cues if c.required)
                for block in script.blocks)
    if count > MAX_SPOKEN_LINES:
        raise PlanError(f"{script.routine}: {count} spoken lines; the maximum is {MAX_SPOKEN_LINES}")


def _with_tones(blocks: list[Block]) -> tuple[Block, ...]:
    """Chime at every hold's first sample and at the sample it ends; a bell to close the session.

    A line planned for the same moment (the "Hold." cue, "Switch sides.",
    "Next up") follows right after its chime.
    """

    def chime_then(window: Window, tone: Tone) -> Window:
        after = round(tone_seconds(tone) + 0.1, 3)
        moved = tuple(replace(c, at=after) if c.at < after and c.line.role != Role.COUNT else c for c in window.cues)
        return replace(window, cues=(TimedLine(0.0, Line(tone, Role.TONE)), *moved))

    out: list[Block] = []
    after_hold = False
    for block in blocks:
        if after_hold and isinstance(block, SpeechBlock):
            block = replace(block, lines=(Line(Tone.HOLD_END, Role.TONE), *block.lines))
        elif after_hold and isinstance(block, Window):
            block = chime_then(block, Tone.HOLD_END)
        if isinstance(block, Window) and block.kind == Kind.HOLD:
            block = chime_then(block, Tone.HOLD_START)
        after_hold = isinstance(block, Window) and block.kind == Kind.HOLD
        out.append(block)
    if after_hold:
        out.append(SpeechBlock((Line(Tone.HOLD_END, Role.TONE),), out[-1].place))
    last = out[-1]
    bell = Line(Tone.SESSION_END, Role.TONE)
    if isinstance(last, SpeechBlock):
        out[-1] = replace(last, lines=(*last.lines, bell))
    else:
        out.append(SpeechBlock((bell,), Place("Closing")))
    return tuple(out)


def spoken_texts(script: CueScript) -> list[Say]:
    """Every distinct text (and tone) the script makes heard, in first-use order."""
    seen: dict[Say, None] = {}
    for block in script.blocks:
        lines = block.lines if isinstance(block, SpeechBlock) else tuple(c.line for c in block.cues)
        for line in lines:
            seen.setdefault(line.text, None)
    return list(seen)
