"""Options checked when they are built, and the library's misuse errors: our own error, naming the option."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from conftest import FakeEngine
from typer.testing import CliRunner

from voiceguide.cli import app
from voiceguide.errors import OptionError, RoutineError
from voiceguide.pipeline import BatchItem, SessionOptions, Sidecars, plan_session, preview_line, render_session
from voiceguide.plan.script import ScriptOptions, build_script
from voiceguide.routine.builtin import load_builtin
from voiceguide.routine.load import parse_routine
from voiceguide.speech.cache import ClipCache
from voiceguide.speech.engine import VoiceSettings

runner = CliRunner()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"hold": "45"}, "--hold: must be a number of seconds (got '45')"),
        ({"hold": math.nan}, "--hold: must be more than 0 and at most 3600 seconds (got nan)"),
        ({"hold": math.inf}, "--hold: must be more than 0"),
        ({"hold": -5}, "--hold: must be more than 0"),
        ({"hold": 0.0004}, "--hold: 0.0004 s rounds to no hold at all"),
        ({"hold": True}, "--hold: must be a number"),
        ({"holds": {"lunge": "60"}}, "--hold lunge: must be a number"),
        ({"holds": {"": 60}}, "--hold: a stretch name must be non-empty text"),
        ({"holds": [("lunge", 60)]}, "--hold: per-stretch holds must be a mapping"),
        ({"hold_scale": 101}, "--hold-scale: must be more than 0 and at most 100 (got 101)"),
        ({"hold_scale": 0}, "--hold-scale: must be more than 0 and at most 100 (got 0)"),
        ({"hold_scale": math.nan}, "--hold-scale: must be more than 0"),
        ({"rest": math.nan}, "--rest: must be at least 0 and at most 3600 seconds (got nan)"),
        ({"rest": -1}, "--rest: must be at least 0"),
        ({"countdown": 2.5}, "--countdown: must be a whole number (got 2.5)"),
        ({"countdown": 11}, "--countdown: must be at least 0 and at most 10 (got 11)"),
        ({"halfway": "yes"}, "--halfway: must be true, false or None"),
        ({"side_order": "left"}, "--sides: must be one of"),
        ({"hold_floor": -1.0}, "hold_floor: must be at least 0"),
    ],
)
def test_script_options_refuse_bad_values_when_built(kwargs: dict, message: str) -> None:
    with pytest.raises(OptionError) as info:
        ScriptOptions(**kwargs)
    assert str(info.value).startswith(message)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bitrate": 64}, "--bitrate: must be text like '96k' (got 64)"),
        ({"fmt": 3}, "--format: must be text like 'mp3' (got 3)"),
        ({"fmt": "mp4"}, "--format: unknown format 'mp4'"),
        ({"loudness": math.nan}, "--loudness: must be at least -40 and at most -5 LUFS (got nan)"),
        ({"loudness": -math.inf}, "--loudness: must be at least -40"),
        ({"loudness": 5.0}, "--loudness: must be at least -40 and at most -5 LUFS (got 5)"),
        ({"loudness": "-16"}, "--loudness: must be a number"),
        ({"music_volume": math.nan}, "--music-volume: must be at least -60 and at most 0 dB (got nan)"),
        ({"music_volume": 3.0}, "--music-volume: must be at least -60"),
        ({"duck": -20.0}, "--duck: must be at least 0 and at most 40 dB (got -20)"),
        ({"duck": math.inf}, "--duck: must be at least 0"),
        ({"duration": -300.0}, "--duration: must be at least 60 and at most 21600 seconds (got -300)"),
        ({"duration": math.nan}, "--duration: must be at least 60"),
        ({"engine": 3}, "--engine: must be an engine name like 'espeak' (got 3)"),
        ({"voice": "en-us"}, "voice: must be a VoiceSettings (got str 'en-us')"),
        ({"script": {"hold": 45}}, "script: must be a ScriptOptions"),
        ({"music": "bed.mp3"}, "--music: must be a list of files"),
        ({"music": [3]}, "--music: must be a file path (got 3)"),
        ({"cover": 7}, "--cover: must be a file path"),
    ],
)
def test_session_options_refuse_bad_values_when_built(kwargs: dict, message: str) -> None:
    with pytest.raises(OptionError) as info:
        SessionOptions(**kwargs)
    assert str(info.value).startswith(message)


def test_options_take_str_paths_and_copy_what_they_are_given() -> None:
    holds = {"lunge": 60.0}
    options = SessionOptions(script=ScriptOptions(holds=holds), music=["a.mp3", Path("b.ogg")], cover="c.png")
    holds["lunge"] = 1.0  # changing the caller's dict later changes nothing
    assert options.script.holds == {"lunge": 60.0}
    assert options.music == (Path("a.mp3"), Path("b.ogg")) and options.cover == Path("c.png")


def test_a_hold_scaled_past_the_limit_is_an_option_error_naming_the_stretch() -> None:
    routine = parse_routine("name: t\nstretches:\n  - name: Lunge\n    hold: 100\n")
    with pytest.raises(OptionError, match=r"--hold-scale: 50 makes the hold of 'Lunge' 5000 s; .* at most 3600 s"):
        build_script(routine, ScriptOptions(hold_scale=50))
    build_script(routine, ScriptOptions(hold_scale=36))  # 3600 s exactly is allowed


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate", "99999"], "--rate: 99999 is out of range (80 to 450)"),
        (["--rate", "-50"], "--rate: -50 is out of range (80 to 450)"),
        (["--hold-scale", "101"], "--hold-scale: must be more than 0 and at most 100 (got 101)"),
        (["--hold-scale", "nan"], "--hold-scale: must be more than 0"),
        (["--hold", "0.0001"], "--hold: 0.0001 s rounds to no hold at all"),
        (["--hold", "inf"], "--hold: expected seconds like"),
        (["--rest", "nan"], "--rest: expected seconds like"),
        (["--duration="], "--duration: expected seconds like 45, 45s, 1m30s or 1h (got '')"),
        (["--duration", "-5m"], "--duration: expected seconds like"),
        (["--hold", "100", "--hold-scale", "50"], "--hold-scale: 50 makes the hold of 'Table stretch (left)' 5000 s"),
    ],
)
def test_plan_refuses_bad_options_with_exit_2(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["plan", "psoas", "--estimate", *args])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: {message}") and result.stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--loudness", "nan"], "--loudness: must be at least -40 and at most -5 LUFS (got nan)"),
        (["--loudness", "-inf"], "--loudness: must be at least -40"),
        (["--loudness", "5"], "--loudness: must be at least -40"),
        (["--music-volume", "nan"], "--music-volume: must be at least -60 and at most 0 dB"),
        (["--duck", "-20"], "--duck: must be at least 0 and at most 40 dB (got -20)"),
        (["--rate", "99999"], "--rate: 99999 is out of range (80 to 450)"),
    ],
)
def test_render_refuses_bad_levels_before_writing_anything(tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "x.mp3"
    result = runner.invoke(app, ["render", "psoas", "-o", str(out), *args])
    assert result.exit_code == 2 and result.stderr.startswith(f"error: {message}")
    assert not out.exists()


class ListingEngine(FakeEngine):
    """The fake engine with espeak-like voice names, to check the close matches."""

    def voices(self):  # type: ignore[no-untyped-def]
        from voiceguide.speech.engine import VoiceInfo

        return [VoiceInfo("gmw/en-us", "English (America)", ("en-us",)), VoiceInfo("gmw/de", "German", ("de",))]


@pytest.mark.parametrize(
    ("voice", "message"),
    [
        (VoiceSettings(language="en-uss"), "voice: fake has no voice 'en-uss'; did you mean en-us"),
        (VoiceSettings(id="gmw/en-uz"), "voice: fake has no voice 'gmw/en-uz'; did you mean gmw/en-us"),
        (VoiceSettings(language="klingon"), "voice: fake has no voice 'klingon' (see `voiceguide voices`)"),
    ],
)
def test_unknown_voice_is_refused_before_any_speech(tmp_path: Path, cache: ClipCache, voice: VoiceSettings,
                                                    message: str) -> None:
    engine = ListingEngine()
    with pytest.raises(OptionError) as info:
        render_session("psoas", tmp_path / "x.mp3", SessionOptions(voice=voice), engine=engine, cache=cache)
    assert str(info.value).startswith(message)
    assert engine.calls == [] and not (tmp_path / "x.mp3").exists()
    with pytest.raises(OptionError):
        plan_session("psoas", SessionOptions(voice=voice), engine=engine, cache=cache, estimate=True)


def test_a_routine_voice_is_checked_too(cache: ClipCache) -> None:
    routine = parse_routine("name: t\nvoice: {language: de-xx}\nstretches: [{name: a}]\n")
    with pytest.raises(OptionError, match="no voice 'de-xx'; did you mean de"):
        plan_session(routine, engine=ListingEngine(), cache=cache, estimate=True)
    plan_session(parse_routine("name: t\nvoice: {language: DE}\nstretches: [{name: a}]\n"),
                 engine=ListingEngine(), cache=cache, estimate=True)  # a known language passes, in any case


def test_real_engine_names_close_voices() -> None:
    result = runner.invoke(app, ["plan", "psoas", "--estimate", "--voice", "en-uss"])
    assert result.exit_code == 2 and "did you mean en-us" in result.stderr


def test_library_takes_str_paths_and_routine_names(tmp_path: Path, fake_engine: FakeEngine, cache: ClipCache) -> None:
    result = render_session("psoas", str(tmp_path / "x.mp3"), engine=fake_engine, cache=cache)
    assert result.output == tmp_path / "x.mp3" and result.output.stat().st_size > 0
    assert plan_session("psoas", engine=fake_engine, cache=cache) == result.plan
    routine_file = tmp_path / "r.yaml"
    routine_file.write_text("name: From file\nstretches: [{name: a, hold: 5}]\n")
    assert plan_session(str(routine_file), engine=fake_engine, cache=cache).routine == "From file"
    assert BatchItem(str(routine_file), str(tmp_path / "y.mp3")).output == tmp_path / "y.mp3"


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda e, c, p: plan_session(42, engine=e, cache=c), OptionError, "routine: must be a Routine"),
        (lambda e, c, p: plan_session("no-such-routine", engine=e, cache=c), RoutineError, "no-such-routine: no such"),
        (lambda e, c, p: plan_session("psoas", {"hold": 3}, engine=e, cache=c), OptionError, "options: must be a SessionOptions"),
        (lambda e, c, p: plan_session("psoas", engine="espeak", cache=c), OptionError, "engine: must be a speech engine"),
        (lambda e, c, p: plan_session("psoas", engine=e, cache="/tmp"), OptionError, "cache: must be a ClipCache"),
        (lambda e, c, p: render_session("psoas", None, engine=e, cache=c), OptionError, "output: must be a file path"),
        (lambda e, c, p: render_session("psoas", p, engine=e, cache=c, extras=True), OptionError, "extras: must be a Sidecars"),
        (lambda e, c, p: render_session("psoas", p, engine=e, cache=c, jobs=0), OptionError, "--jobs: must be at least 1"),
        (lambda e, c, p: render_session("psoas", p, engine=e, cache=c, progress=1), OptionError, "progress: must be a function"),
        (lambda e, c, p: preview_line(None, p, engine=e, cache=c), OptionError, "preview: the line must be text"),
        (lambda e, c, p: preview_line("Hi", p, VoiceSettings(rate=1), engine=e, cache=c), OptionError, "voice rate"),
        (lambda e, c, p: BatchItem(load_builtin("psoas"), 3), OptionError, "output: must be a file path"),
    ],
)
def test_library_misuse_raises_our_errors(tmp_path: Path, fake_engine: FakeEngine, cache: ClipCache, call, error,
                                          message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error) as info:
        call(fake_engine, cache, tmp_path / "x.mp3")
    assert message in str(info.value)
    assert fake_engine.calls == [] and not (tmp_path / "x.mp3").exists()
    assert Sidecars()  # the default extras object is fine


@pytest.mark.parametrize(("rate", "message"), [(99999, "voice rate: 99999 is out of range (80 to 450)"),
                                               (-50, "voice rate: -50 is out of range (80 to 450)")])
def test_voice_settings_refuse_a_rate_out_of_range_when_built(rate: int, message: str) -> None:
    with pytest.raises(OptionError) as info:
        VoiceSettings(rate=rate)
    assert str(info.value) == message
