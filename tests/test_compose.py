"""`voiceguide new`: sessions composed from the library, fitted to the target by exact planning."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
from conftest import FakeEngine

from voiceguide.compose import NewSession, compose, pick_stretches, write_new_session
from voiceguide.errors import OptionError, RoutineError
from voiceguide.pipeline import plan_session
from voiceguide.routine import load_routine_file, parse_routine
from voiceguide.speech import ClipCache


@pytest.mark.parametrize(("areas", "minutes"), [(("hips", "hamstrings"), 12), (("neck",), 4), (("full-body",), 10),
                                                (("glutes", "posterior-chain"), 15)])
def test_a_composed_session_plans_to_its_target(areas: tuple[str, ...], minutes: float, fake_engine: FakeEngine,
                                                cache: ClipCache) -> None:
    text = compose(NewSession("Mine", areas, minutes), engine=fake_engine, cache=cache)
    plan = plan_session(parse_routine(text), engine=fake_engine, cache=cache)
    assert abs(plan.duration - minutes * 60) <= 2.0, plan.duration


def test_areas_take_turns_and_strength_holds_come_last() -> None:
    picked = pick_stretches(NewSession("Mine", ("hips", "hamstrings"), 12))
    assert {"hips", "hip-flexors"} & set(picked[0].areas) and "hamstrings" in picked[1].areas
    kinds = [e.kind for e in picked]
    assert kinds == sorted(kinds, key=lambda k: k == "strength")
    assert len({e.id for e in picked}) == len(picked)


def test_levels_filter() -> None:
    picked = pick_stretches(NewSession("Mine", ("posterior-chain",), 8, "beginner"))
    assert picked and all(e.level == "beginner" for e in picked)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"areas": ()}, "--area: name at least one body area"),
    ({"areas": ("hip",)}, "--area: unknown area 'hip' (did you mean hips"),
    ({"minutes": math.nan}, "--minutes: must be between 3 and 120 (got nan)"),
    ({"minutes": math.inf}, "--minutes: must be between 3 and 120 (got inf)"),
    ({"minutes": -5}, "--minutes: must be between 3 and 120 (got -5)"),
    ({"minutes": 1e9}, "--minutes: must be between 3 and 120"),
    ({"level": "expert"}, "--level: unknown level 'expert'"),
    ({"name": " \t"}, "name: give the session a name"),
])
def test_bad_requests_are_refused_when_built(kwargs: dict, message: str) -> None:
    args = {"name": "Mine", "areas": ("hips",), "minutes": 10.0} | kwargs
    with pytest.raises((OptionError, RoutineError)) as caught:
        NewSession(**args)
    assert str(caught.value).startswith(message)


def test_a_target_the_library_cannot_fill_is_an_error(fake_engine: FakeEngine, cache: ClipCache) -> None:
    with pytest.raises(OptionError, match="too few chest stretches to fill 60 minutes"):
        compose(NewSession("Mine", ("chest",), 60), engine=fake_engine, cache=cache)


def test_the_file_is_written_atomically_with_the_umask_and_never_over_another(tmp_path: Path, fake_engine: FakeEngine,
                                                                               cache: ClipCache) -> None:
    request = NewSession("Mine", ("neck",), 4)
    old = os.umask(0o027)
    try:
        path, routine = write_new_session(request, tmp_path / "mine", engine=fake_engine, cache=cache)
    finally:
        os.umask(old)
    assert path == tmp_path / "mine.yaml" and load_routine_file(path) == routine
    assert path.stat().st_mode & 0o777 == 0o640
    before = path.read_bytes()
    with pytest.raises(RoutineError, match="already exists"):
        write_new_session(request, path, engine=fake_engine, cache=cache)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "clips") == ["mine.yaml"]  # no temporary left
