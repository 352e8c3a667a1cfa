"""Clips measured for levelling while a render makes them: exactly what levelling would measure afterwards."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest
from conftest import BuzzyEngine, FakeEngine, our_children

from voiceguide.audio.clips import CachedClips, MeteredClips
from voiceguide.audio.energies import Analysis, ClipMeter, analysis_order
from voiceguide.errors import EncoderError
from voiceguide.pipeline import SessionOptions, session_clips
from voiceguide.plan.tones import Tone
from voiceguide.routine.builtin import load_builtin
from voiceguide.speech.cache import ClipCache
from voiceguide.speech.engine import Clip

RATE = 44100


def measured_afterwards(clips: CachedClips, texts: list) -> Analysis:  # type: ignore[type-arg]
    """What levelling measures when nothing was measured while the clips were made: every clip, read now."""
    with ClipMeter(RATE) as meter:
        for text in analysis_order(texts):
            meter.add(text, clips[text])
        return meter.finish()


def same(a: Analysis, b: Analysis) -> bool:
    """The same energies and limiter blocks, to the last bit."""
    return (a.energies.keys() == b.energies.keys() == a.blocks.keys() == b.blocks.keys()
            and all(a.energies[t] == b.energies[t] for t in a.energies)
            and all(a.blocks[t].peaks == b.blocks[t].peaks and a.blocks[t].energy == b.blocks[t].energy
                    for t in a.blocks))


def ffmpegs_running() -> list[int]:
    """Our own child processes that are ffmpeg."""
    return our_children("ffmpeg")


@pytest.mark.parametrize("cached", [0, 5], ids=["all-new", "some-cached"])
def test_clips_measured_while_made_are_what_levelling_measures_afterwards(cached: int, cache: ClipCache) -> None:
    """A cold render measures every clip as it is processed (lines said for the first time, the cached ones and
    the tones fed in between); levelling then gets exactly, to the last bit, what it would have measured
    itself, and the gain it finds is the same."""
    from voiceguide.audio.loudness import level_session

    routine = load_builtin("desk-break")
    if cached:  # some lines already in the cache: read from it into the same stream, between the new ones
        session_clips(routine, SessionOptions(), FakeEngine(), cache)
        for path in sorted(cache.folder.glob("*/*.clip"))[cached:]:
            path.unlink()
    engine = FakeEngine()
    plan, clips = session_clips(routine, SessionOptions(), engine, cache)
    assert isinstance(clips, CachedClips) and clips.spilled
    spoken = {event.text for event in plan.speech() if isinstance(event.text, str)}
    assert len(engine.calls) == len(spoken) - cached > 10
    used = list(dict.fromkeys(event.text or "" for event in plan.speech()))
    assert any(isinstance(t, Tone) for t in used)  # the stream had tones in it too
    during = clips.take_analysis()
    assert during is not None and clips.take_analysis() is None  # handed over once
    assert same(during, measured_afterwards(clips, used))
    levels_during = level_session(plan, CachedClips(clips.cache, clips.key, clips.lengths, RATE, clips.held,
                                                    spilled=clips.spilled, analysis=during), -16.0)
    levels_after = level_session(plan, clips, -16.0)  # nothing handed over: measured now
    assert levels_during.gain_db == levels_after.gain_db and levels_during.limited == levels_after.limited


def test_a_clip_out_of_order_leaves_the_measuring_to_levelling(tmp_path: Path) -> None:
    """MeteredClips stores every clip whatever happens; a clip out of order (a line spoken again) or one that
    cannot be had stops the measuring (no ffmpeg left running) and there is no analysis."""
    clips = {f"line {n}": Clip(bytes([n, n % 3]) * (RATE // 2), RATE) for n in range(4)}
    order = analysis_order(clips)
    # backwards; the first never made nor to be had elsewhere; the last never made
    for arrival, other in ((order[::-1], lambda t: clips[t]), (order[1:], lambda t: None),
                           (order[:-1], lambda t: None)):
        store: dict = {}  # type: ignore[type-arg]
        metered = MeteredClips(store, order, other, RATE)
        for text in arrival:
            metered[text] = clips[text]
        assert metered.finish() is None and metered.analysis is None
        assert store == {t: clips[t] for t in arrival} and ffmpegs_running() == []
    # in order, with the one not made fed from elsewhere: all measured
    metered = MeteredClips({}, order, lambda t: clips[t], RATE)
    for text in order[1:]:
        metered[text] = clips[text]
    analysis = metered.finish()
    assert analysis is not None and same(analysis, measured_afterwards(clips, list(clips)))  # type: ignore[arg-type]


def test_a_meter_failing_while_lines_are_made_is_our_error(cache: ClipCache, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """ffmpeg dies while the new lines are measured: an EncoderError with its last line from the render's speech
    stage, nothing left running."""
    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\nhead -c 1000 >/dev/null\necho 'Conversion failed: out of cheese' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("VOICEGUIDE_FFMPEG", str(fake))
    with pytest.raises(EncoderError, match="K-weighting the speech: Conversion failed: out of cheese"):
        session_clips(load_builtin("desk-break"), SessionOptions(), BuzzyEngine(), cache)
    assert ffmpegs_running() == []


def test_an_engine_failing_midway_leaves_no_meter_running(cache: ClipCache) -> None:
    """The speech engine fails after some lines were measured: its error, and the meter's ffmpeg is gone."""
    from voiceguide.errors import SpeechError

    class Failing(FakeEngine):
        def synthesize(self, texts, voice, folder, on_done=None):  # type: ignore[no-untyped-def]
            paths = super().synthesize(texts, voice, folder, on_done)
            paths[texts[len(texts) // 2]].write_bytes(b"RIFF nonsense")  # processing this one fails
            return paths

    with pytest.raises(SpeechError, match="unreadable WAV"):
        session_clips(load_builtin("desk-break"), SessionOptions(), Failing(), cache)
    assert ffmpegs_running() == []


def test_the_meter_refuses_a_clip_twice() -> None:
    with ClipMeter(RATE) as meter:
        meter.add("a", Clip(bytes(200), RATE))
        with pytest.raises(EncoderError, match="added twice"):
            meter.add("a", Clip(bytes(200), RATE))
    assert ffmpegs_running() == []


def test_a_meter_with_nowhere_for_ffmpegs_log_is_our_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The temporary folder is not a folder (a full or broken disk alike): an EncoderError naming it, no ffmpeg."""
    import tempfile

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setattr(tempfile, "tempdir", str(blocker))
    with pytest.raises(EncoderError, match=r"cannot write ffmpeg's log for K-weighting the speech in .*not-a-folder"), \
            ClipMeter(RATE) as meter:
        meter.add("a", Clip(bytes(200), RATE))
    assert ffmpegs_running() == []


def test_ctrl_c_while_lines_are_measured_leaves_no_meter_running(cache: ClipCache,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C arrives while the new lines are processed and measured (the sixth line): it goes through, the
    meter's ffmpeg is gone and nothing of the unfinished lines is in the cache."""
    import voiceguide.speech.clip as speech_clip  # synthesis imports it when there are lines to speak

    real, calls = speech_clip.process_clip, []

    def interrupted(path, rate):  # type: ignore[no-untyped-def]
        calls.append(path)
        if len(calls) == 6:
            assert ffmpegs_running()  # the meter was at work
            raise KeyboardInterrupt
        return real(path, rate)

    monkeypatch.setattr(speech_clip, "process_clip", interrupted)
    with pytest.raises(KeyboardInterrupt):
        session_clips(load_builtin("desk-break"), SessionOptions(), FakeEngine(), cache)
    assert ffmpegs_running() == []
    assert len(list(cache.folder.glob("*/*.clip"))) == 5


def test_the_meter_takes_a_long_line_while_its_ffmpeg_is_busy() -> None:
    """A line goes to the K-weighting whole, without waiting for ffmpeg (stopped here) to take it in: the
    caller processes the next line meanwhile. Measured, it is what a meter never held up gives."""
    tone = Clip(bytes(range(256)) * 1800, RATE)  # 0.46 MB: 5.2 seconds, far more than a pipe's usual 64 KB
    first = Clip(b"\x10\x00" * RATE, RATE)
    with ClipMeter(RATE) as meter:
        meter.add("first", first)
        (pid,) = ffmpegs_running()
        os.kill(pid, signal.SIGSTOP)
        try:
            adding = threading.Thread(target=meter.add, args=("long", tone), daemon=True)
            adding.start()
            adding.join(10)
            assert not adding.is_alive(), "the meter waited for ffmpeg to read the line"
        finally:
            os.kill(pid, signal.SIGCONT)
        held = meter.finish()
    with ClipMeter(RATE) as meter:
        meter.add("first", first)
        meter.add("long", tone)
        free = meter.finish()
    assert same(held, free) and len(held.energies["long"]) > 500
