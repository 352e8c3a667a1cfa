"""The real espeak engine speaks at the rate asked for, in words per minute as voiceguide counts them."""

from __future__ import annotations

import itertools

import pytest

from voiceguide.routine.builtin import load_builtin
from voiceguide.speech.cache import ClipCache
from voiceguide.speech.engine import VoiceSettings, count_words
from voiceguide.speech.espeak import espeak_rate
from voiceguide.speech.registry import get_engine
from voiceguide.speech.synth import synthesize

RATE = 44100


def _measured_wpm(texts: list[str], voice: VoiceSettings, cache: ClipCache) -> dict[str, float]:
    clips = synthesize(texts, voice, get_engine(), cache, RATE)
    return {text: 60 * count_words(text) / (clip.samples / RATE) for text, clip in clips.items()}


@pytest.mark.parametrize(("wpm", "low", "high"), [(160, 150, 170), (200, 185, 215), (100, 92, 108)])
def test_psoas_instructions_are_spoken_at_the_rate_asked_for(wpm: int, low: float, high: float,
                                                             cache: ClipCache) -> None:
    """Before: 207-220 words per minute at rate 160 (espeak's rate parameter is not real words per minute)."""
    routine = load_builtin("psoas")
    lines = [stretch.instructions for stretch in routine.stretches if stretch.instructions]
    assert len(lines) >= 3
    voice = routine.voice
    if wpm != voice.rate:
        voice = VoiceSettings(rate=wpm).over(voice)
    measured = _measured_wpm(lines, voice, cache)
    assert all(low <= value <= high for value in measured.values()), measured


def test_the_calibration_rises_with_the_rate() -> None:
    rates = [espeak_rate(wpm) for wpm in range(80, 451, 5)]
    assert all(a <= b for a, b in itertools.pairwise(rates))
    assert rates[0] == 80 and rates[-1] <= 450  # espeak's own limits


def test_spoken_seconds_runs_from_the_first_loud_sample_to_the_last_on_its_grid() -> None:
    """What the worker's pacing measures: every 32nd sample, from the first above the silence threshold to the
    last (a loud sample off that grid is not seen; nothing loud is no time at all)."""
    from array import array

    from voiceguide.speech.espeak_worker import _SILENCE, spoken_seconds

    def line(loud: dict[int, int], length: int = 4000) -> bytes:
        samples = array("h", [0] * length)
        for index, value in loud.items():
            samples[index] = value
        return samples.tobytes()

    assert spoken_seconds(line({}), 22050) == 0.0
    assert spoken_seconds(line({64: _SILENCE}), 22050) == 0.0  # at the threshold is silence
    assert spoken_seconds(line({64: -_SILENCE - 1}), 22050) == 0.0  # one loud sample: no length
    assert spoken_seconds(line({64: _SILENCE + 1, 3200: -20000, 3201: 30000}), 22050) == (3200 - 64) / 22050
    assert spoken_seconds(line({31: 20000, 32: 20000, 3999: 20000, 3968: 20000}), 16000) == (3968 - 32) / 16000
