"""The routine language end to end: every feature planned exactly, and rendered audio that follows the plan."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import FakeEngine, decode, onsets
from typer.testing import CliRunner

from voiceguide.cli import app
from voiceguide.errors import OptionError, PlanError
from voiceguide.pipeline import SessionOptions, plan_session, render_session
from voiceguide.plan.fitting import fit_to_duration
from voiceguide.plan.script import ScriptOptions, build_script
from voiceguide.plan.timeline import RATE, build_plan, to_samples
from voiceguide.routine.builtin import builtin_names, load_builtin
from voiceguide.routine.load import parse_routine, routine_schema
from voiceguide.speech.cache import ClipCache

EVERYTHING = """
name: Everything
intro: Let's go.
closing: Done for today.
voice: {rate: 170}
defaults: {hold: 20, rest: 6, prepare: 2, switch: 4, countdown: 4, halfway: true, breathe: 6}
phrases:
  hold: Hold it.
  switch_sides: Other side.
  next_up: "Coming up: {name}."
  round: "Round {n} of {total}."
  numbers: [one, two, three, four]
  session_end: ""
stretches:
  - id: lunge
    name: Lunge
    sides: [front, back, middle]
    hold: {front: 14, back: 16, middle: 15}
    repeat: 2
    halfway: false
    breathe: 100
    cues: [{at: 3, say: Tilt.}, {at: -6, say: Breathe out.}]
  - name: Fold
    instructions: Fold forward.
    switch: 0
    countdown: 0
"""


def length(text: str) -> int:
    return to_samples(0.3 if len(text) <= 5 else 0.04 * len(text))


def plan_of(text: str = EVERYTHING, options: ScriptOptions | None = None):  # type: ignore[no-untyped-def]
    return build_plan(build_script(parse_routine(text), options), length)


def holds(plan):  # type: ignore[no-untyped-def]
    return [e for e in plan.events if e.kind == "hold"]


def test_sides_rounds_and_per_side_holds() -> None:
    plan = plan_of()
    assert [(e.place.stretch, e.place.side, e.place.round, (e.end - e.start) / RATE) for e in holds(plan)] == [
        ("Lunge", "front", 1, 14), ("Lunge", "back", 1, 16), ("Lunge", "middle", 1, 15),
        ("Lunge", "front", 2, 14), ("Lunge", "back", 2, 16), ("Lunge", "middle", 2, 15), ("Fold", None, 1, 20)]
    said = [e.text for e in plan.speech()]
    assert said.count("Round 2 of 2.") == 1 and said.count("Other side.") == 4
    assert "Coming up: Fold." in said and "That's the end of the session. Well done." not in said
    # A quiet rest between rounds (6 s); before Fold the rest carries its name and instructions (at least 6 s);
    # switch gaps of 4 s, none for Fold.
    rests = [e for e in plan.events if e.kind == "rest"]
    assert next((e.end - e.start) / RATE for e in rests) == 6 and (rests[1].end - rests[1].start) / RATE >= 6
    assert next(e.text for e in plan.speech() if e.start == rests[1].start) == "Coming up: Fold."
    assert [(e.end - e.start) / RATE for e in plan.events if e.kind == "switch"] == [4] * 4


def test_countdown_words_and_custom_phrases_at_exact_times() -> None:
    plan = plan_of()
    first = holds(plan)[0]
    inside = [(e.text, e.start - first.start) for e in plan.speech() if first.start <= e.start < first.end]
    assert inside == [("Hold it.", 0), ("Tilt.", 3 * RATE), ("Breathe out.", 8 * RATE), ("four", 10 * RATE),
                      ("three", 11 * RATE), ("two", 12 * RATE), ("one", 13 * RATE)]
    fold = holds(plan)[-1]
    fold_lines = [e.text for e in plan.speech() if fold.start <= e.start < fold.end]
    assert fold_lines == ["Hold it.", "Breathe.", "Halfway.", "Breathe.", "Breathe."]  # no countdown; every 6 s
    assert [e.start - fold.start for e in plan.speech() if e.text == "Breathe." and fold.start <= e.start] == [
        6 * RATE, 12 * RATE, 18 * RATE]


def test_command_line_style_overrides() -> None:
    plan = plan_of(options=ScriptOptions(hold_scale=1.5, rest=2, countdown=2, halfway=False, side_order="reversed"))
    assert [(e.place.side, (e.end - e.start) / RATE) for e in holds(plan)][:3] == [
        ("middle", 22.5), ("back", 24), ("front", 21)]
    rests = [(e.end - e.start) / RATE for e in plan.events if e.kind == "rest"]
    assert rests[0] == 2 and rests[1] >= 2  # between rounds, then the rest that introduces the next stretch
    assert not any(e.role == "halfway" for e in plan.speech())
    assert sum(1 for e in plan.speech() if e.role == "count") == 7 * 2


def test_lines_that_cannot_fit_name_stretch_and_line() -> None:
    long_cue = EVERYTHING.replace("say: Tilt.", "say: " + "a twelve second line " * 14)
    with pytest.raises(PlanError, match=r"Lunge \(front, round 1\): coaching cue 'a twelve"):
        plan_of(long_cue)
    with pytest.raises(PlanError, match=r"countdown of 4 is longer than the 3 s hold"):
        plan_of(options=ScriptOptions(hold=3))


def test_per_side_hold_must_match_sides() -> None:
    from voiceguide.errors import RoutineError

    with pytest.raises(RoutineError, match=r"per-side hold must name exactly the sides"):
        parse_routine("name: x\nstretches:\n  - name: a\n    sides: [l, r]\n    hold: {l: 3}\n")


def test_fit_to_duration_scales_holds_exactly() -> None:
    routine = parse_routine(EVERYTHING)
    table = {e.text: e.end - e.start for e in build_plan(build_script(routine), length).speech() if e.text}
    options = fit_to_duration(routine, ScriptOptions(), 600, table)
    plan = build_plan(build_script(routine, options), length)  # the fitted holds' paced lines are new text
    assert abs(plan.duration - 600) < 0.05
    with pytest.raises(OptionError, match="too short"):
        fit_to_duration(routine, ScriptOptions(), 100, table)


@pytest.mark.parametrize("name", builtin_names())
def test_every_builtin_renders_and_matches_its_plan(name: str, tmp_path: Path, fake_engine: FakeEngine,
                                                    cache: ClipCache) -> None:
    result = render_session(load_builtin(name), tmp_path / f"{name}.mp3", engine=fake_engine, cache=cache)
    samples = decode(result.output)
    assert abs(len(samples) / RATE - result.plan.duration) < 0.05
    assert len(onsets(samples)) == sum(1 for _ in result.plan.speech())


def test_render_of_everything_puts_every_line_where_planned(tmp_path: Path, fake_engine: FakeEngine,
                                                           cache: ClipCache) -> None:
    routine = parse_routine(EVERYTHING)
    options = SessionOptions(script=ScriptOptions(side_order="reversed", hold_scale=1.2))
    result = render_session(routine, tmp_path / "all.mp3", options, engine=fake_engine, cache=cache)
    plan = result.plan
    assert plan == plan_session(routine, options, engine=fake_engine, cache=cache)
    heard = onsets(decode(result.output))
    planned = [plan.seconds(e.start) for e in plan.speech()]
    assert len(heard) == len(planned)
    assert max(abs(h - p) for h, p in zip(heard, planned, strict=True)) < 0.02
    # The countdown's last number starts one second before its hold ends.
    for hold in holds(plan):
        ones = [e for e in plan.speech() if e.text == "one" and hold.start <= e.start < hold.end]
        assert all(hold.end - e.start == RATE for e in ones)


runner = CliRunner()


def test_cli_duration_reports_holds() -> None:
    result = runner.invoke(app, ["plan", "psoas", "--duration", "8m", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert abs(data["duration"] - 480) < 0.05
    result = runner.invoke(app, ["plan", "psoas", "--duration", "8m"])
    assert "fitted to 8:00.0: Table stretch" in result.stderr and "Runner's stretch" in result.stderr
    result = runner.invoke(app, ["plan", "psoas", "--duration", "1m"])
    assert result.exit_code == 2 and "too short" in result.stderr


def test_cli_flags_reach_the_plan() -> None:
    result = runner.invoke(app, ["plan", "psoas", "--json", "--sides", "right-first", "--countdown", "5",
                                 "--rest", "12", "--halfway", "--hold-scale", "1.5"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    hold_events = [e for e in data["events"] if e["kind"] == "hold"]
    assert [e["side"] for e in hold_events[:2]] == ["right", "left"]
    written = {s.name: s.hold for s in load_builtin("psoas").stretches}
    assert all(e["end"] - e["start"] == pytest.approx(1.5 * written[e["stretch"]]) for e in hold_events)
    rests = [e for e in data["events"] if e["kind"] == "rest"]
    assert len(rests) == 3 and all(e["end"] - e["start"] >= 12 - 1e-6 for e in rests)
    assert sum(1 for e in data["events"] if e["role"] == "count") == 5 * len(hold_events)
    assert sum(1 for e in data["events"] if e["role"] == "halfway") == len(hold_events)


def test_init_writes_a_starter_that_renders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert runner.invoke(app, ["init", "morning"]).exit_code == 0
    again = runner.invoke(app, ["init", "morning"])
    assert again.exit_code == 2 and "already exists" in again.stderr
    result = runner.invoke(app, ["render", "morning.yaml", "-o", "m.mp3"])
    assert result.exit_code == 0, result.output
    assert abs(len(decode(tmp_path / "m.mp3")) / RATE - json.loads(
        runner.invoke(app, ["plan", "morning.yaml", "--json"]).stdout)["duration"]) < 0.05


def test_schema_rejects_unknown_keys_and_describes_fields() -> None:
    schema = routine_schema()
    assert schema["additionalProperties"] is False
    assert "stretches" in schema["required"]
    stretch = schema["$defs"]["Stretch"]
    assert stretch["additionalProperties"] is False and "sides" in stretch["properties"]
    printed = json.loads(runner.invoke(app, ["schema"]).stdout)
    assert printed == schema
