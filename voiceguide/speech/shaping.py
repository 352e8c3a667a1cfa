"""A spoken line shaped into a clip: silence trimmed, resampled, levelled, faded: on mono 16-bit PCM with audioop
alone, so a speech worker can shape each line while the next is spoken (no pydub, nothing else imported).

Every step is exactly the pydub operation ``speech.clip.process_clip`` was written with (its millisecond
slicing and rounding, ``ratecv``, ``dBFS`` through ``log(x, 10)``, the sample-by-sample fades): the same bytes,
which a test holds against pydub itself.
"""

from __future__ import annotations

import math
from array import array

from voiceguide.errors import OptionError, SpeechError
from voiceguide.host import load_audioop

TARGET_RMS_DBFS = -20.0  # level every line to the same loudness
PEAK_CEILING_DBFS = -1.5
SILENCE_DBFS = -50.0
FADE_MS = 5
SKIP_MS = 50  # silence is skipped this many milliseconds at a time where no sample comes near the threshold
_FULL_SCALE = 32768.0  # pydub's max_possible_amplitude for 16-bit samples
_FADE_FLOOR = 10 ** (-120 / 20)  # pydub fades from and to -120 dB
SOURCE_RATES = (1000, 384000)  # Hz a line may be spoken at (what an engine's WAV says)
CLIP_RATES = (8000, 192000)  # Hz a clip may be shaped to


class SilentLine(SpeechError):
    """The line holds nothing above the silence threshold."""


def check_pcm(name: str, pcm: object, rate: object, rates: tuple[int, int] = SOURCE_RATES) -> None:
    """OptionError unless ``pcm`` is mono 16-bit samples (bytes of even length) and ``rate`` a whole number of Hz
    within ``rates``: misuse through the API is told as such, not as audioop's or a division's error."""
    if not isinstance(pcm, (bytes, bytearray)) or len(pcm) % 2:
        what = f"{len(pcm)} bytes" if isinstance(pcm, (bytes, bytearray)) else type(pcm).__name__
        raise OptionError(f"{name}: the samples must be mono 16-bit PCM, bytes of even length (got {what})")
    check_rate(name, rate, rates)


def check_rate(name: str, rate: object, rates: tuple[int, int]) -> None:
    """OptionError unless ``rate`` is a whole number of Hz within ``rates``."""
    if isinstance(rate, bool) or not isinstance(rate, int) or not rates[0] <= rate <= rates[1]:
        raise OptionError(f"{name}: a sample rate must be a whole number of Hz from {rates[0]} to {rates[1]} "
                          f"(got {rate!r})")


def leading_silence_ms(pcm: bytes, rate: int, threshold_dbfs: float = SILENCE_DBFS) -> int:
    """Milliseconds of silence at the start of mono 16-bit ``pcm``: exactly what pydub's
    ``detect_leading_silence(segment, threshold_dbfs, chunk_size=1)`` returns (its millisecond slicing, its
    dBFS of each 1 ms chunk), without a new AudioSegment per millisecond, which made trimming most of the
    time spent processing a line. Stretches where no sample reaches the threshold are skipped whole (a
    chunk's RMS is never above its peak). OptionError for samples or a rate that are not as above."""
    check_pcm("leading_silence_ms", pcm, rate)
    if isinstance(threshold_dbfs, bool) or not isinstance(threshold_dbfs, (int, float)) \
            or not -200 <= threshold_dbfs <= 0:
        raise OptionError(f"leading_silence_ms: the threshold must be a level from -200 to 0 dBFS "
                          f"(got {threshold_dbfs!r})")
    return _leading_silence_ms(pcm, rate, threshold_dbfs)


def _leading_silence_ms(pcm: bytes, rate: int, threshold_dbfs: float) -> int:
    """leading_silence_ms on samples, rate and threshold already checked (shape_speech's, twice per line)."""
    audioop = load_audioop()
    frames = len(pcm) // 2
    length = _length_ms(frames, rate)
    level = 32768 * 10 ** (threshold_dbfs / 20)

    def frame(ms: int) -> int:  # pydub's position of a millisecond, clamped to the segment as its slicing does
        return int(min(ms, length) * (rate / 1000.0))

    trim = 0
    while trim < length:
        ahead = min(trim + SKIP_MS, length)
        if ahead > trim + 1 and audioop.max(pcm[frame(trim) * 2 : frame(ahead) * 2], 2) < level:
            trim = ahead
            continue
        start, end = frame(trim), frame(trim + 1)
        chunk = pcm[start * 2 : end * 2]
        chunk += bytes(2 * (end - start) - len(chunk))  # pydub pads a short last chunk with silence
        rms = audioop.rms(chunk, 2) if chunk else 0
        if rms and 20 * math.log10(rms / 32768.0) >= threshold_dbfs:
            break
        trim += 1
    return trim


def shape_speech(pcm: bytes, source_rate: int, rate: int) -> bytes:
    """Mono 16-bit ``pcm`` at ``source_rate`` as a clip at ``rate``: silence trimmed from both ends (below
    SILENCE_DBFS), resampled, levelled to TARGET_RMS_DBFS without peaks past PEAK_CEILING_DBFS, FADE_MS faded in
    and out. SilentLine (a SpeechError) if nothing is left; OptionError for samples that are not mono 16-bit or
    a rate outside SOURCE_RATES (``source_rate``) or CLIP_RATES (``rate``)."""
    check_pcm("shape_speech", pcm, source_rate)
    check_rate("shape_speech", rate, CLIP_RATES)
    audioop = load_audioop()
    lead = _leading_silence_ms(pcm, source_rate, SILENCE_DBFS)
    tail = _leading_silence_ms(audioop.reverse(pcm, 2), source_rate, SILENCE_DBFS)
    length = _length_ms(len(pcm) // 2, source_rate)
    if lead >= length:
        raise SilentLine("the speech engine produced only silence")
    pcm = _slice_ms(pcm, source_rate, lead, length - tail)
    if rate != source_rate and pcm:
        pcm = audioop.ratecv(pcm, 2, 1, source_rate, rate, None)[0]
    rms = audioop.rms(pcm, 2)
    loudness = 20 * math.log(rms / _FULL_SCALE, 10) if rms else -math.inf  # pydub's dBFS, to the last bit
    peak = audioop.max(pcm, 2)
    peak_dbfs = 20 * math.log(peak / _FULL_SCALE, 10) if peak else -math.inf
    gain = min(TARGET_RMS_DBFS - loudness, PEAK_CEILING_DBFS - peak_dbfs)  # never clip
    pcm = audioop.mul(pcm, 2, 10 ** (float(gain) / 20))
    return _fade_out(_fade_in(pcm, rate), rate)


def _length_ms(frames: int, rate: int) -> int:
    """pydub's ``len(segment)``: the length in whole milliseconds, rounded."""
    return round(1000 * (float(frames) / rate))


def _position(ms: float, rate: int) -> int:
    """pydub's frame for a millisecond (``_parse_position``): truncated, never rounded."""
    return int(ms * (rate / 1000.0))


def _slice_ms(pcm: bytes, rate: int, start_ms: int, end_ms: float) -> bytes:
    """pydub's ``segment[start_ms:end_ms]``: both ends clamped to the length in whole milliseconds (a negative
    one counted from it), each turned into a frame by truncation, and padded with silence where that reaches
    past the samples (by less than a millisecond; pydub pads only what has a first sample to copy)."""
    length = _length_ms(len(pcm) // 2, rate)

    def position(ms: float) -> int:
        ms = min(ms, length)
        return _position(length - abs(ms) if ms < 0 else ms, rate)

    start, end = position(start_ms), position(end_ms)
    data = pcm[start * 2 : end * 2]
    missing = (end - start) - len(data) // 2
    if missing > 0 and data:
        data += bytes(2 * missing)
    return data


def _faded(pcm: bytes, first: float, count: int, step: float, start_power: float) -> bytes:
    """pydub's precise fade: sample ``int(first + i)`` scaled by ``start_power + step * i``, one at a time
    (audioop.mul of one sample: its rounding and clipping)."""
    audioop = load_audioop()
    samples = array("h")
    for i in range(count):
        index = int(first + i)
        sample = pcm[index * 2 : index * 2 + 2]
        if sample:
            samples.frombytes(audioop.mul(sample, 2, start_power + step * i))
    return samples.tobytes()


def _fade_in(pcm: bytes, rate: int) -> bytes:
    """pydub's ``fade_in(FADE_MS)``: from -120 dB to 0 over the first FADE_MS, then the rest as it is."""
    end_frame = FADE_MS * (rate / 1000.0)
    step = (1.0 - _FADE_FLOOR) / end_frame
    return _faded(pcm, 0.0, int(end_frame), step, _FADE_FLOOR) + _slice_ms(pcm, rate, FADE_MS, math.inf)


def _fade_out(pcm: bytes, rate: int) -> bytes:
    """pydub's ``fade_out(FADE_MS)``: the start as it is, then from 0 dB to -120 over the last FADE_MS."""
    length = _length_ms(len(pcm) // 2, rate)
    start_ms = length - FADE_MS
    first, end_frame = start_ms * (rate / 1000.0), length * (rate / 1000.0)
    step = (_FADE_FLOOR - 1.0) / (end_frame - first)
    return _slice_ms(pcm, rate, 0, start_ms) + _faded(pcm, first, int(end_frame - first), step, 1.0)
