"""Background music: levelled, looped, faded, ducked under every line; bad files fail before any work."""

from __future__ import annotations

import math
from array import array
from pathlib import Path

import pytest
from conftest import FakeEngine, decode, write_tone
from mutagen.mp3 import MP3

from voiceguide.audio.encoded import measure_file
from voiceguide.audio.music import RELEASE, mix_loudness
from voiceguide.errors import OptionError
from voiceguide.pipeline import SessionOptions, render_session
from voiceguide.routine.builtin import load_builtin
from voiceguide.speech.cache import ClipCache

RATE = 44100
MUSIC_HZ = 1000.0  # the bed is a 1 kHz tone; the fake voice speaks 200-600 Hz


def level_at(samples: array, hz: float, start: float, seconds: float = 0.1) -> float:
    """dB of one frequency in a window (Goertzel), to follow the bed under the voice."""
    first, count = round(start * RATE), round(seconds * RATE)
    coefficient = 2 * math.cos(2 * math.pi * hz / RATE)
    prev = prev2 = 0.0
    for value in samples[first : first + count]:
        prev, prev2 = value + coefficient * prev - prev2, prev
    power = prev2 * prev2 + prev * prev - coefficient * prev * prev2
    return 10 * math.log10(max(power, 1e-9) / count**2)


@pytest.fixture
def bed(tmp_path: Path) -> Path:
    path = tmp_path / "bed.wav"
    write_tone(path, 20.0, RATE, freq=MUSIC_HZ, amplitude=0.3)  # shorter than the session: it must loop
    return path


def test_music_is_ducked_under_every_line_and_recovers(tmp_path: Path, bed: Path, fake_engine: FakeEngine,
                                                       cache: ClipCache) -> None:
    out = tmp_path / "s.mp3"
    options = SessionOptions(music=(bed,), music_volume=-18.0, duck=12.0)
    plan = render_session(load_builtin("desk-break"), out, options, engine=fake_engine, cache=cache).plan
    assert MP3(out).info.channels == 2  # stereo when music is mixed in
    samples = decode(out)
    assert abs(len(samples) - plan.total) <= RATE // 1000
    found = measure_file(out)  # the stereo file as written, every channel counted, as players measure it
    assert abs(found.integrated + 16.0) <= 0.5 and found.true_peak <= -1.0
    lines = [e for e in plan.speech() if e.end - e.start > 0.5 * RATE]
    checked = 0
    for before, line, after in zip(plan.speech(), list(plan.speech())[1:], list(plan.speech())[2:], strict=False):
        if line not in lines or line.start - before.end < 3 * RATE or after.start - line.end < 3 * RATE:
            continue
        free = level_at(samples, MUSIC_HZ, plan.seconds(line.start) - 1.5)  # a second before the attack
        under = level_at(samples, MUSIC_HZ, plan.seconds(line.start) + 0.2)  # while the line is said
        back = level_at(samples, MUSIC_HZ, plan.seconds(line.end) + RELEASE + 0.05)  # half a second after it
        assert free - under >= 10.0, (line.text, free, under)
        assert abs(free - back) <= 1.0, (line.text, free, back)
        checked += 1
    assert checked >= 3


def test_music_fades_in_and_out(tmp_path: Path, bed: Path, fake_engine: FakeEngine, cache: ClipCache) -> None:
    from voiceguide.audio.music import FADE_IN, FADE_OUT, MusicBed, measure_track

    out = tmp_path / "s.mp3"
    routine = load_builtin("desk-break")
    plan = render_session(routine, out, SessionOptions(music=(bed,)), engine=fake_engine, cache=cache).plan
    music = MusicBed(plan, [measure_track(bed)], -34.0, 12.0)
    gains = [music.gain_at(i) for i in range(0, round(FADE_IN * RATE), 441)]
    undocked = [g for g, i in zip(gains, range(0, round(FADE_IN * RATE), 441), strict=True)
                if not any(a <= i < b for a, b in music.spans)]
    assert gains[0] == 0.0 and undocked == sorted(undocked)  # rises from nothing
    assert music.gain_at(plan.total - 1) < 0.001 and music.gain_at(plan.total - round(FADE_OUT * RATE)) > 0.0
    samples = decode(out)
    middle = max(level_at(samples, MUSIC_HZ, t) for t in (60.0, 90.0, 120.0, 150.0))
    assert level_at(samples, MUSIC_HZ, plan.seconds(plan.total) - 0.15) < middle - 20  # faded out at the end


def test_unreadable_music_fails_before_any_work(tmp_path: Path, fake_engine: FakeEngine, cache: ClipCache) -> None:
    fake = tmp_path / "song.mp3"
    fake.write_text("not audio at all")
    with pytest.raises(OptionError, match=r"--music: .*song\.mp3: cannot be read as audio"):
        render_session(load_builtin("desk-break"), tmp_path / "s.mp3", SessionOptions(music=(fake,)), engine=fake_engine,
                       cache=cache)
    with pytest.raises(OptionError, match=r"--music: .*missing\.ogg"):
        render_session(load_builtin("desk-break"), tmp_path / "s.mp3", SessionOptions(music=(tmp_path / "missing.ogg",)),
                       engine=fake_engine, cache=cache)
    assert fake_engine.calls == [] and not (tmp_path / "s.mp3").exists()


def test_mix_loudness_counts_the_bed_only_above_the_gate(fake_engine: FakeEngine, cache: ClipCache) -> None:
    from voiceguide.pipeline import plan_session

    plan = plan_session(load_builtin("desk-break"), engine=fake_engine, cache=cache)
    assert mix_loudness(plan, -16.0, -40.0) == -16.0  # a bed under the relative gate does not count
    louder = mix_loudness(plan, -16.0, -20.0)
    assert -20.0 < louder < -16.0  # a bed above it pulls the reading towards its own level


@pytest.mark.parametrize("where", ["popen", "returned"])
def test_ctrl_c_as_the_music_decoder_starts_leaves_no_ffmpeg_running(tmp_path: Path, bed: Path, where: str,
                                                                    fake_engine: FakeEngine, cache: ClipCache,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A real SIGINT inside Popen once the decoder runs, or the moment it is started: the interrupt goes on and
    the ffmpeg is killed and reaped at once (it was left running, blocked on its full pipe, known to no one)."""
    from conftest import interrupt_as_ffmpeg_starts

    import voiceguide.ffmpeg
    from voiceguide.audio.music import MusicBed, measure_track
    from voiceguide.pipeline import session_clips

    plan, _ = session_clips(load_builtin("desk-break"), SessionOptions(), fake_engine, cache)
    music = MusicBed(plan, [measure_track(bed)], -30.0, 12.0)
    started = interrupt_as_ffmpeg_starts(monkeypatch, where, module=voiceguide.ffmpeg)
    with pytest.raises(KeyboardInterrupt):
        next(music.chunks(0, plan.total))
    assert len(started) == 1 and started[0].returncode is not None  # reaped, not merely told to stop


def test_music_read_in_part_leaves_no_ffmpeg_running(tmp_path: Path, bed: Path, fake_engine: FakeEngine,
                                                    cache: ClipCache, monkeypatch: pytest.MonkeyPatch) -> None:
    """An encoding that stops after the first piece of the bed (its generator closed, as when a part fails or is
    interrupted) stops the decoder there and then, and a bed read to its end leaves none either."""
    import subprocess

    from voiceguide.audio.music import MusicBed, measure_track
    from voiceguide.pipeline import session_clips

    plan, _ = session_clips(load_builtin("desk-break"), SessionOptions(), fake_engine, cache)
    music = MusicBed(plan, [measure_track(bed)], -30.0, 12.0)
    started: list[subprocess.Popen[bytes]] = []
    real = subprocess.Popen

    class Noted(real):  # type: ignore[misc, valid-type]
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            started.append(self)

    monkeypatch.setattr(subprocess, "Popen", Noted)
    chunks = music.chunks(0, plan.total)
    assert next(chunks)
    chunks.close()
    assert len(started) == 1 and started[0].returncode is not None
    total = sum(len(chunk) for chunk in music.chunks(0, 3 * RATE))
    assert total == 3 * RATE * 4 and len(started) == 2 and started[1].returncode is not None
