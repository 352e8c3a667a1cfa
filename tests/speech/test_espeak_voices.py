"""The espeak worker lists espeak-ng's voices itself, exactly as pyttsx3's driver does, without importing the driver
(whose imports made the fork behind every spoken line slower)."""

from __future__ import annotations

import json
import subprocess
import sys


def _run(code: str) -> object:
    """``code``'s JSON output, run in a fresh Python (libespeak-ng is initialised once per process)."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    return json.loads(done.stdout)


def test_the_workers_voices_are_pyttsx3s_in_the_same_order() -> None:
    listed = _run(
        "import json\n"
        "from voiceguide.speech import espeak_worker as w\n"
        "w._load_espeak()\n"
        "speaker = w.Speaker()\n"
        "from pyttsx3.drivers.espeak import EspeakDriver\n"
        "theirs = [[v.id, v.name, v.languages] for v in EspeakDriver.getProperty('voices')]\n"
        "ours = [[v.id, v.name, v.languages] for v in w.espeak_voices(speaker.espeak)]\n"
        "print(json.dumps({'theirs': theirs, 'ours': ours, 'ids': sorted(speaker.voice_ids)}))\n")
    assert isinstance(listed, dict)
    assert len(listed["theirs"]) > 10  # espeak-ng ships some hundred voices
    assert listed["ours"] == listed["theirs"]
    assert listed["ids"] == sorted(voice[0] for voice in listed["theirs"])


def test_a_ready_speaker_has_not_imported_pyttsx3s_driver_or_its_imports() -> None:
    loaded = _run(
        "import json, sys\n"
        "from voiceguide.speech import espeak_worker as w\n"
        "w._load_espeak()\n"
        "w.Speaker()\n"
        "print(json.dumps(sorted(m for m in sys.modules if m in "
        "('pyttsx3.drivers.espeak', 'tempfile', 'shutil', 'subprocess', 'logging'))))\n")
    assert loaded == []
