"""Speech synthesis: clip processing, the content-addressed cache, and the real engine."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from array import array
from importlib import metadata
from pathlib import Path

import pytest
from conftest import FakeEngine, fake_seconds, write_tone
from hypothesis import given, settings
from hypothesis import strategies as st

from voiceguide.errors import OptionError, SpeechError
from voiceguide.speech.cache import ClipCache
from voiceguide.speech.clip import process_clip
from voiceguide.speech.command import CommandEngine
from voiceguide.speech.engine import VoiceSettings, installed_version
from voiceguide.speech.espeak import Pyttsx3Engine
from voiceguide.speech.synth import synthesize
from voiceguide.speech.worker import WorkerEngine

RATE = 44100


def test_process_clip_trims_resamples_and_levels(tmp_path: Path) -> None:
    path = tmp_path / "tone.wav"
    write_tone(path, 1.0, 22050, pad=0.2, amplitude=0.9)
    clip = process_clip(path, RATE)
    assert clip.rate == RATE
    assert abs(clip.samples - RATE) < RATE * 0.01  # padding gone, one second of tone left
    import audioop  # noqa: F401  (pydub needs it; on 3.13 it comes from audioop-lts)

    peak = max(abs(int.from_bytes(clip.pcm[i : i + 2], "little", signed=True)) for i in range(0, len(clip.pcm), 2))
    assert peak < 32767 * 10 ** (-1.5 / 20) + 2  # below the peak ceiling


def test_silent_wav_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "silent.wav"
    write_tone(path, 1.0, 22050, amplitude=0.0)
    with pytest.raises(SpeechError, match="only silence"):
        process_clip(path, RATE)


def test_each_line_is_synthesized_once_then_cached(fake_engine: FakeEngine, cache: ClipCache) -> None:
    texts = ["Hold.", "3", "Hold.", "Switch sides."]
    first = synthesize(texts, VoiceSettings(), fake_engine, cache, RATE)
    assert fake_engine.calls == ["Hold.", "3", "Switch sides."]
    second = synthesize(texts, VoiceSettings(), fake_engine, cache, RATE)
    assert fake_engine.calls == ["Hold.", "3", "Switch sides."]  # nothing new synthesized
    assert first == second
    assert abs(first["Switch sides."].samples / RATE - fake_seconds("Switch sides.")) < 0.01
    # Another voice is another cache entry.
    synthesize(["Hold."], VoiceSettings(rate=120), fake_engine, cache, RATE)
    assert fake_engine.calls[-1] == "Hold."


def test_corrupt_cache_entry_is_regenerated(fake_engine: FakeEngine, cache: ClipCache) -> None:
    synthesize(["Hold."], VoiceSettings(), fake_engine, cache, RATE)
    entry = next(cache.folder.glob("*/*.clip"))
    entry.write_bytes(entry.read_bytes()[:-100])  # truncated
    clips = synthesize(["Hold."], VoiceSettings(), fake_engine, cache, RATE)
    assert fake_engine.calls == ["Hold.", "Hold."]
    assert clips["Hold."].samples > 0
    assert cache.info()[0] == 1


def test_disabled_cache_always_synthesizes(fake_engine: FakeEngine, tmp_path: Path) -> None:
    cache = ClipCache(tmp_path / "c", enabled=False)
    synthesize(["Hold."], VoiceSettings(), fake_engine, cache, RATE)
    synthesize(["Hold."], VoiceSettings(), fake_engine, cache, RATE)
    assert fake_engine.calls == ["Hold.", "Hold."]
    assert not (tmp_path / "c").exists()


def test_real_engine_speaks_without_leaking_to_stdout(cache: ClipCache, capfd: pytest.CaptureFixture[str]) -> None:
    clips = synthesize(["Hold.", "Switch sides.", "3"], VoiceSettings(language="en-us"), Pyttsx3Engine(), cache, RATE)
    assert all(clip.rate == RATE and 0.1 * RATE < clip.samples < 3 * RATE for clip in clips.values())
    assert clips["Switch sides."].samples > clips["3"].samples
    out, _ = capfd.readouterr()
    assert "Audio saved" not in out


def test_real_engine_rejects_unknown_voice(cache: ClipCache) -> None:
    with pytest.raises(SpeechError, match="unknown voice id 'nope/xx'"):
        synthesize(["Hold."], VoiceSettings(id="nope/xx"), Pyttsx3Engine(), cache, RATE)


def test_real_engine_lists_voices() -> None:
    voices = Pyttsx3Engine().voices()
    assert any("en-us" in v.languages for v in voices)


# --- Engine faults, provoked for real by a worker process that misbehaves ---------

FAULTY_WORKER = Path(__file__).with_name("faulty_worker.py")


class FaultyEngine(WorkerEngine):
    """The real worker machinery (subprocesses, timeouts, retries) driving tests/speech/faulty_worker.py."""

    name = "faulty"
    command = (sys.executable, str(FAULTY_WORKER))


@pytest.fixture
def faulty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FaultyEngine:
    monkeypatch.setenv("FAULTY_WORKER_MARKS", str(tmp_path))
    return FaultyEngine(workers=2, timeout=1.0)


def test_worker_engine_speaks_good_lines(faulty: FaultyEngine, cache: ClipCache) -> None:
    clips = synthesize(["Hold.", "Switch sides."], VoiceSettings(), faulty, cache, 44100)
    assert set(clips) == {"Hold.", "Switch sides."}
    assert all(clip.samples > 0.2 * 44100 for clip in clips.values())


def test_line_that_hangs_once_is_retried(faulty: FaultyEngine, cache: ClipCache) -> None:
    started = time.monotonic()
    clips = synthesize(["hang once, then speak", "Hold."], VoiceSettings(), faulty, cache, 44100)
    assert clips["hang once, then speak"].samples > 0
    assert 1.0 <= time.monotonic() - started < 10  # one timeout, then a fresh worker


@pytest.mark.parametrize(("text", "reason"), [
    ("hang forever", "timed out after 1 s"),
    ("garbage wav", "unreadable WAV"),
    ("empty wav", "empty WAV"),
    ("silent wav", "only silence"),
    ("crash the worker", "exited"),
])
def test_faulty_line_fails_after_one_retry_naming_the_line(faulty: FaultyEngine, cache: ClipCache, text: str,
                                                           reason: str) -> None:
    started = time.monotonic()
    with pytest.raises(SpeechError) as caught:
        synthesize([text, "Hold."], VoiceSettings(), faulty, cache, 44100)
    message = str(caught.value)
    assert repr(text) in message and reason in message and "\n" not in message
    assert time.monotonic() - started < 15  # never hangs: at most two timeouts
    assert cache.info()[0] <= 1  # nothing bad was cached


def test_engine_that_cannot_start_says_why(cache: ClipCache, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAULTY_WORKER_START", "fail")
    with pytest.raises(SpeechError, match="no voice data"):
        synthesize(["Hold."], VoiceSettings(), FaultyEngine(workers=1, timeout=1.0), cache, 44100)


def test_missing_engine_package_gives_the_fix() -> None:
    with pytest.raises(SpeechError, match="pip install pyttsx3 espeakng-loader"):
        installed_version("no-such-speech-engine")
    assert installed_version("pyttsx3") == metadata.version("pyttsx3")
    assert installed_version("espeakng-loader") == metadata.version("espeakng-loader")


def test_versions_come_from_the_dist_info_folder_without_importlib_metadata() -> None:
    """Every cache key needs the engines' versions: read from the folder names, not importlib.metadata (about
    12 ms of every render's start-up). piper-tts installs the package ``piper``: looked for as ``piper_tts``,
    it was not found and importlib.metadata was loaded for every render with the natural voice."""
    probe = ("import sys, json; from voiceguide.speech.engine import installed_version; "
             "found = [installed_version('piper-tts', 'piper'), installed_version('onnxruntime'), "
             "installed_version('pyttsx3'), installed_version('espeakng-loader')]; "
             "print(json.dumps([found, 'importlib.metadata' in sys.modules]))")
    found, loaded = json.loads(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                                              check=True).stdout)
    assert found == [metadata.version(name) for name in ("piper-tts", "onnxruntime", "pyttsx3", "espeakng-loader")]
    assert loaded is False


def test_unwritable_cache_does_not_fail_the_render(fake_engine: FakeEngine, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    cache = ClipCache(blocker / "clips")
    clips = synthesize(["Hold."], VoiceSettings(), fake_engine, cache, 44100)
    assert clips["Hold."].samples > 0 and cache.write_failures == 1


def test_a_cache_folder_removed_under_a_render_is_made_again(cache: ClipCache) -> None:
    """The cache makes a missing sub-folder when it stores a clip: at the first clip, and after someone removed
    the whole cache folder while a render ran."""
    import shutil

    from voiceguide.speech.engine import Clip

    cache.put("ab" + "0" * 62, Clip(b"\x01\x00" * 10, 44100))
    shutil.rmtree(cache.folder)
    cache.put("ab" + "1" * 62, Clip(b"\x02\x00" * 10, 44100))
    cache.put("cd" + "1" * 62, Clip(b"\x03\x00" * 10, 44100))
    assert cache.write_failures == 0 and cache.get("ab" + "0" * 62) is None
    assert [found.pcm if found else None for found in (cache.get("ab" + "1" * 62), cache.get("cd" + "1" * 62))] == [
        b"\x02\x00" * 10, b"\x03\x00" * 10]


def test_truncated_cache_entry_is_regenerated(fake_engine: FakeEngine, cache: ClipCache) -> None:
    synthesize(["Hold."], VoiceSettings(), fake_engine, cache, 44100)
    (entry,) = cache.folder.glob("*/*.clip")
    entry.write_bytes(entry.read_bytes()[:-100])  # a render killed mid-write on a filesystem without atomic rename
    clips = synthesize(["Hold."], VoiceSettings(), fake_engine, cache, 44100)
    assert fake_engine.calls == ["Hold.", "Hold."] and cache.get(next(iter(cache_keys(cache)))) is not None
    assert clips["Hold."].samples > 0


def cache_keys(cache: ClipCache) -> list[str]:
    return [p.stem for p in cache.folder.glob("*/*.clip")]


# --- The command engine (any TTS program) ------------------------------------------------

FAKE_TTS = Path(__file__).with_name("fake_tts.py")


@pytest.mark.parametrize("template", [
    [sys.executable, str(FAKE_TTS), "--out", "{output}"],  # the line on stdin, as Piper takes it
    [sys.executable, str(FAKE_TTS), "--out", "{output}", "{text}"],
])
def test_command_engine_speaks_through_a_program(template: list[str], cache: ClipCache) -> None:
    engine = CommandEngine(template, workers=2)
    texts = ["Hold.", "Switch sides.", "A much longer line that takes a while to say."]
    clips = synthesize(texts, VoiceSettings(), engine, cache, 44100)
    lengths = [clips[t].samples for t in texts]
    assert lengths[0] < lengths[1] < lengths[2]  # each line went to the program on its own
    again = synthesize(texts, VoiceSettings(), engine, cache, 44100)
    assert again == clips and cache.info()[0] == 3  # cached like the default engine


def test_command_engine_failures_name_the_line(cache: ClipCache) -> None:
    engine = CommandEngine([sys.executable, str(FAKE_TTS), "--out", "{output}"])
    with pytest.raises(SpeechError, match=r"line 'fail here'.*exit 1: model file not found"):
        synthesize(["fail here"], VoiceSettings(), engine, cache, 44100)
    with pytest.raises(OptionError, match=r"\{output\}"):
        CommandEngine(["piper", "--model", "x.onnx"])
    with pytest.raises(SpeechError, match="speech program not found"):
        synthesize(["Hold."], VoiceSettings(), CommandEngine(["no-such-tts-program", "{output}"]), cache, 44100)


def test_real_engine_pitch_changes_the_voice(cache: ClipCache) -> None:
    low = synthesize(["Hold."], VoiceSettings(pitch=10), Pyttsx3Engine(), cache, 44100)["Hold."]
    high = synthesize(["Hold."], VoiceSettings(pitch=90), Pyttsx3Engine(), cache, 44100)["Hold."]
    assert low.pcm != high.pcm and cache.info()[0] == 2


@settings(max_examples=300, deadline=None)
@given(rate=st.sampled_from([8000, 16000, 22050, 24000, 44100]),
       pieces=st.lists(st.tuples(st.integers(0, 3000), st.sampled_from([0, 1, 60, 103, 104, 110, 180, 200, 400, 20000])),
                       max_size=4))
def test_trimming_finds_the_silence_pydub_finds(rate: int, pieces: list[tuple[int, int]]) -> None:
    """Our millisecond trimming against pydub's detect_leading_silence (chunk_size=1) on the same samples: stretches
    of noise at levels around the -50 dBFS threshold (103.6 of 32768: uniform noise of peak 180-200 has an RMS
    just over it), any length, any rate, both ends."""
    import random

    from voiceguide.speech.clip import _pydub
    from voiceguide.speech.shaping import leading_silence_ms

    pydub = _pydub()
    noise = random.Random(len(pieces) * 7919 + rate)
    samples = array("h")
    for count, level in pieces:
        samples.extend(noise.randint(-level, level) for _ in range(count))
    segment = pydub.AudioSegment(data=samples.tobytes(), sample_width=2, frame_rate=rate, channels=1)
    for side in (segment, segment.reverse()):
        assert leading_silence_ms(side.raw_data, rate) == pydub.silence.detect_leading_silence(
            side, silence_threshold=-50.0, chunk_size=1)
