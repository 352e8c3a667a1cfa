"""Checked before any work: validate means it renders, the line limit before synthesis, files that are not files."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from conftest import FakeEngine
from typer.testing import CliRunner

from voiceguide.cli import app
from voiceguide.errors import OptionError, PlanError, RoutineError
from voiceguide.pipeline import SessionOptions, check_routine, render_session
from voiceguide.plan.script import MAX_SPOKEN_LINES, build_script
from voiceguide.routine.load import load_routine_file, parse_routine
from voiceguide.routine.model import MAX_FILE_BYTES
from voiceguide.speech.cache import ClipCache

runner = CliRunner()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        # A countdown number longer than its one-second slot: loads fine, cannot render.
        ("phrases: {numbers: [one, two, a very long way to say the number three in words]}\n"
         "stretches: [{name: a, hold: 20}]\n", "countdown number 'a very long way"),
        ("defaults: {countdown: 10}\nstretches: [{name: a, hold: 5}]\n", "a countdown of 10 is longer than the 5 s hold"),
        ("stretches: [{name: a, hold: 10, cues: [{at: 20, say: Late.}]}]\n", "coaching cue 'Late.' at 20 s is outside"),
        ("stretches: [{name: a, hold: 10, cues: [{at: 1, say: " + "word " * 60 + "}]}]\n", "coaching cue"),
    ],
)
def test_validate_runs_the_plan_checks(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("name: R\n" + body)
    load_routine_file(path)  # it loads: only the plan checks can find the problem
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2 and message in result.stderr and "ok" not in result.stdout
    plan = runner.invoke(app, ["plan", str(path), "--estimate"])
    assert plan.exit_code == 2 and message in plan.stderr  # the same verdict as plan


def test_validate_ok_means_a_plan_was_made_without_speech(tmp_path: Path, fake_engine: FakeEngine,
                                                          cache: ClipCache) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("name: Fine\nstretches: [{name: a, hold: 20}]\n")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0 and result.stdout.startswith(f"{path}: ok (Fine, ")
    plan = check_routine(path, engine=fake_engine, cache=cache)
    assert plan.routine == "Fine" and fake_engine.calls == []


def test_spoken_line_limit_is_checked_before_any_synthesis(tmp_path: Path, fake_engine: FakeEngine,
                                                         cache: ClipCache) -> None:
    # 200 stretches x 4 rounds x 2 sides, each side with >= 3 required lines: over the limit.
    stretches = "".join(f"  - {{name: s{i}, hold: 5, repeat: 4, sides: [l, r]}}\n" for i in range(200))
    routine = parse_routine("name: Many\ndefaults: {countdown: 3, rest: 0, prepare: 0, switch: 0}\nstretches:\n"
                            + stretches)
    with pytest.raises(PlanError, match=rf"Many: \d+ spoken lines; the maximum is {MAX_SPOKEN_LINES}"):
        build_script(routine)
    with pytest.raises(PlanError):
        render_session(routine, tmp_path / "x.mp3", engine=fake_engine, cache=cache)
    assert fake_engine.calls == [] and not (tmp_path / "x.mp3").exists()


def _with_timeout(call, seconds: float = 5.0):  # type: ignore[no-untyped-def]
    """Run ``call`` in a thread; fail (instead of hanging the suite) if it does not return in time."""
    outcome: list[BaseException | object] = []

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"still running after {seconds} s (it hangs)"
    return outcome[0]


def test_a_fifo_is_refused_as_a_routine_without_hanging(tmp_path: Path) -> None:
    fifo = tmp_path / "routine.yaml"
    os.mkfifo(fifo)
    error = _with_timeout(lambda: load_routine_file(fifo))
    assert isinstance(error, RoutineError) and "not a regular file" in str(error)
    result = _with_timeout(lambda: runner.invoke(app, ["validate", str(fifo)]))
    assert result.exit_code == 2 and "not a regular file" in result.stderr


def test_a_device_is_refused_as_a_routine() -> None:
    error = _with_timeout(lambda: load_routine_file("/dev/zero"))  # reading it would never end
    assert isinstance(error, RoutineError) and str(error).startswith("/dev/zero: not a regular file")


def test_a_huge_routine_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as file:
        file.truncate(3 * 10**9)  # a sparse 3 GB file: reading it whole would take seconds and the memory
    started = time.monotonic()
    with pytest.raises(RoutineError, match=rf"big\.yaml:1: file is larger than {MAX_FILE_BYTES // 1000} kB"):
        load_routine_file(big)
    assert time.monotonic() - started < 1.0


def test_a_fifo_is_refused_as_music(tmp_path: Path, fake_engine: FakeEngine, cache: ClipCache) -> None:
    fifo = tmp_path / "bed.mp3"
    os.mkfifo(fifo)
    options = SessionOptions(music=(fifo,))
    error = _with_timeout(lambda: render_session("psoas", tmp_path / "x.mp3", options, engine=fake_engine, cache=cache))
    assert isinstance(error, OptionError) and "not a regular file" in str(error)
    assert fake_engine.calls == [] and not (tmp_path / "x.mp3").exists()
