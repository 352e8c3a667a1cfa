"""Measure espeak-ng's real speaking pace, for the calibration table in voiceguide/speech/espeak.py.

espeak's rate parameter is nominally words per minute, but on real sentences,
with words counted the way voiceguide counts them (``count_words``) and the
clip trimmed the way it is stored (``process_clip``), it speaks faster than
that. A session's speech is mostly stretch instructions, so this speaks every
built-in routine's instructions plus the paragraphs below at several espeak
rate values, and prints the measured words per minute (total words / total trimmed seconds) for each:

    .venv/bin/python scripts/calibrate_espeak.py

Paste the table into ``_CALIBRATION`` in voiceguide/speech/espeak.py.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from voiceguide.routine.builtin import builtin_names, load_builtin
from voiceguide.speech.clip import process_clip
from voiceguide.speech.engine import VoiceSettings, count_words
from voiceguide.speech.espeak import EspeakEngine
from voiceguide.speech.worker import WorkerEngine

ESPEAK_RATES = (80, 100, 120, 140, 160, 180, 200, 250, 300, 350, 450)
PARAGRAPHS = (  # stretch instructions in the built-ins' style, not in any routine
    "Lie on your back with your knees bent and your feet flat on the floor. Bring one knee towards your chest "
    "and hold it with both hands, letting the other leg slide out long. Keep your lower back heavy and relaxed.",
    "Stand tall with your feet hip-width apart. Step your right foot back and press the heel gently into the "
    "ground, keeping the back leg straight. Lean into the front knee until you feel the calf lengthen.",
    "Sit on the floor with your legs out in front of you. Reach both arms forward, hinge from the hips rather "
    "than rounding the back, and let your hands rest wherever they reach. If anything hurts, ease off.",
    "Roll your shoulders back three times, then let your arms hang loose at your sides. Turn your head slowly "
    "to the right, pause, and bring it back to the centre before turning to the left.",
)


class _RawEspeak(WorkerEngine):
    """The espeak worker without calibration: ``rate`` goes to espeak as it is."""

    name = "espeak-raw"
    command = EspeakEngine.command


def main() -> None:
    lines = list(PARAGRAPHS)
    for name in builtin_names():
        lines += [s.instructions for s in load_builtin(name).stretches if s.instructions]
    lines = list(dict.fromkeys(lines))
    words = sum(count_words(t) for t in lines)
    print(f"{len(lines)} lines, {words} words")
    print("espeak rate -> measured wpm (min..max of single lines)")
    for rate in ESPEAK_RATES:
        with tempfile.TemporaryDirectory() as folder:
            paths = _RawEspeak().synthesize(lines, VoiceSettings(rate=rate), Path(folder))
            seconds = {t: process_clip(p, 44100).samples / 44100 for t, p in paths.items()}
        each = [60 * count_words(t) / s for t, s in seconds.items()]
        print(f"  {rate:3d}: {60 * words / sum(seconds.values()):6.1f}  ({min(each):.0f}..{max(each):.0f})")


if __name__ == "__main__":
    main()
