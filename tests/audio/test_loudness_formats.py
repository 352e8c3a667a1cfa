"""Loudness on the file as written: every format, with and without music, at the target within 0.5 LU and
at most -1 dBTP, measured by ffmpeg's ebur128 (peak=true) on the decoded file, every channel counted."""

from __future__ import annotations

import itertools
import math
import random
from array import array
from pathlib import Path

import pytest
from conftest import BuzzyEngine, write_tone

from voiceguide.audio import encoded
from voiceguide.audio.encoded import ENCODER_TRIM, MAX_TRUE_PEAK, PEAK_MARGIN, Trim, corrected, measure_file
from voiceguide.audio.limiter import ATTACK_BLOCKS, RISE_DB_PER_BLOCK, limit
from voiceguide.audio.loudness import Loudness
from voiceguide.pipeline import SessionOptions, render_session
from voiceguide.routine.load import parse_routine
from voiceguide.speech.cache import ClipCache

RATE = 44100
FORMATS = ("mp3", "m4a", "ogg", "opus", "flac", "wav")
ROUTINE = """\
name: Loudness check
intro: A short session to check loudness in every format.
defaults: {hold: 20, rest: 4, prepare: 3, switch: 3, countdown: 3, tones: true}
stretches:
  - name: Reach up
    instructions: Reach up high, lengthen the spine and breathe.
    sides: [left, right]
    cues: [{at: 8, say: Soften the shoulders and keep breathing.}]
  - name: Fold forward
    instructions: Fold forward slowly and let the head hang.
"""


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("music") / "bed.wav"
    write_tone(path, 12.0, RATE, freq=330.0, amplitude=0.4)  # shorter than the session: it loops
    return path


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> ClipCache:
    return ClipCache(tmp_path_factory.mktemp("clips"))


MEASURED: dict[tuple[str, bool, float], Loudness] = {}


def plain_ebur128(path: Path) -> Loudness:
    """The file measured by ffmpeg's ebur128 filter alone (``peak=true``), the way the ffmpeg command line does."""
    import subprocess

    from voiceguide.audio.loudness import parse_ebur128
    from voiceguide.ffmpeg import ffmpeg_exe

    log = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostats", "-i", str(path), "-vn", "-af",
                          "ebur128=framelog=quiet:peak=true", "-f", "null", "-"], capture_output=True, check=True)
    return parse_ebur128(log.stderr.decode(errors="replace"))


@pytest.mark.slow
@pytest.mark.parametrize("music", [False, True], ids=["voice", "music"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_measures_the_target_on_the_written_file(fmt: str, music: bool, bed: Path, tmp_path: Path,
                                                              shared_cache: ClipCache) -> None:
    out = tmp_path / f"session.{fmt}"
    options = SessionOptions(fmt=fmt, music=(bed,) if music else ())
    plan = render_session(parse_routine(ROUTINE), out, options, engine=BuzzyEngine(), cache=shared_cache).plan
    assert 60 <= plan.duration <= 150
    found = measure_file(out)
    MEASURED[(fmt, music, -16.0)] = found
    assert abs(found.integrated - -16.0) <= 0.5, found
    assert found.true_peak <= MAX_TRUE_PEAK, found
    # What our meter reads is what ffmpeg's own ebur128 true-peak meter (192 kHz, its 32-tap filter) reads, to the
    # 0.1 it prints: the file check's shorter interpolation filter does not flatter the peak.
    plain = plain_ebur128(out)
    assert abs(found.integrated - plain.integrated) <= 0.1 and abs(found.true_peak - plain.true_peak) <= 0.06, plain


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["mp3", "m4a", "opus"])
def test_a_chosen_target_holds_too(fmt: str, bed: Path, tmp_path: Path, shared_cache: ClipCache) -> None:
    for music in ((), (bed,)):
        out = tmp_path / f"quiet.{fmt}"
        render_session(parse_routine(ROUTINE), out, SessionOptions(fmt=fmt, loudness=-19.0, music=music),
                       engine=BuzzyEngine(), cache=shared_cache)
        found = measure_file(out)
        assert abs(found.integrated - -19.0) <= 0.5 and found.true_peak <= MAX_TRUE_PEAK, (music, found)


def test_a_warm_render_reuses_the_correction_without_measuring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               cache: ClipCache) -> None:
    measured: list[Path] = []
    real = encoded.measure_file
    monkeypatch.setattr(encoded, "measure_file", lambda path, *args: measured.append(path) or real(path, *args))
    out = tmp_path / "s.m4a"
    for _ in range(2):
        render_session(parse_routine(ROUTINE), out, engine=BuzzyEngine(), cache=cache)
    cold = len(measured)
    assert 1 <= cold <= encoded.ATTEMPTS  # measured once, or again after each correction
    render_session(parse_routine(ROUTINE), out, engine=BuzzyEngine(), cache=cache)
    assert len(measured) == cold  # the warm renders measured nothing
    found = real(out)
    assert abs(found.integrated + 16.0) <= 0.5 and found.true_peak <= MAX_TRUE_PEAK


def test_a_missed_target_is_corrected_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           cache: ClipCache) -> None:
    """A deliberately wrong allowance (4 dB too loud, a ceiling at 0 dBFS) is caught on the written file
    and corrected by one more encode."""
    monkeypatch.setitem(ENCODER_TRIM, "ogg", Trim(4.0, 0.0))
    out = tmp_path / "s.ogg"
    render_session(parse_routine(ROUTINE), out, engine=BuzzyEngine(), cache=cache)
    found = measure_file(out)
    assert abs(found.integrated + 16.0) <= 0.5 and found.true_peak <= MAX_TRUE_PEAK, found


def test_correction_arithmetic() -> None:
    assert corrected(Trim(0.4, -2.0), Loudness(-16.2, -1.5), -16.0) is None  # within tolerance, under the peak
    louder = corrected(Trim(0.4, -2.0), Loudness(-16.6, -1.5), -16.0)
    assert louder is not None and (louder.gain_db, louder.ceiling_dbfs) == pytest.approx((1.0, -2.0))
    again = corrected(Trim(0.0, -3.0), Loudness(-16.0, 0.4), -16.0)
    assert again is not None and again.gain_db == 0.0 and again.ceiling_dbfs == pytest.approx(-3.0 - 1.4 - PEAK_MARGIN)
    assert corrected(Trim(), Loudness(-math.inf, -math.inf), -16.0) is None  # silence


def _reference_limit(pcm: bytes, gain_db: float, ceiling_dbfs: float) -> list[float]:
    """The limiter's gain per 1 ms block, computed the plain way (every block, min() over every window)."""
    samples = array("h")
    samples.frombytes(pcm)
    block = RATE // 1000
    gain, ceiling = 10 ** (gain_db / 20), 32767 * 10 ** (ceiling_dbfs / 20)
    want = []
    for i in range(0, len(samples), block):
        peak = max(abs(max(samples[i : i + block])), abs(min(samples[i : i + block])))
        want.append(min(gain, ceiling / peak) if peak else gain)
    envelope = [min(want[i : i + ATTACK_BLOCKS + 1]) for i in range(len(want))]
    rise = 10 ** (RISE_DB_PER_BLOCK / 20)
    for i in range(1, len(envelope)):
        envelope[i] = min(envelope[i], envelope[i - 1] * rise)
    for i in range(len(envelope) - 2, -1, -1):
        envelope[i] = min(envelope[i], envelope[i + 1] * rise)
    return envelope


@pytest.mark.parametrize("gain_db", [0.0, 4.0, 12.0])
def test_limiter_matches_the_plain_algorithm_everywhere(gain_db: float) -> None:
    """The fast limiter works only near peaks; its output must equal the plain per-block algorithm's."""
    rng = random.Random(7)
    samples = array("h")
    for _ in range(40):  # quiet stretches, isolated spikes and loud bursts, in random order
        kind = rng.choice(["quiet", "spike", "burst", "silence"])
        length = rng.randrange(50, 9000)
        level = {"quiet": 2000, "spike": 1500, "burst": 30000, "silence": 0}[kind]
        chunk = [round(level * math.sin(i * 0.07 + rng.random())) for i in range(length)]
        if kind == "spike":
            chunk[length // 2] = rng.choice([-32000, 32000])
        samples.extend(chunk)
    pcm = samples.tobytes()
    envelope = _reference_limit(pcm, gain_db, -2.0)
    expected = array("h")
    block = RATE // 1000
    for index, gain in enumerate(envelope):
        expected.extend(max(-32768, min(32767, int(v * gain))) for v in samples[index * block : (index + 1) * block])
    got = array("h")
    got.frombytes(limit(pcm, RATE, gain_db, -2.0))
    assert len(got) == len(expected)
    assert max(abs(a - b) for a, b in zip(got, expected, strict=True)) <= 1  # audioop rounds as int() does, +-1
    ceiling = 32767 * 10 ** (-2.0 / 20)
    assert max(map(abs, got)) <= ceiling + 1
    assert any(a != b for a, b in itertools.pairwise(envelope))  # the fixture does make the limiter work


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["mp3", "opus"])
def test_measuring_only_where_the_plan_speaks_agrees_with_the_whole_file(fmt: str, tmp_path: Path,
                                                                         shared_cache: ClipCache) -> None:
    """The render measures its voice-only file in the plan's speech windows; ffmpeg on the whole file agrees."""
    from voiceguide.audio.loudness import speech_windows
    from voiceguide.export.formats import get_format

    out = tmp_path / f"session.{fmt}"
    plan = render_session(parse_routine(ROUTINE), out, SessionOptions(fmt=fmt), engine=BuzzyEngine(),
                          cache=shared_cache).plan
    rate = get_format(fmt).file_rate(plan.rate)
    windows = speech_windows(plan, rate)
    assert len(windows) > 5 and sum(end - start for start, end in windows) < 0.9 * plan.total * rate / plan.rate
    whole, spoken = measure_file(out), measure_file(out, windows, rate)
    step = 0.1 + 1e-9  # ebur128 prints tenths: at most one step apart
    assert abs(whole.integrated - spoken.integrated) <= step, (whole, spoken)
    assert abs(whole.true_peak - spoken.true_peak) <= step, (whole, spoken)
    # And the windows matter: measured only in the silences, the file has no loudness at all.
    gaps = [(end, start) for (_, end), (start, _) in itertools.pairwise(windows) if start - end > rate]
    assert measure_file(out, gaps, rate).integrated < -60


def test_a_warm_render_reads_its_limited_clips_back_instead_of_limiting_again(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The limiter's output is kept in the clip cache: the next render limits nothing and writes the same bytes;
    a damaged entry is not used but made again."""
    from voiceguide.audio import loudness

    calls: list[int] = []
    real = loudness.limit
    monkeypatch.setattr(loudness, "limit", lambda pcm, *args: calls.append(len(pcm)) or real(pcm, *args))
    cache = ClipCache(tmp_path / "cache")
    outputs = []
    for attempt in range(3):
        out = tmp_path / f"session-{attempt}.wav"  # lossless: no re-encode, so the written file is the PCM
        render_session(parse_routine(ROUTINE), out, SessionOptions(), engine=BuzzyEngine(), cache=cache)
        outputs.append(out.read_bytes())
        if attempt == 0:
            first = len(calls)
            assert first > 0  # the buzzy voice is limited
            stored = sorted((cache.folder / "limited").glob("*/*.clip"))
            assert stored and not set(stored) & set(cache.folder.glob("*/*.clip"))  # apart from the speech
            damaged = stored[0]
            data = bytearray(damaged.read_bytes())
            data[-100] ^= 0xFF
        elif attempt == 1:
            assert len(calls) == first  # nothing limited again
            damaged.write_bytes(bytes(data))
        else:
            assert len(calls) == first + 1  # only the damaged one, made again
    assert outputs[0] == outputs[1] == outputs[2]
