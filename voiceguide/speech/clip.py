"""Clip processing: a WAV an engine wrote, trimmed, converted to mono 16-bit at the session rate, levelled, faded."""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Any

from voiceguide.errors import SpeechError
from voiceguide.speech.engine import Clip
from voiceguide.speech.shaping import SOURCE_RATES, shape_speech


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


def process_clip(path: Path, rate: int) -> Clip:
    """Trim silence, convert to mono 16-bit at ``rate``, level to a common loudness and fade the edges
    (speech.shaping; pydub converts other channel counts and sample widths first)."""
    frames, source_rate, channels, width = read_wav(path)
    if not SOURCE_RATES[0] <= source_rate <= SOURCE_RATES[1]:  # the engine's header, not our caller, is wrong
        raise SpeechError(f"the speech engine wrote a WAV at {source_rate} Hz (from {SOURCE_RATES[0]} to "
                          f"{SOURCE_RATES[1]} can be used)")
    if channels != 1 or width != 2:
        segment = _pydub().AudioSegment(data=frames, sample_width=width, frame_rate=source_rate, channels=channels)
        frames = segment.set_channels(1).set_sample_width(2).raw_data
    return Clip(shape_speech(frames, source_rate, rate), rate)  # a line of only silence: SilentLine, a SpeechError


def read_clip(path: Path, rate: int) -> Clip:
    """A WAV an engine shaped itself (speech.shaping, at ``rate``) as a clip: SpeechError unless it is mono
    16-bit at that rate with samples in it."""
    frames, found_rate, channels, width = read_wav(path)
    if (found_rate, channels, width) != (rate, 1, 2) or not frames:
        raise SpeechError(f"the speech engine wrote a WAV of {channels} channel(s), {8 * width}-bit at {found_rate} Hz"
                          f"{'' if frames else ', empty'}; a shaped clip is mono 16-bit at {rate} Hz")
    return Clip(frames, rate)
