"""Loudness: every output at -16 LUFS (±1 LU) with true peak at most -1 dBTP, lines levelled alike."""

from __future__ import annotations

import contextlib
import itertools
from array import array
from collections import Counter
from pathlib import Path

import pytest
from conftest import BuzzyEngine, FakeEngine, decode

from voiceguide.audio.limiter import limit
from voiceguide.audio.loudness import measure, parse_ebur128
from voiceguide.errors import OptionError
from voiceguide.host import load_audioop
from voiceguide.pipeline import SessionOptions, render_session
from voiceguide.routine.builtin import load_builtin
from voiceguide.speech.cache import ClipCache

RATE = 44100


def loudness_of(path: Path):  # type: ignore[no-untyped-def]
    """ffmpeg's ebur128 on the decoded file: the way players and podcast apps measure it."""
    return measure(iter([decode(path).tobytes()]), RATE)


@pytest.mark.parametrize("name", ["psoas", "desk-break"])
def test_real_engine_sessions_hit_the_loudness_target(name: str, tmp_path: Path) -> None:
    out = tmp_path / f"{name}.mp3"
    result = render_session(load_builtin(name), out)
    found = loudness_of(out)
    assert -17.0 <= found.integrated <= -15.0
    assert found.true_peak <= -1.0
    # Every spoken line long enough to measure (one 400 ms block) sits within +-2 LU of the others.
    samples = decode(out)
    levels = {}
    for event in result.plan.speech():
        if event.end - event.start >= RATE // 2 and event.text not in levels and event.role != "tone":
            levels[event.text] = measure(iter([samples[event.start:event.end].tobytes()]), RATE, true_peak=False).integrated
    assert len(levels) >= 10
    middle = sorted(levels.values())[len(levels) // 2]
    assert all(abs(level - middle) <= 2.0 for level in levels.values()), levels


def test_loudness_can_be_chosen_and_silence_stays_digital(tmp_path: Path, fake_engine: FakeEngine,
                                                          cache: ClipCache) -> None:
    out = tmp_path / "quiet.mp3"
    options = SessionOptions(loudness=-20.0)
    plan = render_session(load_builtin("desk-break"), out, options, engine=fake_engine, cache=cache).plan
    assert -21.0 <= loudness_of(out).integrated <= -19.0
    samples = decode(out)
    lines = list(plan.speech())
    start, end = max(((a.end, b.start) for a, b in itertools.pairwise(lines)), key=lambda g: g[1] - g[0])
    gap = samples[start + RATE // 2 : end - RATE // 2]  # the longest silence, well away from any line
    assert len(gap) > RATE and not any(gap)  # exact zeros: no dither, no noise floor


def test_limiter_keeps_peaks_under_the_ceiling_and_moves_smoothly() -> None:
    burst = array("h", [0] * 441 + [30000, -30000] * 2205 + [0] * 441)
    out = array("h")
    out.frombytes(limit(burst.tobytes(), RATE, gain_db=6.0, ceiling_dbfs=-2.0))
    assert max(abs(v) for v in out) <= 32767 * 10 ** (-2 / 20) + 1
    ratios = [abs(out[i]) / abs(burst[i]) for i in range(len(burst)) if burst[i]]
    steps = [abs(b - a) for a, b in itertools.pairwise(ratios)]
    assert max(steps) < 0.05  # gain moves in small steps, no clicks


class SpectrumEngine(FakeEngine):
    """Lines as tones from 60 Hz to 9 kHz, all at the same plain loudness once processed: K-weighting hears the
    high ones up to 4 dB louder and the lowest one quieter, so a loudness that skipped it would be off by far more
    than ebur128's 0.1."""

    def synthesize(self, texts, voice, folder, on_done=None):  # type: ignore[no-untyped-def]
        from conftest import fake_seconds, write_tone

        out = {}
        for index, text in enumerate(texts):
            path = folder / f"{index}.wav"
            write_tone(path, fake_seconds(text), 44100, pad=self.PAD, freq=(60, 440, 3000, 9000)[index % 4])
            out[text] = path
            if on_done is not None:
                on_done(text)
        return out


@pytest.mark.parametrize("peaky", [False, True], ids=["tones", "limited"])
def test_levelling_lands_where_ebur128_measures_the_whole_session(peaky: bool, cache: ClipCache) -> None:
    """Levelling composes the session's loudness from each clip K-weighted once; ebur128 on the whole session as
    assembled (speech, chimes, every silence) then reads the target. A peaky voice's lines pass the ceiling
    once gained: the limiter turns them down and takes loudness that the gain must make up."""
    from voiceguide.audio.assemble import SessionAudio
    from voiceguide.audio.loudness import level_session
    from voiceguide.pipeline import session_clips

    engine = BuzzyEngine() if peaky else SpectrumEngine()
    routine = load_builtin("desk-break")
    plan, clips = session_clips(routine, SessionOptions(), engine, cache)  # speech and tones
    levels = level_session(plan, clips, -16.0, ceiling_dbfs=-2.0)
    assert (len(levels.limited) > 10) == peaky
    whole = measure(SessionAudio(plan, clips, levels).chunks(), RATE, true_peak=False).integrated
    assert whole == -16.0  # as ebur128 prints it, to 0.1 LU
    plain = measure(SessionAudio(plan, clips).chunks(), RATE, true_peak=False).integrated
    assert (levels.gain_db - (-16.0 - plain) > 0.3) == peaky  # the limiter's share was made up


def test_parse_ebur128_summary() -> None:
    log = "Summary:\n\n  Integrated loudness:\n    I:         -16.4 LUFS\n  True peak:\n    Peak:       -1.6 dBFS\n"
    found = parse_ebur128(log)
    assert (found.integrated, found.true_peak) == (-16.4, -1.6)


def test_measuring_windows_without_the_files_rate_is_our_error(tmp_path: Path) -> None:
    from voiceguide.audio.encoded import measure_file
    from voiceguide.errors import OptionError

    with pytest.raises(OptionError, match="windows need the file's sample rate"):
        measure_file(tmp_path / "s.mp3", [(0, 44100)])


@pytest.mark.parametrize("rate", [0, RATE], ids=["rate-unknown", "rate-given"])
@pytest.mark.parametrize("freq", [11025.0, 9001.0, 15000.0])
def test_the_file_check_reads_the_peak_between_samples(freq: float, rate: int, tmp_path: Path) -> None:
    """A sine at half amplitude whose samples miss its crests (at a quarter of the rate, 45 degrees off, they are
    3 dB under them): its true peak is -6.02 dBTP, which only oversampling sees; the samples alone read 3 dB less.
    It fades in and out over 0.2 s: switched on at once, a sine's edges really do overshoot (ringing). Read at
    192 kHz (the file's rate not given) and at four times its rate (176.4 kHz), as renders read their files."""
    import math
    import wave

    from voiceguide.audio.encoded import measure_file

    count, fade = 2 * RATE, RATE // 5
    samples = array("h", (round(16384 * min(1, i / fade, (count - 1 - i) / fade)
                                * math.sin(2 * math.pi * freq * i / RATE + math.pi / 4)) for i in range(count)))
    path = tmp_path / "crests.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(samples.tobytes())
    sample_peak = 20 * math.log10(max(abs(v) for v in samples) / 32768)
    found = measure_file(path, (), rate)
    assert abs(found.true_peak - 20 * math.log10(0.5)) <= 0.01, (found, sample_peak)
    if freq == 11025.0:
        assert sample_peak < -9.0


def test_the_denormal_guard_changes_no_measurement(tmp_path: Path) -> None:
    """Lines between digital silences, measured through the guard and by plain ebur128 on the same samples:
    the same loudness and peak to the figure ebur128 prints (the guard only keeps its filters fast)."""
    import math
    import subprocess

    from voiceguide.ffmpeg import ffmpeg_exe

    pcm = array("h")
    for n, level in enumerate((9000, 3000, 20000, 600)):  # lines of different loudness, apart
        pcm.extend(round(level * math.sin(2 * math.pi * (220 + 110 * n) * i / RATE) * (1 + (i // 2000) % 3) / 3)
                   for i in range(RATE))
        pcm.extend([0] * (3 * RATE))
    raw = tmp_path / "lines.raw"
    raw.write_bytes(pcm.tobytes())
    def plain(meter: str) -> str:
        return subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostats", "-f", "s16le", "-ar", str(RATE), "-ac", "1",
                               "-i", str(raw), "-af", meter, "-f", "null", "-"], capture_output=True, check=True).stderr.decode()

    assert measure(iter([pcm.tobytes()]), RATE) == parse_ebur128(plain("ebur128=framelog=quiet:peak=true"))


def test_a_long_file_measured_in_parallel_parts_matches_one_pass(tmp_path: Path, fake_engine: FakeEngine,
                                                                  cache: ClipCache) -> None:
    """Cut inside silences and measured by two (or three) ffmpeg processes at once, the written file's loudness (gated
    over both parts' blocks together) and true peak match one process measuring it whole."""
    from voiceguide.audio.encoded import measure_file
    from voiceguide.audio.loudness import speech_windows

    out = tmp_path / "psoas.mp3"
    plan = render_session(load_builtin("psoas"), out, engine=fake_engine, cache=cache).plan
    assert plan.total >= 240 * RATE
    windows = speech_windows(plan, RATE)
    whole, halves, thirds = (measure_file(out, windows, RATE, parts=n) for n in (1, 2, 3))
    # Within one step of what ebur128 prints (0.1 LU): its summary and the parts' blocks are both rounded to it,
    # and a part's first 300 ms are not a block.
    assert abs(halves.integrated - whole.integrated) <= 0.1 and halves.true_peak == whole.true_peak
    assert abs(thirds.integrated - whole.integrated) <= 0.1 and thirds.true_peak == whole.true_peak
    assert halves.integrated != round(halves.integrated, 1)  # gated here, not a summary
    assert -17.0 <= whole.integrated <= -15.0


@pytest.mark.parametrize("parts", [0, -1, 17, 10**9, 2.0, True, None])
def test_measuring_in_too_many_or_no_parts_is_our_error(parts: object, tmp_path: Path) -> None:
    from voiceguide.audio.encoded import measure_file
    from voiceguide.errors import OptionError

    with pytest.raises(OptionError, match="parts must be a whole number from 1 to 16"):
        measure_file(tmp_path / "s.mp3", [(0, 44100)], RATE, parts=parts)  # type: ignore[arg-type]


def test_a_failing_ffmpeg_while_levelling_is_our_error(cache: ClipCache, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """ffmpeg dies while K-weighting the clips (it reads a little, complains and exits): an EncoderError with its
    last line, at once, nothing left running."""
    from voiceguide.audio.loudness import level_session
    from voiceguide.errors import EncoderError
    from voiceguide.pipeline import session_clips

    session_clips(load_builtin("desk-break"), SessionOptions(), FakeEngine(), cache)  # measured as synthesized
    plan, clips = session_clips(load_builtin("desk-break"), SessionOptions(), FakeEngine(), cache)  # cached: not
    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\nhead -c 1000 >/dev/null\necho 'Conversion failed: out of cheese' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("VOICEGUIDE_FFMPEG", str(fake))
    with pytest.raises(EncoderError, match="K-weighting the speech: Conversion failed: out of cheese"):
        level_session(plan, clips, -16.0)


def test_what_the_limiter_keeps_is_what_it_leaves() -> None:
    """ClipBlocks.kept (worked out from per-millisecond peaks, no audio made) against the limiter's real output,
    10 ms at a time: the share of each stretch's energy left at that gain, to 0.4 per cent on average (a few per cent
    in a stretch where a millisecond block straddling two is counted in the first), and exactly 1 where nothing
    passes the ceiling."""
    import math

    from voiceguide.audio.limiter import ClipBlocks

    pcm = array("h", (round((3000 + 9000 * (i // 4410 % 3 == 1)) * math.sin(i / 3.1) * (1 + math.sin(i / 900)))
                      for i in range(3 * RATE)))
    sub = RATE // 100
    blocks = ClipBlocks(pcm.tobytes(), RATE)
    for gain in (0.0, 3.0, 9.0):
        kept = blocks.kept(gain, -2.0, sub)
        out = array("h")
        out.frombytes(limit(pcm.tobytes(), RATE, gain, -2.0))
        factor = 10 ** (gain / 10)
        errors = []
        for j in range(len(pcm) // sub):
            before = sum(v * v for v in pcm[j * sub : (j + 1) * sub]) * factor
            after = sum(v * v for v in out[j * sub : (j + 1) * sub])
            errors.append(abs(kept[j] - after / before))
        assert max(errors) <= 0.08 and sum(errors) / len(errors) <= 0.004, (gain, max(errors))
        assert (min(kept) < 0.5) == (gain == 9.0) and (min(kept) == 1.0) == (gain == 0.0)


def _limited_by_hand(pcm: array, gain_db: float, ceiling_dbfs: float) -> array:  # type: ignore[type-arg]
    """The limiter's definition applied to every block of the clip, with nothing skipped: the gain each block wants,
    the lowest of them ATTACK_BLOCKS ahead, then at most RISE_DB_PER_BLOCK of change per block each way."""
    from voiceguide.audio.limiter import ATTACK_BLOCKS, RISE_DB_PER_BLOCK

    block, gain, rise = RATE // 1000, 10 ** (gain_db / 20), 10 ** (RISE_DB_PER_BLOCK / 20)
    ceiling = 32767 * 10 ** (ceiling_dbfs / 20)
    starts = range(0, len(pcm), block)
    want = [min(gain, ceiling / max(1, max(abs(v) for v in pcm[i : i + block]))) for i in starts]
    envelope = [min(want[i : i + ATTACK_BLOCKS + 1]) for i in range(len(want))]
    for i in range(1, len(envelope)):
        envelope[i] = min(envelope[i], envelope[i - 1] * rise)
    for i in range(len(envelope) - 2, -1, -1):
        envelope[i] = min(envelope[i], envelope[i + 1] * rise)
    out = array("h")
    for k, i in enumerate(starts):
        piece = array("h", pcm[i : i + block])
        out.frombytes(load_audioop().mul(piece.tobytes(), 2, envelope[k]))
    return out


def _peaks_clip() -> array:  # type: ignore[type-arg]
    """A second of tone at 4000 with peaks alone, a deep peak right after shallow ones and peaks at both ends."""
    import math

    wave = [math.sin(i / 2.3) for i in range(RATE)]
    levels = [4000] * RATE
    for start, size, level in ((2000, 300, 20000), (9000, 44, 9000), (9600, 44, 9500), (9900, 88, 32767),
                               (30000, 10000, 14000), (0, 60, 30000), (RATE - 50, 50, 25000)):
        levels[start : start + size] = [level] * size
    return array("h", (round(level * w) for level, w in zip(levels, wave, strict=True)))


def test_the_limiter_works_only_where_dips_reach_and_changes_nothing_by_it() -> None:
    """The limiter works block by block only as far as each peak's dip reaches (a deep one far, a shallow one a
    few blocks): sample for sample what the limiter's definition gives applied to every block of the clip, for
    peaks alone, a deep peak right after shallow ones (its dip reaches back over theirs) and peaks at both ends."""
    pcm = _peaks_clip()
    for gain in (0.0, 6.0, 14.0):
        out = array("h")
        out.frombytes(limit(pcm.tobytes(), RATE, gain, -2.0))
        assert out == _limited_by_hand(pcm, gain, -2.0), gain


def test_the_dips_found_at_one_gain_are_the_limiters_at_every_gain_under_it() -> None:
    """ClipBlocks.dips, worked out once above a gain: at that gain and every lower one, the lower of the gain and
    the dips' (the gain itself outside them) is, sample for sample, what the limiter's definition gives applied to
    every block of the clip. Levelling reckons what the limiter keeps from them at each gain it tries."""
    from voiceguide.audio.limiter import ClipBlocks

    pcm = _peaks_clip()
    blocks = ClipBlocks(pcm.tobytes(), RATE)
    dips = blocks.dips(6.0, -2.0)
    assert dips.cap_db > 6.0 and len(dips.firsts) > 2 and blocks.dips(dips.cap_db, -2.0) is dips
    for gain_db in (0.0, 3.0, 6.0, dips.cap_db):
        gain = 10 ** (gain_db / 20)
        factors = [gain] * len(blocks.peaks)
        for first, gains in dips.stretches():
            factors[first : first + len(gains)] = [min(gain, g) for g in gains]
        block = blocks.block_samples
        out = array("h")
        for k, factor in enumerate(factors):
            out.frombytes(load_audioop().mul(pcm[k * block : (k + 1) * block].tobytes(), 2, factor))
        assert out == _limited_by_hand(pcm, gain_db, -2.0), gain_db
    assert not blocks.dips(6.0, -3.0).serve(6.0, -2.0, blocks.block_samples)  # another ceiling: found afresh


class _NoPeakSearch:
    """audioop whose max() fails: the limiter given dips that serve must not look for the peaks itself."""

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        if name == "max":
            raise AssertionError("the limiter looked for the peaks")
        return getattr(load_audioop(), name)


def test_the_limiter_given_dips_that_serve_skips_the_peak_search_and_gives_the_same_samples(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """limit(..., dips): the dips levelling worked out (or those cut to the gain, Dips.at) stand in for the peak
    search, sample for sample what the limiter's definition gives; dips for another ceiling or a lower cap are
    not used, and the result is the same."""
    from voiceguide.audio import limiter
    from voiceguide.audio.limiter import ClipBlocks

    pcm = _peaks_clip()
    dips = ClipBlocks(pcm.tobytes(), RATE).dips(6.0, -2.0)
    for gain_db in (0.0, 3.0, 6.0, dips.cap_db):
        expected = _limited_by_hand(pcm, gain_db, -2.0)
        with monkeypatch.context() as patched:
            patched.setattr(limiter, "load_audioop", _NoPeakSearch)
            for given in (dips, dips.at(gain_db)):
                out = array("h")
                out.frombytes(limit(pcm.tobytes(), RATE, gain_db, -2.0, given))
                assert out == expected, gain_db
    other_ceiling = ClipBlocks(pcm.tobytes(), RATE).dips(6.0, -3.0)
    for gain_db, given in ((6.0, other_ceiling), (dips.cap_db + 2.0, dips)):
        out = array("h")
        out.frombytes(limit(pcm.tobytes(), RATE, gain_db, -2.0, given))
        assert out == _limited_by_hand(pcm, gain_db, -2.0), gain_db


def test_dips_cut_to_a_gain_hold_only_the_blocks_under_it() -> None:
    from voiceguide.audio.limiter import ClipBlocks
    from voiceguide.errors import OptionError

    dips = ClipBlocks(_peaks_clip().tobytes(), RATE).dips(6.0, -2.0)
    for gain_db in (0.0, 6.0):
        cut = dips.at(gain_db)
        gain = 10 ** (gain_db / 20)
        assert cut.cap_db == gain_db and cut.serve(gain_db, -2.0, dips.block_samples)
        assert 0 < len(cut.gains) < len(dips.gains) and max(cut.gains) < gain
        assert all(envelope[0] < gain and envelope[-1] < gain for _, envelope in cut.stretches())
        whole = {first + k: g for first, envelope in dips.stretches() for k, g in enumerate(envelope)}
        assert all(whole[first + k] == g for first, envelope in cut.stretches() for k, g in enumerate(envelope))
    with pytest.raises(OptionError, match="serve gains up to"):
        dips.at(dips.cap_db + 0.5)


def test_levelling_hands_the_limiter_its_dips_within_the_budget(cache: ClipCache,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The clips levelling limits get their dips at the gain it settled on, so the limiter need not look for the
    peaks again: the same samples as a limiter on its own. Past KEPT_DIPS_BLOCKS none are kept."""
    from voiceguide.audio import loudness
    from voiceguide.pipeline import session_clips

    plan, clips = session_clips(load_builtin("desk-break"), SessionOptions(), BuzzyEngine(), cache)
    handed: list[object] = []
    real = loudness.limit
    monkeypatch.setattr(loudness, "limit", lambda pcm, *args: handed.append(args[-1]) or real(pcm, *args))
    for budget in (loudness.KEPT_DIPS_BLOCKS, 1):
        monkeypatch.setattr(loudness, "KEPT_DIPS_BLOCKS", budget)
        handed.clear()
        levels = loudness.level_session(plan, clips, -16.0)
        assert len(levels.limited) > 10
        for text in sorted(levels.limited, key=str):
            length = clips[text].samples
            assert levels.pcm(clips, text, 0, length) == real(clips[text].pcm, RATE, levels.gain_db,
                                                              levels.ceiling_dbfs), text
        assert len(handed) == len(levels.limited)
        assert all(d is not None for d in handed) if budget > 1 else all(d is None for d in handed)


def _counted_cache_reads(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """From now on, how many times each clip-cache key is read."""
    reads: Counter[str] = Counter()
    get = ClipCache.get

    def counted(self: ClipCache, key: str):  # type: ignore[no-untyped-def]
        reads[key] += 1
        return get(self, key)

    monkeypatch.setattr(ClipCache, "get", counted)
    return reads


def test_a_clip_read_once_is_not_kept(cache: ClipCache, monkeypatch: pytest.MonkeyPatch) -> None:
    """CachedClips.read_once: the same clip, read from the cache each time and not kept among the recent ones."""
    from voiceguide.audio.clips import CachedClips
    from voiceguide.pipeline import session_clips

    session_clips(load_builtin("desk-break"), SessionOptions(), BuzzyEngine(), cache)
    plan, planned = session_clips(load_builtin("desk-break"), SessionOptions(), BuzzyEngine(), cache)
    assert isinstance(planned, CachedClips)
    clips = CachedClips(cache, planned.key, planned.lengths, RATE, planned.held)
    text = next(event.text for event in plan.speech() if isinstance(event.text, str))
    reads = _counted_cache_reads(monkeypatch)
    once = [clips.read_once(text), clips.read_once(text)]
    assert sum(reads.values()) == 2
    kept = [clips[text], clips[text]]
    assert sum(reads.values()) == 3  # the first plain read keeps it
    assert {clip.pcm for clip in once + kept} == {kept[0].pcm} and kept[0].samples == clips.lengths[text]


def test_what_the_limiter_keeps_does_not_depend_on_the_gains_asked_before() -> None:
    """ClipBlocks works out the limiter's dips once, above the first gain asked for, and again only past it: what it
    says the limiter keeps at each gain is exactly what a fresh one says, in whatever order the gains are asked."""
    import math

    from voiceguide.audio.limiter import ClipBlocks

    pcm = array("h", (round((3000 + 9000 * (i // 4410 % 3 == 1)) * math.sin(i / 3.1) * (1 + math.sin(i / 900)))
                      for i in range(3 * RATE))).tobytes()
    sub = RATE // 100
    asked = ClipBlocks(pcm, RATE)
    for gain in (9.0, 0.0, 3.0, 14.5, 6.0, 11.0, 20.0, 1.0):
        assert asked.kept(gain, -2.0, sub) == ClipBlocks(pcm, RATE).kept(gain, -2.0, sub), gain
    # Another ceiling: the limiter only sees the gain against the ceiling, so 2 dB more of both keeps the same.
    lower = asked.kept(6.0, -4.0, sub)
    assert lower == ClipBlocks(pcm, RATE).kept(6.0, -4.0, sub) and min(lower) < 0.9
    assert max(map(abs, map(float.__sub__, lower, asked.kept(8.0, -2.0, sub)))) < 1e-9


def test_levelling_a_limited_voice_lands_on_the_target_in_few_tries(cache: ClipCache,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A peaky voice the limiter turns down a lot: each gain tried is composed exactly, and the steps between them
    allow for the slope falling as the gain rises, so the fit is within FIT_TOLERANCE_LU of the target at the third
    gain tried (Newton's steps alone fell short, and took a fourth)."""
    from voiceguide.audio import loudness
    from voiceguide.pipeline import session_clips

    plan, clips = session_clips(load_builtin("desk-break"), SessionOptions(), BuzzyEngine(), cache)
    for target in (-16.0, -17.0):
        found: list[float] = []
        composed = loudness.session_loudness

        def counted(*args, found=found, composed=composed, **kwargs):  # type: ignore[no-untyped-def]
            found.append(composed(*args, **kwargs))
            return found[-1]

        monkeypatch.setattr(loudness, "session_loudness", counted)
        levels = loudness.level_session(plan, clips, target)
        monkeypatch.undo()
        tried = found[1:]  # the first is the session as it is
        assert len(levels.limited) > 10 and len(tried) <= 3, (target, found)
        assert abs(tried[-1] - target) <= loudness.FIT_TOLERANCE_LU, (target, found)


def test_levelling_reads_each_clip_once(cache: ClipCache, monkeypatch: pytest.MonkeyPatch) -> None:
    """Levelling needs every clip's K-weighted energies, peaks and per-millisecond blocks: one read of each
    (reads from the cache are checksummed, and a 2-hour session has hundreds of clips)."""
    from voiceguide.audio.clips import CachedClips
    from voiceguide.audio.loudness import level_session
    from voiceguide.pipeline import session_clips

    session_clips(load_builtin("desk-break"), SessionOptions(), BuzzyEngine(), cache)  # every line into the cache
    plan, planned = session_clips(load_builtin("desk-break"), SessionOptions(), BuzzyEngine(), cache)
    assert isinstance(planned, CachedClips) and not planned.spilled
    # No clips kept in memory between reads: a long session's are too many to keep, so every read is a cache read.
    clips = CachedClips(cache, planned.key, planned.lengths, RATE, planned.held, keep_bytes=0)
    reads = _counted_cache_reads(monkeypatch)
    levels = level_session(plan, clips, -16.0)
    assert len(levels.limited) > 10  # the limiter's share was worked out too
    spoken = {event.text for event in plan.speech() if isinstance(event.text, str)}  # tones are made, not read
    assert list(reads.values()) == [1] * len(spoken) and len(spoken) > 10


class Tones:
    """A PcmSource: half-second 1 kHz tones, each at its own level, in long digital silence (like a session)."""

    def __init__(self, starts: list[int], levels: list[int], total: int, length: int = RATE // 2) -> None:
        import math

        self.starts, self.levels, self.total, self.length = starts, levels, total, length
        self.wave = [math.sin(2 * math.pi * 1000 * i / RATE) for i in range(length)]

    def chunks(self, start: int = 0, end: int | None = None):  # type: ignore[no-untyped-def]
        end = self.total if end is None else end
        samples = array("h", bytes(2 * (end - start)))
        for s, level in zip(self.starts, self.levels, strict=True):
            for i in range(max(s, start), min(s + self.length, end)):
                samples[i - start] = round(level * self.wave[i - s])
        yield samples.tobytes()

    def silences(self) -> list[tuple[int, int]]:
        edges = [0, *(x for s in self.starts for x in (s, s + self.length)), self.total]
        return [(a, b) for a, b in itertools.pairwise(edges)][::2]


def test_the_file_checked_while_it_is_written_reads_as_the_written_file(tmp_path: Path) -> None:
    """StreamCheck measures the MP3's audio frames as they are written: tones at random levels, measured in
    windows around every other tone, in windows that cut into the tones (so a frame's time off by the samples a
    gapless decoder drops would select other samples) and in windows whose edges fall exactly where decoded frames
    start, read exactly as measure_file reads the finished file; likewise when the check leaves the ready-made
    silent frames out of what it decodes (the frames measured then have other times)."""
    import random

    from voiceguide.audio.encoded import StreamCheck, measure_file
    from voiceguide.export.encode import encode
    from voiceguide.export.mp3 import silent_spans
    from voiceguide.export.tags import Tags

    rng = random.Random(7)
    starts = [round((5 + 6.5 * k + rng.random()) * RATE) for k in range(90)]
    levels = [rng.randrange(500, 20000) for _ in starts]
    levels[40] = 30000  # the loudest tone is not in a window
    source = Tones(starts, levels, starts[-1] + 8 * RATE)
    around = [(s - RATE // 5, s + RATE // 2 + RATE // 5) for s in starts[1::2]]
    inside = [(s + 7, s + 3000) for s in starts[::3] if s != starts[40]]
    # The frames' times (t, which windows are compared with) count every decoded sample, the 1105 a gapless decoder
    # drops included: each full frame starts at a multiple of 1152 on that scale.
    edges = [(s - s % 1152, s - s % 1152 + 3 * 1152) for s in starts[::2] if s != starts[40]]
    silent = silent_spans(source, RATE)
    assert len(silent) == 91  # the lead-in, the 89 gaps between the tones and the tail
    windows = {"around": around, "inside": inside, "edges": edges, "all": []}
    out = tmp_path / "tones.mp3"
    found: dict[str, object] = {}
    with contextlib.ExitStack() as stack:
        meters = {f"{name}{'-skipping' if skipping else ''}": stack.enter_context(
                      StreamCheck(chosen, RATE, source.total, silent if skipping else ()))
                  for name, chosen in windows.items() for skipping in (False, True)}

        class Hear:
            def __call__(self, data: bytes, silent: bytes) -> None:
                for meter in meters.values():
                    meter(data, silent)

            def skipped(self, data: bytes, frames: int) -> None:
                for meter in meters.values():
                    meter.skipped(data, frames)

        def check(path: Path) -> None:
            found.update({name: meter.result(path) for name, meter in meters.items()})
            # left out of what the skipping meters' ffmpeg decoded (not read back from the file)
            assert all(meter._skipped == len(silent) and not meter._lost
                       for name, meter in meters.items() if name.endswith("-skipping") and name != "all-skipping")

        encode(source, RATE, out, Tags(title="x"), [], jobs=2, heard=Hear(), check=check)
    for name, chosen in windows.items():
        expected = measure_file(out, chosen, RATE)  # (no windows: all of it, at the file's rate as the check)
        assert found[name] == found[f"{name}-skipping"] == expected, name
    # Only the windows were measured: the file's loudest tone (3.5 dB over the rest) is not among them.
    assert measure_file(out).true_peak - measure_file(out, around, RATE).true_peak > 3


def test_the_check_measures_the_file_when_the_silent_frames_are_not_where_it_was_told(tmp_path: Path) -> None:
    """The check leaves out the silent frames it was told of; if the writer's are elsewhere, the copy's times are
    wrong, and the written file itself is measured. A window reaching into a silent span: nothing left out."""
    from voiceguide.audio.encoded import StreamCheck, measure_file
    from voiceguide.errors import OptionError
    from voiceguide.export.encode import encode
    from voiceguide.export.mp3 import silent_spans
    from voiceguide.export.tags import Tags

    starts = [round((5 + 6.5 * k) * RATE) for k in range(12)]
    source = Tones(starts, [3000 * (1 + k % 4) for k in range(12)], starts[-1] + 8 * RATE)
    spans = silent_spans(source, RATE)
    wrong = [*spans[:3], (spans[3][0], spans[3][1] - 1152), *spans[4:]]  # one frame short
    around = [(s - RATE // 5, s + RATE // 2 + RATE // 5) for s in starts]
    out = tmp_path / "tones.mp3"
    found = []
    with StreamCheck(around, RATE, source.total, wrong) as meter:
        encode(source, RATE, out, Tags(title="x"), [], jobs=2, heard=meter,
               check=lambda path: found.append(meter.result(path)))
        assert meter._lost and meter._skipped == 3
    assert found == [measure_file(out, around, RATE)]
    assert StreamCheck([(spans[2][0] - 10, spans[2][0] + 10)], RATE, source.total, spans)._skips == []
    for bad in ([(0.0, 1152)], [(1, 2, 3)], [None], 5):
        with pytest.raises(OptionError, match="silent must be"):
            StreamCheck(around, RATE, source.total, bad)  # type: ignore[arg-type]


def test_the_check_while_writing_falls_back_to_the_file_if_its_ffmpeg_gave_up(tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The encoder stalls longer than the follower waits: it ends having measured part of the stream, and the
    result is the written file's, not the part's."""
    import time

    from voiceguide.audio import encoded
    from voiceguide.export.encode import encode
    from voiceguide.export.tags import Tags

    monkeypatch.setattr(encoded, "FOLLOW_TIMEOUT_S", 1)
    starts = [round((5 + 6.5 * k) * RATE) for k in range(20)]
    source = Tones(starts, [2000] * 10 + [20000] * 10, starts[-1] + 8 * RATE)
    out = tmp_path / "tones.mp3"
    encode(source, RATE, out, Tags(title="x"), [])
    data = out.read_bytes()
    info_frame = 144000 * 96 // RATE  # bytes in the Info frame, a 96 kbps frame without padding
    audio = data[data.index(b"Info") - 21 + info_frame:]  # past the ID3 tag and the Info frame (its header + side info)
    with encoded.StreamCheck([], RATE, source.total) as meter:
        meter(audio[: len(audio) // 3], b"")  # the quiet third
        time.sleep(2.5)
        meter(audio[len(audio) // 3 :], b"")
        assert meter.result(out) == encoded.measure_file(out, (), RATE)


def test_the_check_while_writing_fails_cleanly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ffmpeg fails: an EncoderError with its last line; and leaving the check while ffmpeg runs (an interrupted
    render) kills it at once and removes the copy; bad arguments are OptionErrors."""
    import tempfile
    import time

    from voiceguide.audio.encoded import StreamCheck
    from voiceguide.errors import EncoderError, OptionError
    from voiceguide.export.encode import encode
    from voiceguide.export.tags import Tags

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    starts = [round((5 + 6.5 * k) * RATE) for k in range(30)]
    source = Tones(starts, [8000] * len(starts), starts[-1] + 8 * RATE)
    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\necho 'Conversion failed: out of cheese' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("VOICEGUIDE_FFMPEG", str(fake))
    with pytest.raises(EncoderError, match=r"measuring the file being written: Conversion failed: out of cheese"), \
            StreamCheck([], RATE, source.total) as meter:
        encode(source, RATE, tmp_path / "a.mp3", Tags(title="x"), [], jobs=2, heard=meter,
               check=lambda p: meter.result(p))
    assert not list(tmp_path.glob("voiceguide-measure-*"))
    fake.write_text("#!/bin/sh\nexec sleep 30\n")
    with StreamCheck([], RATE, source.total) as meter:
        meter(bytes(1000), bytes(10))
        assert (next(tmp_path.glob("voiceguide-measure-*")) / "stream.mp3").stat().st_size == 1000
        started = time.monotonic()
    assert time.monotonic() - started < 2 and not list(tmp_path.glob("voiceguide-measure-*"))
    for rate, total in [(22050, 1000), (44100, -1), (44100, 1.5), (44100, True)]:
        with pytest.raises(OptionError, match="needs an MPEG-1 rate"):
            StreamCheck([], rate, total)  # type: ignore[arg-type]


_PCM = array("h", [9000, -9000] * 2000).tobytes()


@pytest.mark.parametrize(("args", "says"), [
    ((_PCM + b"\x01", RATE, 3.0), "limit: the samples must be mono 16-bit PCM, bytes of even length (got 8001 bytes)"),
    (("text", RATE, 3.0), "limit: the samples must be mono 16-bit PCM, bytes of even length (got str)"),
    ((_PCM, 0, 3.0), "limit: a sample rate must be a whole number of Hz from 1000 to 384000 (got 0)"),
    ((_PCM, RATE, float("nan")), "limit: gain_db must be a number of dB from -120 to 120 (got nan)"),
    ((_PCM, RATE, float("inf")), "limit: gain_db must be a number of dB from -120 to 120 (got inf)"),
    ((_PCM, RATE, 1e308), "limit: gain_db must be a number of dB from -120 to 120 (got 1e+308)"),
    ((_PCM, RATE, "3"), "limit: gain_db must be a number of dB from -120 to 120 (got '3')"),
    ((_PCM, RATE, 3.0, float("nan")), "limit: ceiling_dbfs must be a number of dB from -120 to 0 (got nan)"),
    ((_PCM, RATE, 3.0, 1.0), "limit: ceiling_dbfs must be a number of dB from -120 to 0 (got 1.0)"),
    ((_PCM, RATE, 3.0, -2.0, "junk"), "limit: dips must be the clip's Dips (ClipBlocks.dips) or None (got str)"),
])
def test_the_limiter_misused_says_so_in_our_own_error(args: tuple, says: str) -> None:  # type: ignore[type-arg]
    """Misuse through the API is an OptionError with the value, never AttributeError (dips that are not Dips),
    audioop.error (odd bytes), OverflowError (an infinite gain) or, for NaN, samples quietly made of it."""
    with pytest.raises(OptionError) as caught:
        limit(*args)
    assert str(caught.value) == says


@pytest.mark.parametrize(("pcm", "rate"), [(_PCM + b"\x01", RATE), (_PCM, 0), ("text", RATE), (_PCM, 44100.0)])
def test_clip_blocks_of_what_is_not_a_clip_is_an_option_error(pcm: object, rate: object) -> None:
    from voiceguide.audio.limiter import ClipBlocks

    with pytest.raises(OptionError, match=r"^ClipBlocks: "):
        ClipBlocks(pcm, rate)  # type: ignore[arg-type]
