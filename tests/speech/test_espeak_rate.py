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
