"""Synthesized tones: a soft chime when a hold starts, another when it ends, a bell at the end."""

from __future__ import annotations

import functools
import math
from array import array

from voiceguide.plan.tones import PEAK, RECIPES, Tone, tone_samples
from voiceguide.speech.engine import Clip


@functools.lru_cache(maxsize=16)
def tone_clip(tone: Tone, rate: int) -> Clip:
    """The generated clip for a tone: mono 16-bit at ``rate``, 5 ms attack, decaying to silence."""
    _, decay, partials = RECIPES[tone]
    count = tone_samples(tone, rate)
    attack = round(0.005 * rate)
    total = sum(amplitude for _, amplitude in partials)
    samples = array("h")
    for i in range(count):
        t = i / rate
        envelope = min(1.0, i / attack) * math.exp(-t / decay) * min(1.0, (count - i) / attack)
        value = sum(a * math.sin(2 * math.pi * f * t) for f, a in partials) / total
        samples.append(round(32767 * PEAK * envelope * value))
    return Clip(samples.tobytes(), rate)
