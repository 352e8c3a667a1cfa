"""Synthesized tones: a soft chime when a hold starts, another when it ends, a bell at the end.

Generated from sine partials with smooth attacks and exponential decays, so no
audio files ship with voiceguide. They are clips like spoken lines: planned
in the timeline at exact times and levelled with the speech.
"""

from __future__ import annotations

import functools
import math
from array import array

from voiceguide.speech import Clip

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


@functools.lru_cache(maxsize=16)
def tone_clip(text: str, rate: int) -> Clip:
    """The generated clip for a tone text: mono 16-bit at ``rate``, 5 ms attack, decaying to silence."""
    _, decay, partials = _SOUNDS[text.removeprefix(TONE_PREFIX)]
    count = tone_samples(text, rate)
    attack = round(0.005 * rate)
    total = sum(amplitude for _, amplitude in partials)
    samples = array("h")
    for i in range(count):
        t = i / rate
        envelope = min(1.0, i / attack) * math.exp(-t / decay) * min(1.0, (count - i) / attack)
        value = sum(a * math.sin(2 * math.pi * f * t) for f, a in partials) / total
        samples.append(round(32767 * PEAK * envelope * value))
    return Clip(samples.tobytes(), rate)
