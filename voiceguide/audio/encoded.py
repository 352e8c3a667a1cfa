"""What an encoder does to loudness and peaks, measured on the file as written, and corrected.

Lossy encoders move both: LAME plays about 0.4 dB quieter, AAC, Vorbis and
Opus overshoot true peak on sharp onsets. Each format starts from a measured
allowance (extra gain, a lower sample-peak ceiling); then the written file is
decoded and measured by ebur128 (``peak=true``), and if it misses the target
by more than ``TOLERANCE_LU`` or peaks over ``MAX_TRUE_PEAK`` the session is
levelled once more with the correction and encoded again. The correction that
worked is remembered per session, format and settings, so a warm render
neither measures nor encodes twice.
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

from voiceguide.audio.loudness import CEILING_DBFS, Loudness, parse_ebur128
from voiceguide.host import recall, remember

MAX_TRUE_PEAK = -1.0  # dBTP, measured on the decoded file
TOLERANCE_LU = 0.3  # a written file further than this from the target is levelled and encoded again
PEAK_MARGIN = 0.3  # dB kept under MAX_TRUE_PEAK when the ceiling has to come down


@dataclass(frozen=True)
class Trim:
    """What a format needs on top of the session's levels: extra gain (dB) and the limiter's ceiling (dBFS)."""

    gain_db: float = 0.0
    ceiling_dbfs: float = CEILING_DBFS


# Starting points, measured on real and synthetic speech (see tests/test_loudness_formats.py): MP3
# decodes ~0.4 dB quieter than it was fed; AAC, Vorbis and Opus overshoot true peak by up to ~2 dB.
ENCODER_TRIM = {
    "mp3": Trim(0.4, -2.0),
    "m4a": Trim(0.0, -3.0),
    "ogg": Trim(0.0, -3.0),
    "opus": Trim(0.0, -3.0),
    "flac": Trim(0.0, -1.5),
    "wav": Trim(0.0, -1.5),
}


class Retune(Exception):  # a signal, not an error: the file is encoded again with ``trim``
    """The written file missed the target: level again with ``trim`` and encode once more."""

    def __init__(self, trim: Trim, found: Loudness) -> None:
        super().__init__(f"measured {found.integrated:.1f} LUFS, {found.true_peak:.1f} dBTP")
        self.trim = trim
        self.found = found


def measure_file(path: Path) -> Loudness:
    """Integrated loudness and true peak of an audio file as ffmpeg decodes it (every channel, as players do)."""
    from voiceguide.ffmpeg import ffmpeg_exe, run_ffmpeg

    command = [ffmpeg_exe(), "-hide_banner", "-nostats", "-i", str(path), "-vn",
               "-af", "ebur128=framelog=quiet:peak=true", "-f", "null", "-"]
    with tempfile.TemporaryFile() as log:
        run_ffmpeg(command, [], log)
        log.seek(0)
        return parse_ebur128(log.read().decode(errors="replace"))


def corrected(trim: Trim, found: Loudness, target: float) -> Trim | None:
    """The trim that brings a file measured ``found`` to ``target`` under the peak limit; None if it is there."""
    if not math.isfinite(found.integrated):
        return None  # silence: nothing to correct
    off = target - found.integrated
    over = found.true_peak - MAX_TRUE_PEAK
    if abs(off) <= TOLERANCE_LU and over <= 0:
        return None
    ceiling = trim.ceiling_dbfs - (over + PEAK_MARGIN if over > 0 else 0.0)
    return Trim(trim.gain_db + off, ceiling)


def trim_key(*parts: object) -> str:
    """A remembered trim's name: everything the written file's loudness depends on."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def recall_trim(folder: Path | None, key: str) -> Trim | None:
    """The trim that worked before for ``key``, or None."""
    known = recall(folder, "levels", f"trim-{key}")
    if known is None:
        return None
    try:
        data = json.loads(known)
        return Trim(float(data["gain_db"]), float(data["ceiling_dbfs"]))
    except (ValueError, KeyError, TypeError):
        return None


def remember_trim(folder: Path | None, key: str, trim: Trim) -> None:
    """Keep the trim that brought this session's file to target."""
    remember(folder, "levels", f"trim-{key}", json.dumps({"gain_db": trim.gain_db,
                                                          "ceiling_dbfs": trim.ceiling_dbfs}).encode())
