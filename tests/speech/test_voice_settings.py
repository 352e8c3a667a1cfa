"""VoiceSettings checks itself when built, and a routine's voice block converts into it."""

from __future__ import annotations

import pytest

from voiceguide.errors import OptionError
from voiceguide.routine.builtin import load_builtin
from voiceguide.routine.model import Voice
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


def test_a_routine_voice_converts_and_the_caller_overrides_it() -> None:
    routine = VoiceSettings.from_routine(load_builtin("psoas").voice)
    assert routine.rate == 160
    assert VoiceSettings.from_routine(None) == VoiceSettings()
    base = VoiceSettings.from_routine(Voice(id="gmw/en", rate=150, pitch=40))
    assert VoiceSettings(rate=200).over(base) == VoiceSettings(id="gmw/en", rate=200, pitch=40)
    assert VoiceSettings(language="de").over(base) == VoiceSettings(language="de", rate=150, pitch=40)  # id dropped
    assert VoiceSettings(volume=0.0).over(base).volume == 0.0
