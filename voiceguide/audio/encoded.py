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
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from voiceguide.audio.limiter import CEILING_DBFS
from voiceguide.audio.loudness import DISCARD, Loudness, ebur128_filter, parse_ebur128
from voiceguide.errors import EncoderError, OptionError
from voiceguide.host import interrupts_held, recall, remember

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
    highest. Renders use one part (and an MP3 is measured while it is written:
    StreamCheck): two halved the time (dense 40 minutes, 3.4 s -> 1.8 s) but
    each ffmpeg is 25-38 MB resident (mostly its static binary, shared, yet
    counted in each), which took a cold render's process tree from under 100 MB
    to 128. Windows without a rate are an OptionError.
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
    from voiceguide.ffmpeg import run_ffmpeg_together

    commands: list[list[str]] = []
    for i, (first, last, inside) in enumerate(spans):
        # A stretch is seeked to (amovie keeps the file's timestamps) and ends where the next begins.
        seek, trim = "", ""
        if first or last is not None:
            seek = f":seek_point={first / rate:.6f}" if first else ""
            trim = f"atrim=start={first / rate:.6f}" + (f":end={last / rate:.6f}," if last is not None else ",")
        windows = [(a + first, b + first) for a, b in inside]
        commands.append(_meter_command(folder / f"filter-{i}.txt", path, windows, rate, len(spans) > 1, seek, trim))
    with contextlib.ExitStack() as stack:
        logs = [stack.enter_context(tempfile.TemporaryFile()) for _ in commands]
        codes = run_ffmpeg_together(commands, logs)
        texts = [_log_text(code, log, f"measuring {path}") for code, log in zip(codes, logs, strict=True)]
    return _combined(texts, path)


def _meter_command(script: Path, source: Path, windows: Sequence[tuple[int, int]], rate: int, blocks: bool,
                   seek: str = "", trim: str = "") -> list[str]:
    """The ffmpeg command that measures ``source`` (an amovie ``seek`` option, an ``atrim`` filter; only the frames
    starting inside ``windows``, if any): loudness, every 400 ms block logged if ``blocks``, and true peak. The
    graph goes into ``script`` (thousands of windows: a filter script, not an argument)."""
    from voiceguide.ffmpeg import ffmpeg_exe, filter_graph_path

    select = f"aselect='{_inside(windows, rate)}'," if windows else ""
    try:
        script.write_text(f"amovie=filename={filter_graph_path(source)}:dec_threads=1{seek},{trim}{select}"
                          f"{ebur128_filter(blocks=blocks)},{TRUE_PEAK_METER},{DISCARD}[out]", encoding="utf-8")
    except OSError as exc:
        raise EncoderError(f"cannot write ffmpeg's filter script in {script.parent} ({exc.strerror})") from None
    return [ffmpeg_exe(), "-hide_banner", "-nostats", "-nostdin", "-/filter_complex", str(script),
            "-map", "[out]", "-f", "null", "-"]


def _log_text(code: int, log: IO[bytes], doing: str) -> str:
    """What a measuring ffmpeg printed (EncoderError with its last line if it failed)."""
    log.seek(0)
    text = log.read().decode(errors="replace")
    if code != 0:
        raise EncoderError(f"ffmpeg failed (exit {code}) {doing}: " + (text.strip().splitlines() or ["no output"])[-1])
    return text


def _combined(texts: Sequence[str], path: Path) -> Loudness:
    """The loudness of a file measured in one or more pieces (``parse_ebur128``) and the highest true peak."""
    loudness = parse_ebur128(*texts)
    peaks = [_PEAK_LEVEL.findall(text) for text in texts]
    if not all(peaks):
        raise EncoderError(f"could not measure the true peak of {path}: "
                           + (texts[0].strip().splitlines() or ["no output"])[-1])
    return Loudness(loudness.integrated, max(float(found[-1]) for found in peaks))


MPEG1_FRAME = 1152  # samples per MPEG-1 Layer III frame: a frame's time stamp is its index times this
MPEG1_RATES = (32000, 44100, 48000)  # the rates whose frames hold MPEG1_FRAME samples
CHECK_PIECES = 8  # the stream check measures a file in about this many pieces (each ffmpeg costs ~30 ms to start)
MIN_PIECE_SECONDS = 30  # ... of at least this much audio with sound
LAST_PIECE_SECONDS = 10  # ... but the pieces shrink towards the end of the file, down to this


class StreamCheck:
    """The file check of an MP3, measured while the file is being written.

    The MP3 writer (voiceguide.export.mp3) hands over each part LAME encoded,
    in order, as it goes into the file. The parts go into pieces of a few
    minutes, each holding the very frames of the file, with a single silent
    frame where the file has a run of them (silence decodes to zeros and
    clears the decoder, so every frame with sound decodes to the same samples
    as in the file), and each piece is measured by ffmpeg once the one before
    it is done, while LAME still encodes the rest: the measuring takes the
    spare time of a busy machine instead of running alone after the encoding,
    and skips the silent frames (half a dense session). Pieces shrink towards
    the end of the file, so little is left to measure once the encoding ends;
    where they are cut depends on the parts alone, never on timing, so the
    same file always measures the same. ``windows`` are measure_file's (sample
    ranges of the file at ``rate``; none: everything), mapped piece by piece.
    Loudness is gated over every piece's 400 ms blocks together, the true
    peak is the highest; ``result`` falls back to measure_file on the whole
    written file if no part was heard (a session encoded in one part). Use it
    as a context manager: leaving it stops any ffmpeg still running.
    """

    def __init__(self, windows: Sequence[tuple[int, int]], rate: int, total: int) -> None:
        if rate not in MPEG1_RATES or total < 0:
            raise OptionError(f"StreamCheck: needs an MPEG-1 rate ({', '.join(map(str, MPEG1_RATES))}) and the file's "
                              f"length in samples (got {rate!r}, {total!r})")
        self.windows = sorted(windows)
        self.rate = rate
        self.total_frames = -(-total // MPEG1_FRAME)
        self.piece_frames = max(MIN_PIECE_SECONDS * rate, total // CHECK_PIECES) // MPEG1_FRAME
        self.last_frames = LAST_PIECE_SECONDS * rate // MPEG1_FRAME
        self._folder: Path | None = None
        self._piece: list[tuple[int, int, int]] = []  # (frame in the piece, frame in the file, frames) per part
        self._piece_file: Any = None
        self._frames = 0  # in the piece being written
        self._file_end = -1  # the file frame after the last part heard
        self._waiting: list[tuple[int, list[tuple[int, int]] | None]] = []  # pieces written, not yet measured
        self._running: tuple[subprocess.Popen[bytes], Any] | None = None
        self._logs: list[str] = []
        self._count = 0
        self.heard = False

    @property
    def pieces(self) -> int:
        """How many pieces the parts heard so far went into (the one being written included)."""
        return self._count + bool(self._piece)

    def __enter__(self) -> StreamCheck:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __call__(self, first_frame: int, frames: int, data: bytes, silent: bytes) -> None:
        """One part as the MP3 writer wrote it (see voiceguide.export.mp3.PartListener)."""
        self.heard = True
        if self._piece_file is None:
            self._piece_file = open(self._workspace() / f"piece-{self._count}.mp3", "wb")  # noqa: SIM115
        if self._piece and first_frame > self._file_end:
            self._piece_file.write(silent)  # a run of silent frames in the file: one clears the decoder alike
            self._frames += 1
        self._piece.append((self._frames, first_frame, frames))
        self._piece_file.write(data)
        self._frames += frames
        self._file_end = first_frame + frames
        # Half of what is left, at most a full piece: the last pieces are short, so is the wait at the end.
        if self._frames >= max(self.last_frames, min(self.piece_frames, (self.total_frames - self._file_end) // 2)):
            self._close_piece()
        self._next()

    def result(self, path: Path) -> Loudness:
        """The written file's loudness and true peak: the pieces measured (the last one now), or, if the writer
        heard no part, ``path`` measured whole."""
        if not self.heard:
            return measure_file(path, self.windows, self.rate)
        if self._piece:
            self._close_piece()
        while self._waiting or self._running is not None:
            self._collect()
            self._next()
        if not self._logs:  # no piece held a window: nothing was said
            return Loudness(-math.inf, -math.inf)
        return _combined(self._logs, path)

    def close(self) -> None:
        """Stop any measurement still running and remove the pieces."""
        if self._running is not None:
            process, log = self._running
            if process.poll() is None:
                process.kill()
            process.wait()
            log.close()
            self._running = None
        if self._piece_file is not None:
            self._piece_file.close()
            self._piece_file = None
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def _workspace(self) -> Path:
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="voiceguide-measure-"))
        return self._folder

    def _close_piece(self) -> None:
        """The piece being written is complete: it waits its turn with the windows inside it, moved to its time."""
        self._piece_file.close()
        self._piece_file = None
        windows: list[tuple[int, int]] | None = None
        if self.windows:
            windows = []
            for at, first, frames in self._piece:  # frame for frame: a window keeps the frames it selects
                low, high = first * MPEG1_FRAME, (first + frames) * MPEG1_FRAME - 1
                shift = (first - at) * MPEG1_FRAME
                windows.extend((max(a, low) - shift, min(b, high) - shift)
                               for a, b in self.windows if a <= high and b >= low)
        if windows != []:  # a piece with no window in it has nothing said: nothing to measure
            self._waiting.append((self._count, windows))
        self._piece, self._frames, self._count = [], 0, self._count + 1

    def _next(self) -> None:
        """Start measuring the next piece waiting, if the one before it is done."""
        if not self._waiting or (self._running is not None and self._running[0].poll() is None):
            return
        self._collect()
        index, windows = self._waiting.pop(0)
        self._start(index, windows)

    def _collect(self) -> None:
        """Collect the measurement running, if any (an ffmpeg failure is an EncoderError with its last line)."""
        if self._running is None:
            return
        process, log = self._running
        code = process.wait()  # interrupted here, it is still ours to kill (close)
        self._running = None
        with log:
            self._logs.append(_log_text(code, log, "measuring the file being written"))

    def _start(self, index: int, windows: list[tuple[int, int]] | None) -> None:
        from voiceguide.ffmpeg import start_ffmpeg

        folder = self._workspace()
        command = _meter_command(folder / f"filter-{index}.txt", folder / f"piece-{index}.mp3", windows or [],
                                 self.rate, blocks=True)
        try:
            log = tempfile.TemporaryFile(dir=folder)  # noqa: SIM115 - closed in _collect or close
        except OSError as exc:
            raise EncoderError(f"cannot write ffmpeg's log in {folder} ({exc.strerror})") from None
        with interrupts_held():  # a Ctrl-C inside Popen would leave the ffmpeg running and unknown to close()
            try:
                process = start_ffmpeg(command, log)
            except BaseException:
                log.close()
                raise
            self._running = (process, log)


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
