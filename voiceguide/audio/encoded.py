"""What an encoder does to loudness and peaks, measured on the file as written, and corrected.

Lossy encoders move both: LAME plays about 0.4 dB quieter, AAC, Vorbis and
Opus overshoot true peak on sharp onsets. Each format starts from a measured
allowance (extra gain, a lower sample-peak ceiling); then the written file is
decoded and measured (ebur128; true peak oversampled 4x), and if it misses the target
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
    to 128. ``rate`` also sets the true peak's oversampling (true_peak_meter: four times it; 192 kHz if it is
    not given). Windows without a rate are an OptionError.
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


# True peak: the decoded samples oversampled four times, as BS.1770-4 (Annex 2) specifies and libebur128 does
# at any rate under 96 kHz: 176.4 kHz for a 44.1 kHz file (an exact ratio, 9% cheaper than 192 kHz: 0.17 of the
# 1.9 CPU-s a dense 40-minute MP3's check takes), 192 kHz at 48 kHz and for a file whose rate is not given.
# A 16-tap interpolation filter in single precision instead of the 32-tap double-precision one ebur128's own
# meter uses (which made the peak 0.8 of the file check's 2.4 s at 40 minutes): the same peak to the hundredth
# of a dB on our files.
TRUE_PEAK_RATE = 192000  # where the file's rate is not known


def true_peak_meter(rate: int = 0) -> str:
    """The filter chain that reads the true peak of samples at ``rate`` (0: not known) as astats' Peak level:
    oversampled 4 times under 96 kHz, twice under 192 kHz, else not at all (libebur128's rule)."""
    oversampled = rate * (4 if rate < 96000 else 2 if rate < 192000 else 1) if rate > 0 else TRUE_PEAK_RATE
    return (f"aformat=sample_fmts=flt,aresample={oversampled}:filter_size=16,"
            "astats=measure_overall=Peak_level:measure_perchannel=none")


_PEAK_LEVEL = re.compile(r"Peak level dB:\s*(-?[\d.]+|-?inf)")


def _measure_spans(path: Path, spans: list[tuple[int, int | None, list[tuple[int, int]]]], rate: int,
                   folder: Path) -> Loudness:
    """Measure each stretch's windows in its own ffmpeg process, all at once, and combine them.

    The file is decoded inside the filter graph (``amovie``; see verify.probe for why: ffmpeg's thread
    hand-offs per frame cost more than the decoding), then loudness (ebur128, every 400 ms block logged when
    there are several stretches) and true peak (true_peak_meter) are measured in one chain.
    """
    from voiceguide.ffmpeg import run_ffmpeg_together

    commands: list[list[str]] = []
    for i, (first, last, inside) in enumerate(spans):
        # A stretch is seeked to (amovie keeps the file's timestamps) and ends where the next begins.
        options, trim = "", ""
        if first or last is not None:
            options = f":seek_point={first / rate:.6f}" if first else ""
            trim = f"atrim=start={first / rate:.6f}" + (f":end={last / rate:.6f}," if last is not None else ",")
        windows = [(a + first, b + first) for a, b in inside]
        commands.append(_meter_command(folder / f"filter-{i}.txt", path, windows, rate, len(spans) > 1, options, trim))
    with contextlib.ExitStack() as stack:
        logs = [stack.enter_context(tempfile.TemporaryFile()) for _ in commands]
        codes = run_ffmpeg_together(commands, logs)
        texts = [_log_text(code, log, f"measuring {path}") for code, log in zip(codes, logs, strict=True)]
    return _combined(texts, path)


def _meter_command(script: Path, source: Path, windows: Sequence[tuple[int, int]], rate: int, blocks: bool,
                   options: str = "", trim: str = "") -> list[str]:
    """The ffmpeg command that measures ``source`` (more amovie ``options``, each after a colon; an ``atrim``
    filter, with its comma; only the frames starting inside ``windows``, if any): loudness, every 400 ms block
    logged if ``blocks``, and true peak. The graph goes into ``script`` (thousands of windows: a filter script,
    not an argument)."""
    from voiceguide.ffmpeg import ffmpeg_exe, filter_graph_path

    select = f"aselect='{_inside(windows, rate)}'," if windows else ""
    try:
        script.write_text(f"amovie=filename={filter_graph_path(source)}:dec_threads=1{options},{trim}{select}"
                          f"{ebur128_filter(blocks=blocks)},{true_peak_meter(rate)},{DISCARD}[out]", encoding="utf-8")
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


MPEG1_RATES = (32000, 44100, 48000)  # MPEG-1 Layer III: 1152-sample frames (the MP3 writer's silent frames)
MPEG1_FRAME = 1152  # samples per MPEG-1 Layer III frame (the writer's FRAME; StreamCheck's silent spans)
LAME_ENCODER_DELAY = 576  # samples LAME puts before the audio; decoders skip it when the LAME tag says so
MP3_DECODER_DELAY = 529  # ... and ffmpeg's decoder adds its own (528 + 1), as every gapless MP3 decoder does
FOLLOW_TIMEOUT_S = 120  # the stream check's ffmpeg gives up after this long with nothing new to read
END_FRAMES = 8  # silent frames after the last one: ffmpeg decodes a frame only once it has read a few beyond it


class StreamCheck:
    """The file check of an MP3, measured while the file is being written.

    One ffmpeg, started as the check is entered (before the encoding's buffers
    grow), follows a copy of the file's audio frames as the MP3 writer writes
    them (voiceguide.export.mp3.PartListener) and measures them as measure_file
    measures the finished file: the same frames decoded, the samples a gapless
    decoder drops left out, the same ``windows`` (sample ranges of the file at
    ``rate``; none: everything) and the same meters, so it reads what
    measure_file reads, to the last digit, while the encoder is still at work.
    The ready-made silent frames of ``silent`` (mp3.silent_spans, outside every
    window) are left out of the copy, their times taken off the windows: the
    frames measured decode the same without them (more than half of a dense session's).
    The measuring takes the spare time of a busy machine instead of running
    alone after the encoding. One process for the whole file, because starting
    one per piece from a 60 MB render put a second copy of the render in its
    process tree for a moment each time (vfork, until exec). If the ffmpeg ended
    early (nothing new to read for FOLLOW_TIMEOUT_S: a stalled encoder) or no
    audio was heard, ``result`` measures the written file instead. Use it as a
    context manager: leaving it stops the ffmpeg and removes the copy.
    """

    def __init__(self, windows: Sequence[tuple[int, int]], rate: int, total: int,
                 silent: Sequence[tuple[int, int]] = ()) -> None:
        if rate not in MPEG1_RATES or isinstance(total, bool) or not isinstance(total, int) or total < 0:
            raise OptionError(f"StreamCheck: needs an MPEG-1 rate ({', '.join(map(str, MPEG1_RATES))}) and the file's "
                              f"length in samples (got {rate!r}, {total!r})")
        self.windows = sorted(windows)
        self.rate = rate
        self.total = total
        self.heard = False
        # The ready-made silent frames the writer will report (mp3.silent_spans), left out of the copy: more than
        # half of a dense session's frames. Only where windows are measured and none reaches into them (then the
        # frames measured decode the same without them: the decoder's state after a LAME part, fed a quarter of a
        # second of digital silence, is all zeros, as after the silent frames).
        spans: list[tuple[int, int]] | None
        try:
            spans = sorted((a, b) for a, b in silent)
        except (TypeError, ValueError):
            spans = None
        if spans is None or not all(type(a) is int and type(b) is int for a, b in spans):
            raise OptionError(f"StreamCheck: silent must be (start, end) pairs of sample numbers (got {silent!r:.80})")
        aligned = all(a % MPEG1_FRAME == 0 and b % MPEG1_FRAME == 0 and a < b for a, b in spans)
        apart = not any(a < high and low < b for a, b in spans for low, high in self.windows)
        self._skips = spans if self.windows and aligned and apart else []
        self._skipped = 0  # spans reported so far
        self._lost = False  # the writer reported other silent frames than expected: the copy's times are wrong
        self._folder: Path | None = None
        self._copy: Any = None  # the audio frames heard so far, which the ffmpeg follows
        self._running: tuple[subprocess.Popen[bytes], Any] | None = None
        self._silent = b""

    def __enter__(self) -> StreamCheck:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Start the ffmpeg that follows the copy (done on entering; the first part heard does it otherwise)."""
        if self._folder is not None:
            return  # started already (and perhaps measured: then it only keeps the copy until close)
        from voiceguide.ffmpeg import start_ffmpeg

        self._folder = Path(tempfile.mkdtemp(prefix="voiceguide-measure-"))
        copy = self._folder / "stream.mp3"
        try:
            self._copy = open(copy, "wb", buffering=0)  # noqa: SIM115 - closed in result or close
            log = tempfile.TemporaryFile(dir=self._folder)  # noqa: SIM115 - closed in result or close
        except OSError as exc:
            raise EncoderError(f"cannot write the file check's copy in {self._folder} ({exc.strerror})") from None
        # The copy has no Info frame: its frames keep their time stamps (as amovie gives them for the file) and the
        # samples a gapless decoder drops are trimmed off both ends here. The file protocol follows the copy as it
        # grows; END_FRAMES after the last frame let the decoder pass the end, where atrim ends the measurement.
        skip = LAME_ENCODER_DELAY + MP3_DECODER_DELAY
        follow = f":format_name=mp3:format_opts='follow=1\\:rw_timeout={FOLLOW_TIMEOUT_S * 1_000_000}'"
        left_out = sum(b - a for a, b in self._skips)
        trim = f"atrim=start_sample={skip}:end_sample={skip + self.total - left_out},"
        windows = []
        for low, high in self.windows:
            shift = self._before(low)  # the same for both ends: no window reaches into a span left out
            windows.append((low - shift, high - shift))
        with interrupts_held():  # a Ctrl-C inside Popen would leave the ffmpeg running and unknown to close()
            try:
                command = _meter_command(self._folder / "filter.txt", copy, windows, self.rate, False, follow, trim)
                process = start_ffmpeg(command, log)
            except BaseException:
                log.close()
                raise
            self._running = (process, log)

    def _before(self, sample: int) -> int:
        """Samples of the spans left out of the copy before ``sample`` (windows never reach into one)."""
        return sum(b - a for a, b in self._skips if b <= sample)

    def __call__(self, data: bytes, silent: bytes) -> None:
        """The next bytes of the file's audio frames (see voiceguide.export.mp3.PartListener)."""
        self.start()
        self.heard = True
        self._silent = silent
        self._copy.write(data)

    def skipped(self, data: bytes, frames: int) -> None:
        """Ready-made silent frames written to the file (``frames`` of them): left out of the copy if they are the
        next of the spans expected, else copied, and the file itself is measured in the end."""
        self.start()
        if not self._skips:  # measuring everything, or nothing planned: the frames are copied like any
            self._copy.write(data)
            return
        expected = self._skips[self._skipped] if self._skipped < len(self._skips) else None
        if expected is not None and not self._lost and (expected[1] - expected[0]) // MPEG1_FRAME == frames:
            self._skipped += 1
            return
        self._lost = True
        self._copy.write(data)

    def result(self, path: Path) -> Loudness:
        """The written file's loudness and true peak, as the ffmpeg following it measured them; ``path`` measured
        whole if no audio was heard or the ffmpeg ended before it was all written."""
        if not self.heard or self._running is None or self._lost or self._skipped != len(self._skips):
            return measure_file(path, self.windows, self.rate)
        process, log = self._running
        # Running, it cannot have passed the end of the file yet (its last frames wait for END_FRAMES); ended, it
        # failed or gave up waiting. (It could give up between these two lines only after the encoder had stalled
        # for FOLLOW_TIMEOUT_S just before the end.)
        gave_up = process.poll() is not None
        if not gave_up:
            self._copy.write(self._silent * END_FRAMES)
        code = process.wait()  # interrupted here, it is still ours to kill (close)
        self._running = None
        with log:
            text = _log_text(code, log, "measuring the file being written")
        return measure_file(path, self.windows, self.rate) if gave_up else _combined([text], path)

    def close(self) -> None:
        """Stop the ffmpeg if it still runs and remove the copy."""
        if self._running is not None:
            process, log = self._running
            if process.poll() is None:
                process.kill()
            process.wait()
            log.close()
            self._running = None
        if self._copy is not None:
            self._copy.close()
            self._copy = None
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None


def _inside(windows: Sequence[tuple[int, int]], rate: int) -> str:
    """An ffmpeg expression true when the frame time ``t`` falls in one of the (sorted) windows: a balanced
    tree of comparisons, so each frame costs a dozen tests rather than one per window.

    A frame starts on a whole sample; each bound is half a sample outside its window, so a frame starting exactly
    on one is in, whatever the rounding of the bound (to the microsecond) or of ``t``: the same frames are chosen
    whether the times count from the file's start or from elsewhere (StreamCheck's copy without its silences)."""
    if len(windows) == 1:
        first, last = windows[0]
        return f"between(t,{(first - 0.5) / rate:.6f},{(last + 0.5) / rate:.6f})"
    middle = len(windows) // 2
    return (f"if(lt(t,{(windows[middle][0] - 0.5) / rate:.6f}),{_inside(windows[:middle], rate)},"
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
