"""VoiceSettings checks itself when built, and it is the very type a routine's voice block is read into."""

from __future__ import annotations

import pytest

from voiceguide.errors import OptionError, RoutineError
from voiceguide.routine.builtin import load_builtin
from voiceguide.routine.load import parse_routine
from voiceguide.speech.engine import DEFAULT_WPM, VoiceSettings


def test_good_settings_and_the_default_rate() -> None:
    voice = VoiceSettings(id="gmw/en-us", language="en-us", rate=80, volume=0.0, pitch=100)
    assert voice.wpm == 80
    assert VoiceSettings(rate=450, volume=1, pitch=0).volume == 1
    assert VoiceSettings().wpm == DEFAULT_WPM


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("rate", 79, "out of range"), ("rate", 451, "out of range"), ("rate", -50, "out of range"),
    ("rate", 99999, "out of range"), ("rate", 160.0, "whole number"), ("rate", "160", "whole number"),
    ("rate", True, "whole number"),
    ("volume", float("nan"), "out of range"), ("volume", float("inf"), "out of range"), ("volume", -0.1, "out of range"),
    ("volume", 1.01, "out of range"), ("volume", "loud", "a number"),
    ("pitch", 101, "out of range"), ("pitch", -1, "out of range"), ("pitch", 50.5, "whole number"),
    ("id", "", "blank"), ("id", "  ", "blank"), ("id", 7, "expected text"), ("language", "\t", "blank"),
])
def test_bad_settings_are_option_errors_naming_the_field(field: str, value: object, reason: str) -> None:
    with pytest.raises(OptionError, match=rf"voice {field}: .*{reason}") as caught:
        VoiceSettings(**{field: value})  # type: ignore[arg-type]
    assert "\n" not in str(caught.value)


def test_a_routine_voice_is_the_same_type_and_the_caller_overrides_it() -> None:
    routine = load_builtin("psoas").voice
    assert type(routine) is VoiceSettings
    assert routine.rate == 160
    base = parse_routine("name: x\nvoice: {id: gmw/en, rate: 150, pitch: 40}\n"
                         "stretches: [{name: a, hold: 5}]\n").voice
    assert base == VoiceSettings(id="gmw/en", rate=150, pitch=40)
    assert VoiceSettings(rate=200).over(base) == VoiceSettings(id="gmw/en", rate=200, pitch=40)
    assert VoiceSettings(language="de").over(base) == VoiceSettings(language="de", rate=150, pitch=40)  # id dropped
    assert VoiceSettings(volume=0.0).over(base).volume == 0.0
    assert VoiceSettings(engine="piper").over(base).engine == "piper"
    assert VoiceSettings().over(VoiceSettings(engine="espeak")).engine == "espeak"


@pytest.mark.parametrize(("line", "message"), [
    ("{rate: 451}", "r.yaml:2: voice.rate: must be at most 450 (got 451)"),
    ("{pitch: -1}", "r.yaml:2: voice.pitch: must be at least 0 (got -1)"),
    ("{volume: .nan}", "r.yaml:2: voice.volume: must be a number (got nan)"),
    ("{id: '  '}", "r.yaml:2: voice.id: must not be blank"),
    ("{language: ''}", "r.yaml:2: voice.language: must not be blank"),
    ("{rate: 160.5}", "r.yaml:2: voice.rate: must be a whole number (got 160.5)"),
])
def test_the_same_bounds_are_checked_when_a_routine_is_read(line: str, message: str) -> None:
    with pytest.raises(RoutineError) as caught:
        parse_routine(f"name: x\nvoice: {line}\nstretches: [{{name: a, hold: 5}}]\n", "r.yaml")
    assert str(caught.value) == message


def test_an_unknown_engine_is_refused_in_code_too() -> None:
    with pytest.raises(OptionError, match="voice engine: 'festival' is not one of auto, espeak, pyttsx3, piper"):
        VoiceSettings(engine="festival")  # type: ignore[arg-type]
