"""Tones in the plan: which tones exist and how long each lasts (the sound itself is made in voiceguide.audio.tones)."""

from __future__ import annotations

from enum import Enum


class Tone(Enum):
    """A generated sound in the script: its own type, so no routine text can be mistaken for one."""

    HOLD_START = "hold-start"
    HOLD_END = "hold-end"
    SESSION_END = "session-end"


HOLD_START, HOLD_END, SESSION_END = Tone.HOLD_START, Tone.HOLD_END, Tone.SESSION_END

# tone -> (seconds, decay time constant, [(frequency Hz, relative amplitude)])
RECIPES = {
    Tone.HOLD_START: (0.6, 0.18, [(880.0, 1.0), (1320.0, 0.45), (2640.0, 0.1)]),  # bright, rising fifth
    Tone.HOLD_END: (0.6, 0.18, [(660.0, 1.0), (990.0, 0.35), (1980.0, 0.08)]),  # a fourth lower
    Tone.SESSION_END: (2.8, 0.9, [(523.25, 1.0), (1046.5, 0.4), (1444.0, 0.25), (2093.0, 0.12), (2700.0, 0.06)]),  # bell
}
PEAK = 0.3  # of full scale: a soft sound beside speech levelled to -20 dBFS RMS


def tone_seconds(tone: Tone) -> float:
    """How long a tone lasts."""
    return RECIPES[tone][0]


def tone_samples(tone: Tone, rate: int) -> int:
    """A tone's length in samples, without generating it."""
    return round(RECIPES[tone][0] * rate)
