"""Clip processing with pydub: trim, convert to mono 16-bit at the session rate, level, fade."""

from __future__ import annotations

import math
import wave
from pathlib import Path
from typing import Any

from voiceguide.errors import SpeechError
from voiceguide.host import load_audioop
from voiceguide.speech.engine import Clip

# --- Clip processing -------------------------------------------------------------

TARGET_RMS_DBFS = -20.0  # level every line to the same loudness
PEAK_CEILING_DBFS = -1.5
SILENCE_DBFS = -50.0
FADE_MS = 5


def _pydub() -> Any:
    """Import pydub quietly: it warns at import when no ffmpeg is on PATH, which we never use it for."""
    import warnings

    with warnings.catch_warnings():
        # "Couldn't find ffmpeg" (RuntimeWarning) and audioop's deprecation on 3.12 are both noise here.
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        import pydub
        import pydub.silence
    return pydub


def read_wav(path: Path) -> tuple[bytes, int, int, int]:
    """Read a PCM WAV: (frames, rate, channels, sample width)."""
    try:
        with wave.open(str(path), "rb") as wav:
            return wav.readframes(wav.getnframes()), wav.getframerate(), wav.getnchannels(), wav.getsampwidth()
    except (OSError, EOFError, wave.Error) as exc:
        raise SpeechError(f"the speech engine wrote an unreadable WAV ({exc})") from None


def check_wav(path: Path) -> None:
    """Raise SpeechError unless ``path`` is a readable PCM WAV with some audio in it."""
    frames, _, channels, _ = read_wav(path)
    if not frames or channels < 1:
        raise SpeechError("the speech engine wrote an empty WAV")
    if not frames.strip(b"\x00"):
        raise SpeechError("the speech engine wrote only silence")


SKIP_MS = 50  # silence is skipped this many milliseconds at a time where no sample comes near the threshold


def leading_silence_ms(pcm: bytes, rate: int, threshold_dbfs: float = SILENCE_DBFS) -> int:
    """Milliseconds of silence at the start of mono 16-bit ``pcm``: exactly what pydub's
    ``detect_leading_silence(segment, threshold_dbfs, chunk_size=1)`` returns (its millisecond slicing, its
    dBFS of each 1 ms chunk), without a new AudioSegment per millisecond, which made trimming most of the
    time spent processing a line. Stretches where no sample reaches the threshold are skipped whole (a
    chunk's RMS is never above its peak)."""
    audioop = load_audioop()
    frames = len(pcm) // 2
    length = round(1000 * (frames / rate))  # pydub's len(segment)
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


def process_clip(path: Path, rate: int) -> Clip:
    """Trim silence, convert to mono 16-bit at ``rate``, level to a common loudness and fade the edges."""
    pydub = _pydub()
    frames, source_rate, channels, width = read_wav(path)
    segment = pydub.AudioSegment(data=frames, sample_width=width, frame_rate=source_rate, channels=channels)
    segment = segment.set_channels(1).set_sample_width(2)
    lead = leading_silence_ms(segment.raw_data, segment.frame_rate, SILENCE_DBFS)
    tail = leading_silence_ms(segment.reverse().raw_data, segment.frame_rate, SILENCE_DBFS)
    if lead >= len(segment):
        raise SpeechError("the speech engine produced only silence")
    segment = segment[lead : len(segment) - tail]
    segment = segment.set_frame_rate(rate)
    gain = TARGET_RMS_DBFS - segment.dBFS
    gain = min(gain, PEAK_CEILING_DBFS - segment.max_dBFS)  # never clip
    segment = segment.apply_gain(gain).fade_in(FADE_MS).fade_out(FADE_MS)
    return Clip(segment.raw_data, rate)
