"""Background music: levelled, looped, faded, ducked under every line; bad files fail before any work."""

from __future__ import annotations

import math
import subprocess
import time
from array import array
from pathlib import Path

import pytest
from conftest import FakeEngine, decode, write_tone
from mutagen.mp3 import MP3
from typer.testing import CliRunner

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

    from voiceguide.audio.music import MusicBed, measure_track
    from voiceguide.pipeline import session_clips

    plan, _ = session_clips(load_builtin("desk-break"), SessionOptions(), fake_engine, cache)
    music = MusicBed(plan, [measure_track(bed)], -30.0, 12.0)
    started = _noted_processes(monkeypatch)
    chunks = music.chunks(0, plan.total)
    assert next(chunks)
    chunks.close()
    assert len(started) == 1 and started[0].returncode is not None
    total = sum(len(chunk) for chunk in music.chunks(0, 3 * RATE))
    assert total == 3 * RATE * 4 and len(started) == 2 and started[1].returncode is not None


@pytest.mark.parametrize("where", ["popen", "returned"])
def test_ctrl_c_as_music_is_measured_leaves_no_ffmpeg_running(bed: Path, where: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A real SIGINT inside Popen, or the moment the measuring ffmpeg is started: the interrupt goes on and that
    ffmpeg is killed and reaped (under subprocess.run, Popen's own clean-up never began: it was left running)."""
    from conftest import interrupt_as_ffmpeg_starts

    import voiceguide.ffmpeg
    from voiceguide.audio.music import measure_track

    started = interrupt_as_ffmpeg_starts(monkeypatch, where, module=voiceguide.ffmpeg)
    with pytest.raises(KeyboardInterrupt):
        measure_track(bed)
    assert len(started) == 1 and started[0].returncode is not None


def _stand_in(folder: Path, hang_on: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Put a stand-in for ffmpeg in place (VOICEGUIDE_FFMPEG): the real one, except that a command with the
    argument ``hang_on`` gets a few samples and then nothing, as from a file system that stopped answering."""
    from voiceguide.ffmpeg import ffmpeg_exe

    script = folder / "ffmpeg-that-hangs"
    script.write_text(f'#!/bin/sh\nfor a in "$@"; do\n  if [ "$a" = "{hang_on}" ]; then head -c 4000 /dev/zero; '
                      f'exec sleep 60; fi\ndone\nexec "{ffmpeg_exe()}" "$@"\n', encoding="utf-8")
    script.chmod(0o755)
    monkeypatch.setenv("VOICEGUIDE_FFMPEG", str(script))


def _noted_processes(monkeypatch: pytest.MonkeyPatch) -> list[subprocess.Popen[bytes]]:
    """Every process started from here on, to check that none is left running."""
    started: list[subprocess.Popen[bytes]] = []
    real = subprocess.Popen

    class Noted(real):  # type: ignore[misc, valid-type]
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            started.append(self)

    monkeypatch.setattr(subprocess, "Popen", Noted)
    return started


def test_a_music_measurement_that_hangs_is_stopped(tmp_path: Path, bed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An ffmpeg that never finishes measuring is an OptionError naming the file once MEASURE_TIMEOUT_S has
    passed, and is killed and reaped (it was waited for with no end)."""
    import voiceguide.audio.music as music

    _stand_in(tmp_path, "-nostats", monkeypatch)  # the measuring command's; the decoder's has no -nostats
    monkeypatch.setattr(music, "MEASURE_TIMEOUT_S", 0.5)
    started = _noted_processes(monkeypatch)
    began = time.monotonic()
    with pytest.raises(OptionError) as raised:
        music.measure_track(bed)
    assert str(raised.value) == (f"--music: {bed}: ffmpeg did not finish measuring it in 0.5 s "
                                 "(a file system that does not answer?)")
    assert time.monotonic() - began < 10
    assert len(started) == 1 and started[0].returncode is not None


def test_a_music_decoder_that_hangs_stops_the_render(tmp_path: Path, bed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A decoder that stops handing on samples mid-render: after DECODE_STALL_S the render fails with a one-line
    EncoderError naming the music file (exit 4 from the CLI), kills and reaps the decoder, and leaves the earlier
    output as it was (it waited for ever before)."""
    import voiceguide.audio.music as music
    from voiceguide.cli import app

    out = tmp_path / "session.mp3"
    out.write_bytes(b"an earlier session")
    _stand_in(tmp_path, "-ss", monkeypatch)  # the decoding command's; measuring has no -ss
    monkeypatch.setattr(music, "DECODE_STALL_S", 0.5)
    started = _noted_processes(monkeypatch)
    result = CliRunner().invoke(app, ["render", "desk-break", "--music", str(bed), "-o", str(out), "-q"])
    assert result.exit_code == 4, result.output
    assert result.output.strip().splitlines() == [f"error: --music: {bed}: ffmpeg stopped decoding it "
                                                  "(nothing for 0.5 s)"]
    assert out.read_bytes() == b"an earlier session" and sorted(p.name for p in tmp_path.iterdir()) == \
        sorted(["bed.wav", "ffmpeg-that-hangs", "session.mp3"])
    decoders = [p for p in started if "-ss" in p.args]
    assert decoders and all(p.returncode is not None for p in started)


def test_the_bed_is_the_same_however_the_decoder_pipe_hands_it_on(bed: Path, fake_engine: FakeEngine,
                                                                  cache: ClipCache,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The fades and ducking step by the samples at hand, so the pieces read from the decoder decide the samples:
    a pipe that hands on 1,000 bytes at a time (a busy machine) must give the same bed, to the byte."""
    import os

    from voiceguide.audio.music import MusicBed, measure_track
    from voiceguide.pipeline import session_clips

    plan, _ = session_clips(load_builtin("desk-break"), SessionOptions(), fake_engine, cache)
    music = MusicBed(plan, [measure_track(bed)], -30.0, 12.0)
    end = 12 * RATE  # the fade-in and the first lines' ducking
    whole = b"".join(music.chunks(0, end))
    real = os.readv

    def trickle(fd: int, buffers: list[memoryview]) -> int:
        return real(fd, [memoryview(buffers[0])[:1000]])

    monkeypatch.setattr(os, "readv", trickle)
    trickled = b"".join(music.chunks(0, end))
    assert len(whole) == end * 4 and trickled == whole


@pytest.mark.parametrize("name", ["pipe:0.wav", "it's: a, b.wav", "-x.wav"])
def test_music_files_whose_names_mean_something_to_ffmpeg_are_read_as_files(name: str, bed: Path, tmp_path: Path,
                                                                             fake_engine: FakeEngine, cache: ClipCache,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Named relative to the current folder, as a user types it: ``pipe:0`` made ffmpeg read its stdin (and a
    protocol name could have sent it to the network); measured and decoded, it is the file, to the sample."""
    from voiceguide.audio.music import MusicBed, measure_track
    from voiceguide.pipeline import session_clips

    (tmp_path / name).write_bytes(bed.read_bytes())
    monkeypatch.chdir(tmp_path)
    plain, odd = measure_track(bed), measure_track(Path(name))
    assert (odd.seconds, odd.loudness) == (plain.seconds, plain.loudness) == (20.0, odd.loudness)
    plan, _ = session_clips(load_builtin("desk-break"), SessionOptions(), fake_engine, cache)
    end = 25 * RATE  # past the end of the 20-second bed: its loop starts the file again
    beds = [b"".join(MusicBed(plan, [track], -30.0, 12.0).chunks(0, end)) for track in (plain, odd)]
    assert len(beds[0]) == end * 4 and beds[1] == beds[0]
