"""Shared fixtures: a temporary cache for every test, a fake speech engine, audio decoding."""

from __future__ import annotations

import hashlib
import math
import os
import signal
import struct
import subprocess
import wave
from array import array
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from voiceguide.ffmpeg import ffmpeg_exe
from voiceguide.speech.cache import ClipCache
from voiceguide.speech.engine import VoiceInfo, VoiceSettings


@pytest.fixture(autouse=True)
def _ctrl_c_as_python_sets_it() -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt in every test, and children started here get the default action, however
    the suite was launched: a shell starts a background job (`cmd &`, nohup, some CI runners) with SIGINT
    ignored, which Python then keeps, and the tests that send a real SIGINT found it dropped."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Never touch the user's cache: every test gets its own."""
    folder = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("VOICEGUIDE_CACHE_DIR", str(folder))
    # `auto` picks the natural voice when its extra is installed (CI installs it): tests that do not name an
    # engine speak with espeak, so they stay fast and keep their measured expectations; tests/speech name piper.
    monkeypatch.setenv("VOICEGUIDE_ENGINE", "espeak")
    return folder


def fake_seconds(text: str) -> float:
    """How long the fake engine 'speaks' a text (before trimming its padding)."""
    return 0.3 if text.strip(".").isdigit() else min(6.0, 0.25 + 0.04 * len(text))


class FakeEngine:
    """A deterministic stand-in for a speech engine: a tone per line, padded with silence.

    Writes 22050 Hz WAVs like espeak does, so resampling and trimming are exercised.
    """

    name = "fake"
    RATE = 22050
    PAD = 0.05  # seconds of silence before and after, trimmed by clip processing

    def __init__(self) -> None:
        self.calls: list[str] = []

    def identity(self) -> str:
        return "fake-1"

    def voices(self) -> list[VoiceInfo]:
        return [VoiceInfo("fake/en", "Fake English", ("en",))]

    def synthesize(self, texts: Sequence[str], voice: VoiceSettings, folder: Path,
                   on_done: Callable[[str], None] | None = None) -> dict[str, Path]:
        out = {}
        for index, text in enumerate(texts):
            self.calls.append(text)
            path = folder / f"{index}.wav"
            write_tone(path, fake_seconds(text), self.RATE, pad=self.PAD,
                       freq=200 + int(hashlib.sha1(text.encode()).hexdigest()[:3], 16) % 400)
            out[text] = path
            if on_done is not None:
                on_done(text)
        return out


class BuzzyEngine(FakeEngine):
    """Like the fake engine, but each line is a buzzy, peaky 'voice': harmonics in phase (crest factor ~4),
    onsets and syllables that make lossy encoders overshoot true peak, as real speech does."""

    def synthesize(self, texts: Sequence[str], voice: VoiceSettings, folder: Path,
                   on_done: Callable[[str], None] | None = None) -> dict[str, Path]:
        out = {}
        for index, text in enumerate(texts):
            seed = int(hashlib.sha1(text.encode()).hexdigest()[:8], 16)
            pitch = 100 + seed % 80
            count = round(min(4.0, 0.3 + 0.05 * len(text)) * self.RATE)
            samples = array("h", bytes(2 * round(self.PAD * self.RATE)))
            for i in range(count):
                t = i / self.RATE
                syllable = max(0.0, math.sin(math.pi * t * 4)) ** 0.5  # four syllables a second, sharp-edged
                value = sum(math.cos(2 * math.pi * pitch * k * t) / k for k in range(1, 9)) / 2.72
                samples.append(round(26000 * syllable * value))
            samples.extend(bytes(2 * round(self.PAD * self.RATE)))
            path = folder / f"{index}.wav"
            with wave.open(str(path), "wb") as wav:
                wav.setnchannels(1)
                wav.setsampwidth(2)
                wav.setframerate(self.RATE)
                wav.writeframes(samples.tobytes())
            out[text] = path
            if on_done is not None:
                on_done(text)
        return out


def write_tone(path: Path, seconds: float, rate: int, pad: float = 0.0, freq: float = 440.0,
               amplitude: float = 0.5) -> None:
    """Write a mono 16-bit sine tone WAV with optional silent padding."""
    silence = [0] * round(pad * rate)
    tone = [round(amplitude * 32767 * math.sin(2 * math.pi * freq * i / rate)) for i in range(round(seconds * rate))]
    samples = silence + tone + silence
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(struct.pack(f"<{len(samples)}h", *samples))


def decode(path: Path, rate: int = 44100) -> array:
    """Decode any audio file to mono 16-bit samples at ``rate`` with ffmpeg."""
    raw = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-i", str(path), "-f", "s16le", "-ac", "1",
         "-ar", str(rate), "pipe:1"],
        check=True, capture_output=True,
    ).stdout
    samples = array("h")
    samples.frombytes(raw)
    return samples


def onsets(samples: array, rate: int = 44100, threshold: int = 1000, min_gap: float = 0.15) -> list[float]:
    """Times (s) where sound starts after at least ``min_gap`` seconds of near-silence."""
    found: list[float] = []
    quiet_run = min_gap * rate  # the start of the file counts as after silence
    gap = round(min_gap * rate)
    for i, value in enumerate(samples):
        if abs(value) < threshold:
            quiet_run += 1
        else:
            if quiet_run >= gap:
                found.append(i / rate)
            quiet_run = 0
    return found


def rms(samples: array, start: float, end: float, rate: int = 44100) -> float:
    """Root-mean-square level of a time window."""
    window = samples[round(start * rate) : round(end * rate)]
    return math.sqrt(sum(v * v for v in window) / max(1, len(window)))


@pytest.fixture
def fake_engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def cache(tmp_path: Path) -> ClipCache:
    return ClipCache(tmp_path / "clips")


def decoded_length(path: Path, rate: int = 44100) -> int:
    """Count the samples ffmpeg decodes from a file, streaming (for long files)."""
    process = subprocess.Popen(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-i", str(path), "-f", "s16le", "-ac", "1",
         "-ar", str(rate), "pipe:1"],
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None
    total = 0
    while chunk := process.stdout.read(1 << 20):
        total += len(chunk)
    assert process.wait() == 0
    return total // 2


def our_children(named: str = "") -> list[int]:
    """This process's child processes (zombies included: a child nobody waited for is left behind too), only
    those whose command name contains ``named`` if given."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # gone meanwhile
            name, _, rest = stat.partition("(")[2].rpartition(")")
            if int(rest.split()[1]) == os.getpid() and named in name:
                found.append(int(entry.name))
    return found


def ctrl_c_once_a_child_sleeps(within: float = 20) -> None:
    """On a thread: once one of this process's children runs ``sleep`` (a hung ffmpeg stand-in), send this
    process a real SIGINT (it wakes whatever wait the main thread is in)."""
    import signal
    import threading
    import time

    def press() -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if any("sleep" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
                   for pid in our_children() if Path(f"/proc/{pid}").exists()):
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.01)

    threading.Thread(target=press, daemon=True).start()


def interrupt_as_ffmpeg_starts(monkeypatch: pytest.MonkeyPatch, where: str, nth: int = 1,
                               module: Any = None) -> list[subprocess.Popen[Any]]:
    """Send this process a real SIGINT as the ``nth`` process starts: inside ``subprocess.Popen``, once the
    process runs (``where="popen"``), or the moment ``module.start_ffmpeg`` has returned it to its caller
    (``where="returned"``). Returns the processes started, to check that none is left running."""
    import signal

    started: list[subprocess.Popen[Any]] = []
    if where == "popen":
        real_popen = subprocess.Popen

        class Interrupted(real_popen):  # type: ignore[misc, valid-type]
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                started.append(self)
                if len(started) == nth:
                    os.kill(os.getpid(), signal.SIGINT)

        monkeypatch.setattr(subprocess, "Popen", Interrupted)
    else:
        real_start = module.start_ffmpeg

        def start(*args: Any, **kwargs: Any) -> subprocess.Popen[Any]:
            process = real_start(*args, **kwargs)
            started.append(process)
            if len(started) == nth:
                os.kill(os.getpid(), signal.SIGINT)
            return process

        monkeypatch.setattr(module, "start_ffmpeg", start)
    return started
