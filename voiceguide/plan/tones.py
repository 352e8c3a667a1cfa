"""Tones in the plan: which tones exist and how long each lasts (the sound itself is made in voiceguide.audio.tones)."""

from __future__ import annotations

TONE_PREFIX = "\ue000tone:"  # a private-use character: no routine text can be mistaken for a tone
HOLD_START, HOLD_END, SESSION_END = "hold-start", "hold-end", "session-end"

# name -> (seconds, decay time constant, [(frequency Hz, relative amplitude)])
_SOUNDS = {
    HOLD_START: (0.6, 0.18, [(880.0, 1.0), (1320.0, 0.45), (2640.0, 0.1)]),  # bright, rising fifth
    HOLD_END: (0.6, 0.18, [(660.0, 1.0), (990.0, 0.35), (1980.0, 0.08)]),  # a fourth lower
    SESSION_END: (2.8, 0.9, [(523.25, 1.0), (1046.5, 0.4), (1444.0, 0.25), (2093.0, 0.12), (2700.0, 0.06)]),  # bell
}
PEAK = 0.3  # of full scale: a soft sound beside speech levelled to -20 dBFS RMS


def tone_text(name: str) -> str:
    """The script text that stands for a tone."""
    return TONE_PREFIX + name


def is_tone(text: str) -> bool:
    """Whether a script text is a tone rather than something to speak."""
    return text.startswith(TONE_PREFIX)


def tone_seconds(name: str) -> float:
    """How long a tone lasts."""
    return _SOUNDS[name][0]


def tone_samples(text: str, rate: int) -> int:
    """A tone text's length in samples, without generating it."""
    return round(_SOUNDS[text.removeprefix(TONE_PREFIX)][0] * rate)
