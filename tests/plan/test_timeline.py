"""The timeline plan, checked exactly in samples with no audio at all."""

from __future__ import annotations

from itertools import pairwise

import pytest

from voiceguide.errors import PlanError, RoutineError
from voiceguide.plan.script import build_script
from voiceguide.plan.timeline import PAUSE_AFTER_LINE, RATE, build_plan, to_samples
from voiceguide.routine.load import parse_routine

ROUTINE = """
name: Test
defaults: {hold: 20, rest: 4, prepare: 2, switch: 3, countdown: 3}
stretches:
  - name: Lunge
    instructions: Step forward.
    sides: [left, right]
    cues: [{at: 8, say: Tilt.}, {at: -9, say: Breathe out.}]
  - name: Cobra
    hold: 25
"""


def length(text: str) -> int:
    """Deterministic fake lengths: digits take 0.4 s, other lines 0.05 s per character."""
    return to_samples(0.4 if text.isdigit() else 0.05 * len(text))


def plan_of(text: str = ROUTINE, lengths=length):  # type: ignore[no-untyped-def]
    return build_plan(build_script(parse_routine(text)), lengths)


def test_holds_last_exactly_their_seconds() -> None:
    plan = plan_of()
    holds = [e for e in plan.events if e.kind == "hold"]
    assert [e.end - e.start for e in holds] == [20 * RATE, 20 * RATE, 25 * RATE]


def test_countdown_numbers_start_k_seconds_before_the_end() -> None:
    plan = plan_of()
    for hold in (e for e in plan.events if e.kind == "hold"):
        counts = [e for e in plan.speech() if e.role == "count" and hold.start <= e.start < hold.end]
        assert [(e.text, hold.end - e.start) for e in counts] == [("3", 3 * RATE), ("2", 2 * RATE), ("1", RATE)]


def test_coaching_cues_at_offsets_from_start_and_end() -> None:
    plan = plan_of()
    hold = next(e for e in plan.events if e.kind == "hold")
    cues = {e.text: e.start for e in plan.speech() if e.role == "coaching" and hold.start <= e.start < hold.end}
    assert cues == {"Tilt.": hold.start + 8 * RATE, "Breathe out.": hold.end - 9 * RATE}


def test_total_is_sum_of_parts_and_blocks_are_contiguous() -> None:
    plan = plan_of()
    pause = to_samples(PAUSE_AFTER_LINE)
    windows = [e for e in plan.events if e.kind not in ("speech", "rest")]
    rests = [e for e in plan.events if e.kind == "rest"]
    sequential = [e for e in plan.speech() if not any(w.start <= e.start < w.end for w in windows + rests)]
    parts = (sum(w.end - w.start for w in windows) + sum(r.end - r.start for r in rests)
             + sum(e.end - e.start + pause for e in sequential))
    assert plan.total == parts
    # The rest before the second stretch carries its name and instructions, and lasts at least its 4 seconds.
    (rest,) = rests
    inside = [e for e in plan.speech() if rest.start <= e.start < rest.end]
    assert inside[0].start == rest.start and inside[0].text == "Next up: Cobra."
    assert rest.end - rest.start == max(4 * RATE, sum(e.end - e.start + pause for e in inside))


def test_no_two_spoken_lines_overlap() -> None:
    speech = list(plan_of().speech())
    assert all(a.end <= b.start for a, b in pairwise(speech))


def test_chapters_per_side_are_contiguous_and_cover_the_session() -> None:
    plan = plan_of()
    assert [c.title for c in plan.chapters] == ["Introduction", "Lunge (left)", "Lunge (right)", "Cobra", "Closing"]
    assert plan.chapters[0].start == 0 and plan.chapters[-1].end == plan.total
    assert all(a.end == b.start for a, b in pairwise(plan.chapters))
    left_hold = next(e for e in plan.events if e.kind == "hold")
    assert plan.chapters[1].start < left_hold.start < left_hold.end <= plan.chapters[1].end


def test_line_too_long_for_its_slot_is_an_error_naming_stretch_and_line() -> None:
    long_cue = ROUTINE.replace("say: Tilt.", "say: " + "Very long coaching line " * 3)
    with pytest.raises(PlanError, match=r"Lunge \(left\): coaching cue 'Very long.*' at 8 s runs into"):
        plan_of(long_cue)
    slow_numbers = lambda text: to_samples(1.2) if text.isdigit() else length(text)  # noqa: E731
    with pytest.raises(PlanError, match=r"countdown number '3' at 17 s takes 1.20 s but only 1.00 s remain"):
        plan_of(lengths=slow_numbers)


def test_optional_cues_are_dropped_not_fatal() -> None:
    text = ROUTINE.replace("countdown: 3}", "countdown: 3, halfway: true}").replace("at: 8", "at: 10")
    plan = plan_of(text)
    assert plan.dropped and "halfway cue" in plan.dropped[0]
    assert not any(e.role == "halfway" for e in plan.speech() if e.place.stretch == "Lunge")
    assert any(e.role == "halfway" for e in plan.speech() if e.place.stretch == "Cobra")


def test_long_sessions_stay_exact() -> None:
    stretches = "\n".join(f"  - name: S{i}\n    hold: 33.3\n    sides: [l, r]" for i in range(100))
    plan = plan_of(f"name: Long\ndefaults: {{rest: 7.7}}\nstretches:\n{stretches}\n")
    holds = [e for e in plan.events if e.kind == "hold"]
    assert len(holds) == 200 and all(e.end - e.start == to_samples(33.3) for e in holds)
    assert plan.duration > 2 * 3600 - 1200


def test_to_dict_shape() -> None:
    data = plan_of().to_dict()
    assert set(data) >= {"routine", "duration", "events", "chapters"}
    hold = next(e for e in data["events"] if e["kind"] == "hold")
    assert hold["end"] - hold["start"] == pytest.approx(20.0, abs=1e-6)
    assert {"start", "end", "kind", "text", "stretch", "side", "round"} <= set(hold)


def test_session_longer_than_the_maximum_is_a_plan_error() -> None:
    # 20 stretches x 2 sides x 20 rounds x 30 s = 6.7 hours of holds alone
    stretches = "".join(f"  - {{name: s{i}, sides: [l, r], repeat: 20}}\n" for i in range(20))
    with pytest.raises(PlanError, match=r"would last 7\.\d hours; the maximum is 6 hours"):
        plan_of(f"name: Long\ndefaults: {{hold: 30, countdown: 0, rest: 0, prepare: 0, switch: 0}}\nstretches:\n{stretches}")


def test_more_spoken_lines_than_the_maximum_is_a_plan_error() -> None:
    # Every hold says a countdown of 10 plus 'Hold.': 200 stretches x 2 sides x 2 rounds x 11 > 5000 lines
    stretches = "".join(f"  - {{name: s{i}, sides: [l, r], repeat: 2}}\n" for i in range(200))
    with pytest.raises(PlanError, match=r"spoken lines; the maximum is 5000"):
        plan_of(f"name: Wordy\ndefaults: {{hold: 12, countdown: 10, rest: 0, prepare: 0, switch: 0}}\nstretches:\n{stretches}",
                lambda text: to_samples(0.1))


def test_spoken_line_longer_than_the_maximum_is_a_routine_error() -> None:
    with pytest.raises(RoutineError, match=r"my\.yaml:1: intro: must have at most 1000 characters"):
        parse_routine("intro: " + "word " * 300 + "\nname: x\nstretches: [{name: a}]\n", "my.yaml")


def test_tones_sit_exactly_at_hold_starts_and_ends_and_the_bell_closes() -> None:
    from voiceguide.plan.script import ScriptOptions
    from voiceguide.plan.tones import Tone, tone_seconds

    def with_tones(text: str | Tone) -> int:
        return to_samples(tone_seconds(text)) if isinstance(text, Tone) else length(text)

    plan = build_plan(build_script(parse_routine(ROUTINE), ScriptOptions(tones=True)), with_tones)
    starts = {e.start: e for e in plan.events if e.kind == "speech"}
    holds = [e for e in plan.events if e.kind == "hold"]
    assert len(holds) == 3
    for hold in holds:
        assert starts[hold.start].text is Tone.HOLD_START
        assert starts[hold.end].text is Tone.HOLD_END  # the very sample the hold ends
        hold_line = next(e for e in plan.speech() if e.text == "Hold." and hold.start <= e.start < hold.end)
        assert hold_line.start == hold.start + to_samples(tone_seconds(Tone.HOLD_START) + 0.1)
    last = list(plan.speech())[-1]
    assert last.text is Tone.SESSION_END and last.end + to_samples(PAUSE_AFTER_LINE) >= plan.total - 1
    without = build_plan(build_script(parse_routine(ROUTINE)), length)
    assert not any(e.role == "tone" for e in without.events)
