"""The timeline plan: exact start and end of everything, in samples, with no audio.

Pure: given a cue script and the length of each spoken line, it returns a
:class:`Plan`. All arithmetic is in integer samples at one rate, so nothing
drifts however long the session; the assembled audio follows the plan
sample for sample.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from voiceguide.errors import PlanError
from voiceguide.plan import script as s
from voiceguide.plan.blocks import PAUSE_AFTER_LINE as PAUSE_AFTER_LINE  # re-exported: the default breath
from voiceguide.plan.blocks import Kind, Role, Say
from voiceguide.plan.script import MAX_SPOKEN_LINES
from voiceguide.plan.tones import Tone

RATE = 44100
MAX_SESSION_SECONDS = 6 * 3600

_ROLE_NAMES = {
    Role.START: "hold cue", Role.COUNT: "countdown number", Role.COACHING: "coaching cue", Role.HALFWAY: "halfway cue",
    Role.BREATHE: "breathing cue", Role.NEXT_UP: "next-up preview", Role.TONE: "tone", Role.TIME_LEFT: "time-left cue",
}


@dataclass(frozen=True)
class Event:
    """Something that happens between two sample positions: a spoken line, a hold, a rest or a gap."""

    start: int
    end: int
    kind: Kind  # speech, or a window: hold, rest, prepare, switch
    place: s.Place
    text: Say | None = None  # the words spoken, or the tone heard
    role: Role | None = None

    @property
    def label(self) -> str | None:
        """The text as shown: the words, or a tone's name."""
        return self.text.value if isinstance(self.text, Tone) else self.text


@dataclass(frozen=True)
class Chapter:
    """A titled span of the session (one per stretch side and round, plus intro and closing)."""

    title: str
    start: int
    end: int


@dataclass(frozen=True)
class Plan:
    """The whole session, timed to the sample."""

    routine: str
    rate: int
    total: int
    events: tuple[Event, ...]
    chapters: tuple[Chapter, ...]
    dropped: tuple[str, ...] = ()  # optional cues left out because they did not fit

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.total / self.rate

    def speech(self) -> Iterator[Event]:
        """The spoken lines, in time order."""
        return (e for e in self.events if e.kind == Kind.SPEECH)

    def seconds(self, samples: int) -> float:
        """Convert a sample position to seconds (rounded to the microsecond)."""
        return round(samples / self.rate, 6)

    def to_dict(self) -> dict[str, Any]:
        """The plan as JSON-ready data, times in seconds."""
        return {
            "routine": self.routine,
            "duration": self.seconds(self.total),
            "sample_rate": self.rate,
            "events": [
                {
                    "start": self.seconds(e.start), "end": self.seconds(e.end), "kind": e.kind.value,
                    "text": e.label, "role": e.role and e.role.value, "stretch": e.place.stretch, "side": e.place.side,
                    "round": e.place.round,
                }
                for e in self.events
            ],
            "chapters": [
                {"title": c.title, "start": self.seconds(c.start), "end": self.seconds(c.end)} for c in self.chapters
            ],
            "dropped": list(self.dropped),
        }


def to_samples(seconds: float, rate: int = RATE) -> int:
    """Seconds to a whole number of samples (rounded, never accumulated)."""
    return round(seconds * rate)


def _describe(line: s.Line) -> str:
    text = line.text.value if isinstance(line.text, Tone) else line.text
    return f"{_ROLE_NAMES.get(line.role, 'line')} {text!r}"


def _place_window(window: s.Window, start: int, length: Callable[[Say], int], rate: int,
                  dropped: list[str]) -> list[Event]:
    end = start + to_samples(window.seconds, rate)
    where = window.place.chapter
    placed: list[tuple[int, int, s.TimedLine]] = []

    def fits(cue: s.TimedLine) -> tuple[int, int, str | None]:
        cue_start = start + to_samples(cue.at, rate)
        cue_end = cue_start + length(cue.line.text)
        limit = end if cue.slot is None else min(end, cue_start + to_samples(cue.slot, rate))
        if cue_end > limit:
            room = (limit - cue_start) / rate
            span = f"its {cue.slot:g} s slot" if cue.slot is not None and limit < end else f"the {window.kind}"
            return cue_start, cue_end, (f"{where}: {_describe(cue.line)} at {cue.at:g} s takes "
                                        f"{(cue_end - cue_start) / rate:.2f} s but only {room:.2f} s remain in {span}")
        for other_start, other_end, other in placed:
            if cue_start < other_end and other_start < cue_end:
                first, second = sorted([(cue_start, cue), (other_start, other)], key=lambda p: p[0])
                return cue_start, cue_end, (f"{where}: {_describe(first[1].line)} at {first[1].at:g} s runs into "
                                            f"{_describe(second[1].line)} at {second[1].at:g} s")
        return cue_start, cue_end, None

    # Required lines first: any clash among them is the routine's error. Optional
    # lines (halfway, breathing) then go wherever they fit and are dropped otherwise.
    for cue in sorted(window.cues, key=lambda c: (not c.required, c.at)):
        cue_start, cue_end, problem = fits(cue)
        if problem is None:
            placed.append((cue_start, cue_end, cue))
        elif cue.required:
            raise PlanError(problem + "; shorten the line, move it, or lengthen the " + window.kind)
        else:
            dropped.append(problem)
    events = [Event(start, end, window.kind, window.place)]
    events += [Event(a, b, Kind.SPEECH, window.place, c.line.text, c.line.role) for a, b, c in sorted(placed, key=_first)]
    return events


def _first(placed: tuple[int, int, s.TimedLine]) -> tuple[int, int]:
    return placed[0], placed[1]


def build_plan(script: s.CueScript, lengths: Mapping[Say, int] | Callable[[Say], int], rate: int = RATE) -> Plan:
    """Time every block of a cue script; ``lengths`` gives each spoken text's length in samples."""
    length = lengths if callable(lengths) else lengths.__getitem__
    events: list[Event] = []
    dropped: list[str] = []
    cursor = 0
    for block in script.blocks:
        if isinstance(block, s.SpeechBlock):
            began, pause = cursor, to_samples(block.pause, rate)
            for line in block.lines:
                end = cursor + length(line.text)
                events.append(Event(cursor, end, Kind.SPEECH, block.place, line.text, line.role))
                cursor = end + pause
            cursor = max(cursor, began + to_samples(block.min_seconds, rate))  # a rest lasts at least its seconds
            if block.span is not None:
                events.append(Event(began, cursor, block.span, block.place))
        else:
            window_events = _place_window(block, cursor, length, rate, dropped)
            events += window_events
            cursor = window_events[0].end
    if cursor > MAX_SESSION_SECONDS * rate:
        raise PlanError(f"{script.routine}: the session would last {cursor / rate / 3600:.1f} hours; "
                        f"the maximum is {MAX_SESSION_SECONDS // 3600} hours")
    spoken = sum(1 for e in events if e.kind == Kind.SPEECH)
    if spoken > MAX_SPOKEN_LINES:
        raise PlanError(f"{script.routine}: {spoken} spoken lines; the maximum is {MAX_SPOKEN_LINES}")
    events.sort(key=lambda e: (e.start, e.kind == Kind.SPEECH))
    return Plan(script.routine, rate, cursor, tuple(events), _chapters(events, cursor), tuple(dropped))


def _chapters(events: list[Event], total: int) -> tuple[Chapter, ...]:
    """Contiguous chapters: each starts where its first event starts and ends where the next begins."""
    starts: list[tuple[str, int]] = []
    for event in events:
        if not starts or starts[-1][0] != event.place.chapter:
            starts.append((event.place.chapter, event.start))
    ends = [start for _, start in starts[1:]] + [total]
    return tuple(Chapter(title, start, end) for (title, start), end in zip(starts, ends, strict=True))
