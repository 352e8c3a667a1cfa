"""Pacing a hold like an instructor: no long silences, the stretch's own coaching spread through it.

Planning is pure and lengths are not known here, so the rule is kept on the
lines' start times: in a hold, consecutive lines start at most ``limit``
seconds apart (hold start and hold end count as lines), which bounds every
silence by the same number whatever the lines' lengths. Where a gap is longer,
paced lines are added, evenly spaced: the stretch's untimed coaching lines
first (in turn, continuing across sides and rounds, so the second side hears
new ones), then the time left (on a round number of seconds), then the
breathing phrase. They are optional lines: the timeline drops one that would
run into another, and the tests check every built-in routine keeps the rule.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from voiceguide.plan.blocks import Line, Role, TimedLine

# The spacing of starts keeps this much in hand below the limit: a time-left
# line moves by up to half of TIME_LEFT_STEP to land on a round number.
MARGIN = 3.0
TIME_LEFT_STEP = 5  # time left is said in multiples of five seconds
MIN_TIME_LEFT = 10  # and not when fewer are left than this (the countdown is near)
FIRST_COACHING_AT = 0.3  # a hold without timed cues hears its first coaching line this far in
MIN_COACHED_HOLD = 15.0  # holds shorter than this keep their quiet apart from the countdown


@dataclass
class Pacer:
    """Hands out paced lines for the holds of one stretch, keeping its place in the coaching lines."""

    coaching: Sequence[str]
    time_left: str  # template with {seconds}; empty: never said
    breathe: str  # empty: never said
    _next: int = field(default=0, repr=False)

    def next_coaching(self) -> str | None:
        """The stretch's next coaching line, round-robin; None when it has none."""
        if not self.coaching:
            return None
        line = self.coaching[self._next % len(self.coaching)]
        self._next += 1
        return line

    def _texts(self) -> Iterator[tuple[str, str | None]]:
        """Kinds of paced line in the order they are offered: a coaching line, the time left, breathing."""
        while True:
            yield "coaching", self.next_coaching()
            yield "time_left", self.time_left or None
            yield "breathe", self.breathe or None

    def pace(self, cues: Sequence[TimedLine], seconds: float, limit: float | None) -> tuple[TimedLine, ...]:
        """``cues`` plus paced lines, so no two consecutive starts in the hold are more than ``limit`` apart."""
        out = list(cues)
        if seconds >= MIN_COACHED_HOLD and not any(c.line.role == Role.COACHING for c in cues):
            text = self.next_coaching()
            countdown_at = min((c.at for c in cues if c.line.role == Role.COUNT), default=seconds)
            at = round(max(5.0, seconds * FIRST_COACHING_AT), 3)
            if text is not None and at < countdown_at - 6:
                out.append(TimedLine(at, Line(text, Role.COACHING), required=False))
        if limit is not None:
            out += self._fill(sorted(out, key=lambda c: c.at), seconds, limit - MARGIN)
        return tuple(sorted(out, key=lambda c: c.at))

    def _fill(self, cues: list[TimedLine], seconds: float, spacing: float) -> list[TimedLine]:
        starts = sorted({0.0, *(c.at for c in cues), seconds})
        kinds = self._texts()
        added: list[TimedLine] = []
        for before, after in itertools.pairwise(starts):
            gap = after - before
            count = math.ceil(gap / spacing) - 1
            for k in range(1, count + 1):
                at = before + gap * k / (count + 1)
                line = self._line(at, seconds, kinds)
                if line is not None:  # None: every paced kind is switched off, so the silence is the routine's choice
                    added.append(line)
        return added

    def _line(self, at: float, seconds: float, kinds: Iterator[tuple[str, str | None]]) -> TimedLine | None:
        for _ in range(3):
            kind, text = next(kinds)
            if text is None:
                continue
            if kind == "time_left":
                left = round((seconds - at) / TIME_LEFT_STEP) * TIME_LEFT_STEP
                if left < MIN_TIME_LEFT:
                    continue
                return TimedLine(round(seconds - left, 3), Line(text.format(seconds=left), Role.TIME_LEFT),
                                 required=False)
            role = Role.COACHING if kind == "coaching" else Role.BREATHE
            return TimedLine(round(at, 3), Line(text, role), required=False)
        return None
