"""Pacing a hold: paced lines fill every long gap, with no audio at all."""

from __future__ import annotations

import itertools

import pytest

from voiceguide.plan.blocks import Line, Role, TimedLine
from voiceguide.plan.coaching import MARGIN, Pacer


def starts(cues: tuple[TimedLine, ...], seconds: float) -> list[float]:
    return sorted({0.0, *(c.at for c in cues), seconds})


@pytest.mark.parametrize("seconds", [20.0, 44.0, 61.5, 176.0, 600.0])
def test_no_two_starts_are_further_apart_than_the_limit(seconds: float) -> None:
    fixed = (TimedLine(0.0, Line("Hold.", Role.START)), *(TimedLine(seconds - n, Line(str(n), Role.COUNT)) for n in (3, 2, 1)))
    paced = Pacer(["Relax your shoulders.", "Keep breathing."], "{seconds} seconds left.", "Breathe.").pace(fixed, seconds, 25)
    points = starts(paced, seconds)
    assert max(b - a for a, b in itertools.pairwise(points)) <= 25 - MARGIN + 2.5  # snapping moves at most 2.5 s
    assert set(fixed) <= set(paced)


def test_time_left_is_true_and_round() -> None:
    paced = Pacer([], "{seconds} seconds left.", "").pace((TimedLine(0.0, Line("Hold.", Role.START)),), 120.0, 25)
    told = [c for c in paced if c.line.role == Role.TIME_LEFT]
    assert told
    for cue in told:
        left = int(str(cue.line.text).split()[0])
        assert left % 5 == 0 and left == pytest.approx(120.0 - cue.at)


def test_coaching_lines_take_turns_across_holds() -> None:
    pacer = Pacer(["A.", "B.", "C."], "", "")
    first = [c.line.text for c in pacer.pace((), 30.0, 25) if c.line.role == Role.COACHING]
    second = [c.line.text for c in pacer.pace((), 30.0, 25) if c.line.role == Role.COACHING]
    assert first[0] == "A." and second[0] != first[0]


def test_nothing_to_say_keeps_the_silence() -> None:
    assert Pacer([], "", "").pace((), 200.0, 25) == ()


def test_no_limit_adds_only_the_first_coaching_line() -> None:
    paced = Pacer(["A.", "B."], "{seconds} seconds left.", "Breathe.").pace((), 300.0, None)
    assert [c.line.text for c in paced] == ["A."]
