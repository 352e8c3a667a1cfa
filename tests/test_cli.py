"""The command line, through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import decode
from typer.testing import CliRunner

from voiceguide.cli import app, parse_seconds
from voiceguide.errors import OptionError

runner = CliRunner()


def test_help_lists_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("render", "plan", "list", "voices", "validate"):
        assert command in result.output


def test_plan_json_is_pure_json_with_the_documented_shape() -> None:
    result = runner.invoke(app, ["plan", "psoas", "--json", "--hold", "45"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    holds = [e for e in data["events"] if e["kind"] == "hold"]
    assert len(holds) == 6 and all(e["end"] - e["start"] == pytest.approx(45) for e in holds)
    assert data["chapters"][1]["title"] == "Runner's stretch (left)"
    assert data["duration"] == data["chapters"][-1]["end"]


def test_plan_table() -> None:
    result = runner.invoke(app, ["plan", "psoas", "--estimate"])
    assert result.exit_code == 0
    assert "Table stretch (right)" in result.stdout and "(estimated)" in result.stdout


def test_render_to_file_and_per_stretch_hold(tmp_path: Path) -> None:
    out = tmp_path / "session.mp3"
    result = runner.invoke(app, ["render", "psoas", "-o", str(out), "--hold", "runners=40", "--hold", "32"])
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.stdout
    plan = json.loads(runner.invoke(app, ["plan", "psoas", "--json", "--hold", "runners=40", "--hold", "32"]).stdout)
    assert abs(len(decode(out)) / 44100 - plan["duration"]) < 0.05
    holds = [round(e["end"] - e["start"], 3) for e in plan["events"] if e["kind"] == "hold"]
    assert holds == [40, 40, 32, 32, 32, 32]


def test_render_user_file_defaults_to_output_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my-routine.yaml").write_text("name: Mine\ndefaults: {hold: 5}\nstretches:\n  - name: Reach\n")
    result = runner.invoke(app, ["render", "my-routine.yaml"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "output" / "my-routine.mp3").stat().st_size > 1000


def test_bad_routine_is_one_line_exit_2_nothing_written(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nstretches:\n  - name: a\n    hold: abc\n")
    out = tmp_path / "out.mp3"
    result = runner.invoke(app, ["render", str(bad), "-o", str(out)])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {bad}:4: stretches[0].hold: must be a number of seconds (got 'abc')"
    assert "Traceback" not in result.output and not out.exists()


def test_validate(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("name: x\nstretches: [{name: a}]\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nstretches: [{name: a, hodl: 3}]\n")
    assert runner.invoke(app, ["validate", str(good)]).exit_code == 0
    result = runner.invoke(app, ["validate", str(good), str(bad)])
    assert result.exit_code == 2 and "did you mean 'hold'" in result.stderr


def test_list_and_voices() -> None:
    assert "psoas" in runner.invoke(app, ["list"]).stdout
    voices = runner.invoke(app, ["voices", "--language", "en"])
    assert voices.exit_code == 0 and "gmw/en-us" in voices.stdout


def test_unknown_routine_and_bad_hold() -> None:
    result = runner.invoke(app, ["plan", "nope"])
    assert result.exit_code == 2 and "built-ins: desk-break, psoas" in result.stderr
    result = runner.invoke(app, ["plan", "psoas", "--hold", "plank=30"])
    assert result.exit_code == 2 and "no stretch called 'plank'" in result.stderr


@pytest.mark.parametrize(("text", "seconds"), [("45", 45), ("45s", 45), ("1m30s", 90), ("1.5m", 90), ("2.5", 2.5)])
def test_parse_seconds(text: str, seconds: float) -> None:
    assert parse_seconds(text, "--hold") == seconds


def test_parse_seconds_rejects_garbage() -> None:
    with pytest.raises(OptionError):
        parse_seconds("soon", "--hold")
