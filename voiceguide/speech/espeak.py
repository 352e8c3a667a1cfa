"""The default engine: libespeak-ng (bundled by espeakng-loader) through pyttsx3's bindings, rate calibrated."""

from __future__ import annotations

import hashlib
import itertools
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from voiceguide.speech.engine import VoiceSettings, installed_version
from voiceguide.speech.words import WORDS_VERSION
from voiceguide.speech.worker import WorkerEngine

# espeak's rate parameter is not words per minute as voiceguide counts them
# (words / seconds of trimmed speech): on real sentences espeak speaks faster.
# Measured with scripts/calibrate_espeak.py (espeak-ng 1.52 from espeakng-loader
# 0.2.4, default voice, lines of 8+ words, total words / total trimmed seconds):
#
#   espeak rate   measured wpm
#      80          107.8   (single lines 102..117)
#     100          127.6   (121..139)
#     120          152.9   (145..166)
#     140          179.2   (168..194)
#     160          204.0   (192..221)
#     180          229.9   (215..248)
#     200          255.6   (239..276)
#     250          318.8   (298..341)
#     300          386.4   (360..408)
#     350          456.7   (427..481)
#     450          572.1   (536..599)
#
# The worker speaks at the interpolated rate, then corrects a line of 8+ words
# whose own pace is more than 3% off (espeak_worker.Speaker._speak); below
# 107.8 wpm, espeak's slowest, it adds pauses between words.
_CALIBRATION: tuple[tuple[int, float], ...] = (
    (80, 107.8), (100, 127.6), (120, 152.9), (140, 179.2), (160, 204.0), (180, 229.9),
    (200, 255.6), (250, 318.8), (300, 386.4), (350, 456.7), (450, 572.1),
)


def espeak_rate(wpm: int) -> int:
    """The espeak rate parameter that speaks ``wpm`` words per minute, interpolated in the measured table."""
    table = _CALIBRATION
    if wpm <= table[0][1]:
        return table[0][0]
    for (low_rate, low_wpm), (high_rate, high_wpm) in itertools.pairwise(table):
        if wpm <= high_wpm:
            return round(low_rate + (wpm - low_wpm) * (high_rate - low_rate) / (high_wpm - low_wpm))
    return table[-1][0]


class EspeakEngine(WorkerEngine):
    """The default engine: libespeak-ng in worker processes, speaking at the rate asked for."""

    name = "espeak"
    command = (sys.executable, "-m", "voiceguide.speech.espeak_worker")
    paced = True  # honours the rate: a clip far off the asked pace is a fault

    def identity(self) -> str:
        versions = [installed_version(p) for p in ("pyttsx3", "espeakng-loader")]
        calibration = hashlib.sha256(repr(_CALIBRATION).encode()).hexdigest()[:8]  # a new table, new clips
        return f"pyttsx3-{versions[0]}+espeak-ng-{versions[1]}+rate-{calibration}+words-{WORDS_VERSION}"

    def worker_voice(self, voice: VoiceSettings) -> dict[str, Any]:
        """The settings with ``rate`` as the espeak parameter that gives ``voice.wpm`` words per minute."""
        return voice.synthesis() | {"rate": espeak_rate(voice.wpm), "wpm": voice.wpm}

    def synthesize_shaped(self, texts: Sequence[str], voice: VoiceSettings, folder: Path, rate: int,
                          on_done: Callable[[str], None] | None = None) -> dict[str, Path]:
        """As ``synthesize``, but each WAV is already the clip at ``rate`` (speech.shaping, what process_clip
        makes of the engine's WAV, to the byte): shaped by the worker that spoke it, while the other speaks."""
        from voiceguide.speech.shaping import CLIP_RATES, check_rate

        check_rate("synthesize_shaped", rate, CLIP_RATES)
        return self._synthesize(texts, self.worker_voice(voice) | {"shape_rate": rate}, folder, on_done)


Pyttsx3Engine = EspeakEngine  # the name it had before engines were registered
