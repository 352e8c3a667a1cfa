"""The cue script: blocks in order, sides, overrides, cue offsets."""

from __future__ import annotations

import pytest

from voiceguide.errors import OptionError, PlanError
from voiceguide.plan.script import (
    COUNT,
    HOLD,
    PREPARE,
    SWITCH_GAP,
    ScriptOptions,
    SpeechBlock,
    Window,
    build_script,
    ordered_sides,
    plain_text,
    spoken_texts,
)
from voiceguide.routine.load import parse_routine

ROUTINE = """
name: Test
defaults: {hold: 20, rest: 4, prepare: 2, switch: 3, countdown: 3}
stretches:
  - id: lunge
    name: Lunge
    instructions: Step forward.
    sides: [left, right]
    cues: [{at: 8, say: Tilt.}, {at: -9, say: Breathe out.}]
  - name: Cobra
    hold: 25
"""


def windows(script, kind):  # type: ignore[no-untyped-def]
    return [b for b in script.blocks if isinstance(b, Window) and b.kind == kind]


def test_sides_make_two_holds_with_switch_between() -> None:
    script = build_script(parse_routine(ROUTINE))
    holds = windows(script, HOLD)
    assert [(h.place.stretch, h.place.side, h.seconds) for h in holds] == [
        ("Lunge", "left", 20), ("Lunge", "right", 20), ("Cobra", None, 25)]
    assert [w.seconds for w in windows(script, PREPARE)] == [2, 2]
    assert [w.seconds for w in windows(script, SWITCH_GAP)] == [3]
    speech = [line.text for b in script.blocks if isinstance(b, SpeechBlock) for line in b.lines]
    assert speech[:8] == ["Test", "First: Lunge.", "Step forward.", "Left side.", "Get into position.", "And release.",
                          "Switch sides.", "Right side."]
    # The stretch's name is said once: in the line that introduces it.
    assert sum("Lunge" in text for text in speech) == 1


def test_hold_cues_resolve_offsets() -> None:
    hold = windows(build_script(parse_routine(ROUTINE)), HOLD)[0]
    assert [(c.at, c.line.text) for c in hold.cues] == [
        (0.0, "Hold."), (8.0, "Tilt."), (11.0, "Breathe out."), (17.0, "3"), (18.0, "2"), (19.0, "1")]
    assert all(c.slot == 1.0 for c in hold.cues if c.line.role == COUNT)


def test_hold_overrides() -> None:
    routine = parse_routine(ROUTINE)
    every = build_script(routine, ScriptOptions(hold=45))
    assert [h.seconds for h in windows(every, HOLD)] == [45, 45, 45]
    one = build_script(routine, ScriptOptions(hold=45, holds={"lunge": 60}))
    assert [h.seconds for h in windows(one, HOLD)] == [60, 60, 45]
    by_name = build_script(routine, ScriptOptions(holds={"cobra": 12.5}))
    assert [h.seconds for h in windows(by_name, HOLD)] == [20, 20, 12.5]
    with pytest.raises(OptionError, match="no stretch called 'plank'"):
        build_script(routine, ScriptOptions(holds={"plank": 3}))
    with pytest.raises(OptionError, match="--hold"):
        build_script(routine, ScriptOptions(hold=0))


def test_cue_outside_hold_is_plan_error() -> None:
    with pytest.raises(PlanError, match=r"Lunge \(left\): coaching cue 'Tilt.' at 8 s is outside the 6 s hold"):
        build_script(parse_routine(ROUTINE), ScriptOptions(hold=6))


def test_side_orders() -> None:
    assert ordered_sides(["left", "right"], "right-first") == ["right", "left"]
    assert ordered_sides(["right", "left"], "left-first") == ["left", "right"]
    assert ordered_sides(["a", "b", "c"], "reversed") == ["c", "b", "a"]
    assert ordered_sides(None, "reversed") == [None]


def test_spoken_text_is_plain_printable_text() -> None:
    assert plain_text("Hold\x1b[31m\u202e still\u200b.\n\tBreathe.\x00") == "Hold [31m still . Breathe."
    routine = parse_routine("name: t\nintro: \"Welcome\\u200b back\\r\\nfriend\"\nstretches: [{name: a}]\n")
    assert "Welcome back friend" in spoken_texts(build_script(routine, ScriptOptions()))
