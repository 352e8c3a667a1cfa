"""The coaching rules, checked on the plans of every built-in routine and of sessions built with `new`.

Pace needs real speech, so these plans are made with the default engine (one
shared cache for the module, so each line is synthesized once).
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from voiceguide.compose import NewSession, compose
from voiceguide.pipeline import SessionOptions, plan_session
from voiceguide.plan import ScriptOptions
from voiceguide.plan.timeline import Event, Plan
from voiceguide.routine import builtin_names, load_builtin, parse_routine
from voiceguide.speech import ClipCache

MAX_SILENCE = 25.0  # the default defaults.max_silence
RELEASE_WITHIN = 0.3
BREATH = 0.6  # the least quiet between consecutive lines
PACE = (145.0, 165.0)  # words per minute of every instruction line at the built-ins' rate

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> ClipCache:
    return ClipCache(tmp_path_factory.mktemp("coaching-clips"))


def speech(plan: Plan) -> list[Event]:
    return sorted(plan.speech(), key=lambda e: e.start)


def words(text: str) -> int:
    return len(re.findall(r"[A-Za-z]+(?:'[a-z]+)?", text))


def longest_silence_in_holds(plan: Plan) -> float:
    """The longest stretch inside any hold with nothing said (hold edges count as lines)."""
    worst = 0
    lines = speech(plan)
    for hold in (e for e in plan.events if e.kind == "hold"):
        inside = [e for e in lines if hold.start <= e.start < hold.end]
        edges = [hold.start] + [p for e in inside for p in (e.start, e.end)] + [hold.end]
        worst = max([worst] + [b - a for a, b in zip(edges[::2], edges[1::2], strict=True)])
    return worst / plan.rate


def check_rules(plan: Plan, routine_stretches: list[str]) -> None:
    lines = [e for e in speech(plan) if e.role != "tone"]
    # A breath between consecutive lines.
    # (Countdown numbers keep their one-second cadence: the gap after one is the rest of its second.)
    gaps = [(b.start - a.end) / plan.rate if a.role != "count" else BREATH for a, b in itertools.pairwise(lines)]
    assert min(gaps) >= BREATH, [(a.text, b.text) for a, b, g in zip(lines, lines[1:], gaps, strict=False) if g < BREATH]
    # Each stretch's name is said once.
    for name in routine_stretches:
        said = [e.text for e in lines if isinstance(e.text, str) and name.casefold() in e.text.casefold()]
        assert len(said) == 1, (name, said)
    # A release cue (or the end chime) right after every hold.
    heard = speech(plan)
    for hold in (e for e in plan.events if e.kind == "hold"):
        after = next(e for e in heard if e.start >= hold.end)
        assert (after.start - hold.end) / plan.rate <= RELEASE_WITHIN and after.role in ("release", "tone"), after
    # No long silence inside a hold.
    assert longest_silence_in_holds(plan) <= MAX_SILENCE


@pytest.mark.parametrize("name", builtin_names())
def test_every_builtin_keeps_the_coaching_rules(name: str, cache: ClipCache) -> None:
    routine = load_builtin(name)
    plan = plan_session(routine, cache=cache)
    check_rules(plan, [s.name for s in routine.stretches])


@pytest.mark.parametrize("name", builtin_names())
def test_builtins_speak_their_instructions_at_a_calm_pace(name: str, cache: ClipCache) -> None:
    plan = plan_session(load_builtin(name), cache=cache)
    for line in (e for e in plan.speech() if e.role == "instructions"):
        wpm = words(line.text) / ((line.end - line.start) / plan.rate) * 60
        assert PACE[0] <= wpm <= PACE[1], (line.text[:40], round(wpm))


@pytest.mark.parametrize("options", [SessionOptions(duration=20 * 60), SessionOptions(script=ScriptOptions(hold_scale=3))],
                         ids=["duration-20m", "hold-scale-3"])
@pytest.mark.parametrize("name", ["psoas", "desk-break"])
def test_stretched_holds_are_never_silent_for_long(name: str, options: SessionOptions, cache: ClipCache) -> None:
    routine = load_builtin(name)
    plan = plan_session(routine, options, cache=cache)
    assert max((e.end - e.start) / plan.rate for e in plan.events if e.kind == "hold") > 2 * MAX_SILENCE
    check_rules(plan, [s.name for s in routine.stretches])


@pytest.mark.parametrize(("areas", "minutes"), [(("hips", "hamstrings"), 12), (("full-body",), 10)])
def test_sessions_built_with_new_keep_the_rules(areas: tuple[str, ...], minutes: float, cache: ClipCache) -> None:
    routine = parse_routine(compose(NewSession("Mine", areas, minutes), cache=cache))
    plan = plan_session(routine, cache=cache)
    assert abs(plan.duration - minutes * 60) <= 2.0
    check_rules(plan, [s.name for s in routine.stretches])


def test_a_routine_can_ask_for_silence(cache: ClipCache, tmp_path: Path) -> None:
    """max_silence: null keeps long holds quiet: the rule is the routine's to waive."""
    text = ("name: Quiet\ndefaults: {hold: 90, max_silence: null}\nphrases: {release: ''}\n"
            "stretches:\n  - name: Sit\n")
    plan = plan_session(parse_routine(text), cache=cache)
    assert longest_silence_in_holds(plan) > 60
    assert not any(e.role in ("coaching", "time_left", "release") for e in plan.speech())
