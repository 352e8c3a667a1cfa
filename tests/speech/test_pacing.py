"""A clip whose length is implausible for its text and settings is spoken again, then an engine fault, never cached."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from conftest import write_tone

from voiceguide.errors import SpeechError
from voiceguide.speech.cache import ClipCache
from voiceguide.speech.engine import VoiceSettings, count_words
from voiceguide.speech.pacing import pace_fault
from voiceguide.speech.synth import synthesize

RATE = 44100
LINE = "Kneel on one knee and place the other foot flat."  # 10 words: 3.75 s at 160 words per minute


class PacedEngine:
    """Speaks each line for the seconds its script says, one entry per call (the last one repeats)."""

    name = "paced-fake"
    paced = True

    def __init__(self, seconds: list[float]) -> None:
        self.seconds = seconds
        self.calls = 0

    def identity(self) -> str:
        return "paced-fake-1"

    def voices(self) -> list[object]:
        return []

    def synthesize(self, texts: Sequence[str], voice: VoiceSettings, folder: Path,
                   on_done: Callable[[str], None] | None = None) -> dict[str, Path]:
        seconds = self.seconds[min(self.calls, len(self.seconds) - 1)]
        self.calls += 1
        out = {}
        for index, text in enumerate(texts):
            out[text] = folder / f"{index}.wav"
            write_tone(out[text], seconds, 22050, pad=0.1)
            if on_done is not None:
                on_done(text)
        return out


def test_a_line_at_the_wrong_pace_is_spoken_again_and_only_the_good_clip_is_cached(cache: ClipCache) -> None:
    """The first take comes out at 200 wpm's length for a 160 wpm request x 1.5 (a dropped rate): retried."""
    engine = PacedEngine([2.0, 3.8])  # 300 wpm, then 158 wpm
    progress: list[tuple[int, int]] = []
    clips = synthesize([LINE], VoiceSettings(rate=160), engine, cache, RATE, progress=lambda d, t: progress.append((d, t)))
    assert engine.calls == 2
    assert clips[LINE].samples == pytest.approx(3.8 * RATE, abs=0.01 * RATE)
    assert progress[-1] == (1, 1) and all(done <= total for done, total in progress)
    again = synthesize([LINE], VoiceSettings(rate=160), engine, cache, RATE)
    assert engine.calls == 2 and again == clips  # the good take came from the cache


def test_a_line_at_the_wrong_pace_twice_is_an_engine_fault_and_never_cached(cache: ClipCache) -> None:
    engine = PacedEngine([2.0])
    with pytest.raises(SpeechError, match=r"fault on line 'Kneel on.*spoken at 300 words per minute instead of 160"):
        synthesize([LINE], VoiceSettings(rate=160), engine, cache, RATE)
    assert engine.calls == 2 and cache.info()[0] == 0


def test_pace_limits() -> None:
    voice = VoiceSettings(rate=160)
    assert pace_fault(LINE, 3.75, voice, paced=True) == ""
    assert pace_fault(LINE, 3.75 / 1.32, voice, paced=True) == ""  # inside the generous band
    assert "words per minute" in pace_fault(LINE, 3.75 / 1.34, voice, paced=True)
    assert "words per minute" in pace_fault(LINE, 3.75 / 0.74, voice, paced=True)
    assert pace_fault(LINE, 3.75 / 1.5, voice, paced=False) == ""  # an engine that ignores the rate
    assert "s of speech for 10 words" in pace_fault(LINE, 4 * 3.75 + 2.1, voice, paced=False)
    assert pace_fault("Hold.", 1.5, voice, paced=True) == ""  # too short to have a pace
    assert "for 1 words" in pace_fault("Hold.", 4 * 60 / 160 + 2.1, voice, paced=True)


def test_words_are_counted_as_words_per_minute_count_them() -> None:
    # A contraction or possessive is one word (with either apostrophe); both engines pace by this count, so
    # "That's the end of the session." is paced as six words by espeak and by Piper alike.
    assert count_words("That's the end of the session. Well done.") == 8
    assert count_words("Don't pull; the hip\u2019s flexors, 45 seconds.") == 7
    assert count_words("  ... -- !") == 0
