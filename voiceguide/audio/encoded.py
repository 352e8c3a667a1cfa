"""What an encoder does to loudness and peaks, measured on the file as written, and corrected.

Lossy encoders move both: LAME plays about 0.4 dB quieter, AAC, Vorbis and
Opus overshoot true peak on sharp onsets. Each format starts from a measured
allowance (extra gain, a lower sample-peak ceiling); then the written file is
decoded and measured (ebur128; true peak at 192 kHz), and if it misses the target
by more than ``TOLERANCE_LU`` or peaks over ``MAX_TRUE_PEAK`` the session is
levelled once more with the correction and encoded again. The correction that
worked is remembered per session, format and settings, so a warm render
neither measures nor encodes twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import math
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from voiceguide.audio.limiter import CEILING_DBFS
from voiceguide.audio.loudness import Loudness, ebur128_filter, parse_ebur128
from voiceguide.errors import EncoderError, OptionError
from voiceguide.host import recall, remember

MAX_TRUE_PEAK = -1.0  # dBTP, measured on the decoded file
TOLERANCE_LU = 0.3  # a written file further than this from the target is levelled and encoded again
PEAK_MARGIN = 0.5  # dB kept under MAX_TRUE_PEAK when the ceiling has to come down
ATTEMPTS = 3  # encodes at most: the first, and up to two corrections (one is the rule)


@dataclass(frozen=True)
class Trim:
    """What a format needs on top of the session's levels: extra gain (dB) and the limiter's ceiling (dBFS)."""

    gain_db: float = 0.0
    ceiling_dbfs: float = CEILING_DBFS


# Starting points, measured on real and synthetic speech (see tests/audio/test_loudness_formats.py): MP3
# (96k mono by default) decodes ~0.4 dB quieter than it was fed and ~0.3-0.5 dB over the sample-peak ceiling
# (espeak and Piper psoas at -2.0 dBFS: -1.5 and -1.8 dBTP; a dense 40-minute routine -1.7); AAC ~0.5 dB
# quieter; AAC overshoots true peak by up to ~3 dB on espeak speech, Vorbis and Opus by up to ~2 dB. A lower
# ceiling than needed is not safer: it means more limiting, whose fast gain changes the encoder then overshoots.
ENCODER_TRIM = {
    "mp3": Trim(0.4, -2.0),
    "m4a": Trim(0.6, -4.0),
    "ogg": Trim(0.0, -3.0),
    "opus": Trim(0.0, -3.0),
    "flac": Trim(0.0, -1.5),
    "wav": Trim(0.0, -1.5),
}


class Retune(Exception):  # a signal, not an error: the file is encoded again with ``trim``
    """The written file missed the target: level again with ``trim`` and encode once more."""

    def __init__(self, trim: Trim, previous: Trim) -> None:
        super().__init__(f"retrim {previous} -> {trim}")
        self.trim = trim


MIN_CUT_GAP_SECONDS = 1.0  # a file is cut for parallel measuring only inside a silence at least this long
MAX_PARTS = 16  # ffmpeg processes one measurement may start at once


def measure_file(path: Path, windows: Sequence[tuple[int, int]] = (), rate: int = 0, parts: int = 1) -> Loudness:
    """Integrated loudness and true peak of an audio file as ffmpeg decodes it (every channel, as players do).

    With ``windows`` (sample ranges at ``rate``, the rate the file stores; see
    ``loudness.speech_windows``) only the frames starting inside them are measured:
    between its lines a voice-only session is silent, and silence adds neither
    loudness (ebur128's gate drops it) nor peaks, while true-peak oversampling
    costs as much per second of silence as per second of speech. With ``parts``
    above 1 the file is cut inside silences and the parts are measured at once,
    each ffmpeg decoding only its own stretch: the loudness is gated over all
    the parts' 400 ms blocks together (``parse_ebur128``), the true peak is the
    highest. Renders use one part: two halved the time (dense 40 minutes, 3.4 s
    -> 1.8 s) but each ffmpeg is 38 MB resident (mostly its static binary, shared,
    yet counted in each), which took a cold render's process tree from under
    100 MB to 128. Windows without a rate are an OptionError.
    """
    if windows and rate <= 0:
        raise OptionError(f"measure_file: windows need the file's sample rate (got {rate!r})")
    if isinstance(parts, bool) or not isinstance(parts, int) or not 1 <= parts <= MAX_PARTS:
        raise OptionError(f"measure_file: parts must be a whole number from 1 to {MAX_PARTS} (got {parts!r})")
    spans = _spans(windows, rate, parts) if windows else [(0, None, [])]  # no windows: all of it, in one piece
    with tempfile.TemporaryDirectory(prefix="voiceguide-measure-") as folder:
        return _measure_spans(path, spans, rate, Path(folder))


def _spans(windows: Sequence[tuple[int, int]], rate: int, parts: int) -> list[tuple[int, int | None, list[tuple[int, int]]]]:
    """The file cut into at most ``parts`` stretches (start, end or None for the rest, the windows inside,
    relative to the start), each cut in the middle of the silence between two windows nearest its share."""
    gaps = [(a[1], b[0]) for a, b in itertools.pairwise(windows) if b[0] - a[1] >= MIN_CUT_GAP_SECONDS * rate]
    cuts: list[int] = []
    for k in range(1, parts):
        wanted = windows[-1][1] * k // parts
        if gaps:
            end, start = min(gaps, key=lambda gap: abs((gap[0] + gap[1]) // 2 - wanted))
            cut = (end + start) // 2
            if not cuts or cut > cuts[-1]:
                cuts.append(cut)
    bounds = [0, *cuts]
    spans: list[tuple[int, int | None, list[tuple[int, int]]]] = []
    for i, first in enumerate(bounds):
        last = bounds[i + 1] if i + 1 < len(bounds) else None
        inside = [(a - first, b - first) for a, b in windows if a >= first and (last is None or b <= last)]
        spans.append((first, last, inside))
    return spans


# True peak: the decoded samples oversampled to 192 kHz, as ebur128's own true-peak meter does, but with a
# 16-tap interpolation filter in single precision instead of its 32-tap double-precision default (which made
# the peak 0.8 of the file check's 2.4 s at 40 minutes); the same peak to the hundredth of a dB on our files,
# and more than BS.1770-4's four times oversampling at 48 kHz.
TRUE_PEAK_RATE = 192000
TRUE_PEAK_METER = (f"aformat=sample_fmts=flt,aresample={TRUE_PEAK_RATE}:filter_size=16,"
                   "astats=measure_overall=Peak_level:measure_perchannel=none")
_PEAK_LEVEL = re.compile(r"Peak level dB:\s*(-?[\d.]+|-?inf)")


def _measure_spans(path: Path, spans: list[tuple[int, int | None, list[tuple[int, int]]]], rate: int,
                   folder: Path) -> Loudness:
    """Measure each stretch's windows in its own ffmpeg process, all at once, and combine them.

    The file is decoded inside the filter graph (``amovie``; see verify.probe for why: ffmpeg's thread
    hand-offs per frame cost more than the decoding), then loudness (ebur128, every 400 ms block logged when
    there are several stretches) and true peak (TRUE_PEAK_METER) are measured in one chain.
    """
    from voiceguide.ffmpeg import ffmpeg_exe, filter_graph_path, run_ffmpeg_together

    meter = f"{ebur128_filter(blocks=len(spans) > 1)},{TRUE_PEAK_METER}"
    source = f"amovie=filename={filter_graph_path(path)}:dec_threads=1"
    commands: list[list[str]] = []
    for i, (first, last, inside) in enumerate(spans):
        # A stretch is seeked to (amovie keeps the file's timestamps) and ends where the next begins.
        seek, trim = "", ""
        if first or last is not None:
            seek = f":seek_point={first / rate:.6f}" if first else ""
            trim = f"atrim=start={first / rate:.6f}" + (f":end={last / rate:.6f}," if last is not None else ",")
        select = f"aselect='{_inside([(a + first, b + first) for a, b in inside], rate)}'," if inside else ""
        script = folder / f"filter-{i}.txt"  # thousands of windows: a filter script, not an argument
        try:
            script.write_text(f"{source}{seek},{trim}{select}{meter}[out]",
                              encoding="utf-8")
        except OSError as exc:
            raise EncoderError(f"cannot write ffmpeg's filter script in {folder} ({exc.strerror})") from None
        commands.append([ffmpeg_exe(), "-hide_banner", "-nostats", "-nostdin", "-/filter_complex", str(script),
                         "-map", "[out]", "-f", "null", "-"])
    with contextlib.ExitStack() as stack:
        logs = [stack.enter_context(tempfile.TemporaryFile()) for _ in commands]
        codes = run_ffmpeg_together(commands, logs)
        texts = []
        for code, log in zip(codes, logs, strict=True):
            log.seek(0)
            text = log.read().decode(errors="replace")
            if code != 0:
                raise EncoderError(f"ffmpeg failed (exit {code}) measuring {path}: "
                                   + (text.strip().splitlines() or ["no output"])[-1])
            texts.append(text)
    loudness = parse_ebur128(*texts)
    peaks = [_PEAK_LEVEL.findall(text) for text in texts]
    if not all(peaks):
        raise EncoderError(f"could not measure the true peak of {path}: "
                           + (texts[0].strip().splitlines() or ["no output"])[-1])
    return Loudness(loudness.integrated, max(float(found[-1]) for found in peaks))


def _inside(windows: Sequence[tuple[int, int]], rate: int) -> str:
    """An ffmpeg expression true when the frame time ``t`` falls in one of the (sorted) windows: a balanced
    tree of comparisons, so each frame costs a dozen tests rather than one per window."""
    if len(windows) == 1:
        first, last = windows[0]
        return f"between(t,{first / rate:.6f},{last / rate:.6f})"
    middle = len(windows) // 2
    return (f"if(lt(t,{windows[middle][0] / rate:.6f}),{_inside(windows[:middle], rate)},"
            f"{_inside(windows[middle:], rate)})")


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


def recall_trim(folder: Path | None, key: str) -> tuple[Trim, bool] | None:
    """The trim last used for ``key`` and whether its file measured on target, or None."""
    known = recall(folder, "levels", f"trim-{key}")
    if known is None:
        return None
    try:
        data = json.loads(known)
        return Trim(float(data["gain_db"]), float(data["ceiling_dbfs"])), bool(data["verified"])
    except (ValueError, KeyError, TypeError):
        return None


def remember_trim(folder: Path | None, key: str, trim: Trim, verified: bool) -> None:
    """Keep the trim for this session: ``verified`` if its file measured on target (the next render then
    measures nothing), else the best correction so far (the next render measures again)."""
    remember(folder, "levels", f"trim-{key}", json.dumps({"gain_db": trim.gain_db, "ceiling_dbfs": trim.ceiling_dbfs,
                                                          "verified": verified}).encode())
