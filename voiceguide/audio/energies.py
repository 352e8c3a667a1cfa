"""A session's integrated loudness composed from its clips, without measuring the session itself.

A voice-only session is its distinct clips, each said one or more times,
between digital silences. BS.1770 loudness is the energy of K-weighted audio
in 400 ms blocks (every 100 ms), gated. K-weighting is a fixed linear filter,
so each distinct clip is K-weighted once (one ffmpeg pass over them all, with
ebur128's own filter coefficients, ClipMeter: during a cold render, beside the
processing of each new line) and its energy kept per 10 ms sub-block;
the session's blocks are then summed from the sub-blocks of the clips where
the plan places them. Levelling tries several gains this way (limiting the
loudest clips at each) in a fraction of the time one ffmpeg pass over the
session took. The written file is still measured by ebur128 (audio.encoded);
the BS.1770 gating and the guard against subnormal numbers are shared with it here.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import math
import operator
import queue
import subprocess
import tempfile
import threading
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, cast

from voiceguide.audio.limiter import ClipBlocks
from voiceguide.errors import EncoderError
from voiceguide.host import load_audioop
from voiceguide.plan.blocks import Say
from voiceguide.plan.timeline import Plan
from voiceguide.plan.tones import Tone
from voiceguide.speech.engine import Clip

SUB_BLOCKS_PER_SECOND = 100  # energies are kept per 10 ms: a 400 ms block is 40 of them, its 100 ms hop 10
BLOCK_SUBS, HOP_SUBS = 40, 10
RING_SECONDS = 0.1  # after each clip, silence in which the filters ring out (counted with the clip)
_SCALE = 0.25  # K-weighting adds up to ~4 dB at high frequencies: the 32-bit output is turned down to never clip
# Before ebur128, the samples go to 32-bit integers with dither (noise at about -187 dBFS, far below the
# -70 LUFS gate and any peak): ebur128's filters run in double precision, and after each line, fed exact
# zeros, their state decays into subnormal numbers, which the CPU handles some 100 times slower. A session
# that is mostly silence took 16 s to measure at 40 minutes, 4.6 s with the dither. (Measured: the same
# summary, to ebur128's printed 0.1 LU and 0.1 dB, with and without; the dither's noise is deterministic.)
DENORMAL_GUARD = "aformat=sample_fmts=flt,aresample=osf=s32:dither_method=triangular"
# The same before K-weighting here: between clips the filters are fed zeros.
_GUARD = f"{DENORMAL_GUARD},aformat=sample_fmts=dbl"


def k_weighting(rate: int) -> str:
    """BS.1770's K-weighting at ``rate`` as two ffmpeg biquads, with the coefficients ebur128 (and libebur128)
    derive for any rate: a high shelf (+4 dB above ~1.7 kHz), then a high-pass (the RLB curve, ~38 Hz)."""
    k = math.tan(math.pi * 1681.974450955533 / rate)
    vh, q = 10 ** (3.999843853973347 / 20), 0.7071752369554196
    vb = vh ** 0.4996667741545416
    a0 = 1 + k / q + k * k
    shelf = ((vh + vb * k / q + k * k) / a0, 2 * (k * k - vh) / a0, (vh - vb * k / q + k * k) / a0,
             2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0)
    k, q = math.tan(math.pi * 38.13547087602444 / rate), 0.5003270373238773
    a0 = 1 + k / q + k * k
    high_pass = (1.0, -2.0, 1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0)
    return ",".join(f"biquad=b0={b0!r}:b1={b1!r}:b2={b2!r}:a0=1:a1={a1!r}:a2={a2!r}"
                    for b0, b1, b2, a1, a2 in (shelf, high_pass))


def analysis_order(texts: Iterable[Say]) -> list[Say]:
    """The order clips go through one K-weighting stream: the words, sorted, then the tones, by name.

    A clip's energies depend, in the last digits, on what went through the filters before it (their state
    after the ring-out, the guard's dither): one order for every way in, so a session's clips measured while
    they are synthesized (``ClipMeter``) give exactly what measuring them afterwards gives."""
    distinct = dict.fromkeys(texts)
    return sorted(distinct, key=lambda text: (isinstance(text, Tone), text.value if isinstance(text, Tone) else text))


@dataclass(frozen=True)
class Analysis:
    """What levelling needs of every clip: its K-weighted energy per sub-block (``energies``) and its limiter
    blocks (``blocks``)."""

    energies: dict[Say, array[float]]
    blocks: dict[Say, ClipBlocks]


class ClipMeter:
    """Clips K-weighted one after another by one ffmpeg, as they are added: each clip's energy (sum of squares,
    full scale 1.0) per 10 ms sub-block, the ring-out after it included, and its limiter blocks (the clip is
    read once for both).

    ffmpeg starts with the first clip and runs beside the caller (a thread reads what it writes), so the
    measuring overlaps whatever the caller does between clips (processing the next one). ``finish`` returns the
    Analysis; ``close`` (also on leaving a ``with``) stops the ffmpeg if it still runs. Clips must come in
    ``analysis_order`` for the energies to be the same to the last digit however they are measured.
    """

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._ring = bytes(2 * round(RING_SECONDS * rate))
        self._energies: dict[Say, array[float]] = {}
        self._clip_blocks: dict[Say, ClipBlocks] = {}
        self._added: set[Say] = set()
        self._pending: queue.SimpleQueue[tuple[Say, int] | None] = queue.SimpleQueue()
        self._failed: list[BaseException] = []
        self._process: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._log: Any = None

    def __enter__(self) -> ClipMeter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, text: Say, clip: Clip) -> None:
        """K-weight ``clip`` (as ``text``) after the clips added before it."""
        if text in self._added:
            raise EncoderError(f"ClipMeter: {str(text)[:60]!r} was added twice")
        self._added.add(text)
        self._clip_blocks[text] = ClipBlocks(clip.pcm, self.rate)
        process = self._process or self._start()
        self._pending.put((text, clip.samples + len(self._ring) // 2))
        try:
            process.stdin.write(clip.pcm)  # type: ignore[union-attr]
            process.stdin.write(self._ring)  # type: ignore[union-attr]
        except BrokenPipeError:
            self._fail()  # ffmpeg stopped: its log says why

    def finish(self) -> Analysis:
        """Every clip added, measured (EncoderError if ffmpeg failed)."""
        if self._process is None:
            return Analysis({}, self._clip_blocks)
        process, reader = self._process, self._reader
        assert reader is not None
        self._pending.put(None)
        with contextlib.suppress(BrokenPipeError):
            process.stdin.close()  # type: ignore[union-attr]
        reader.join()
        code = process.wait()
        if self._failed or code != 0:
            self._fail()
        self.close()
        return Analysis(self._energies, self._clip_blocks)

    def close(self) -> None:
        """Stop the ffmpeg if it still runs (an error or an interrupt in the caller)."""
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.kill()
            with contextlib.suppress(OSError):
                process.stdin.close()  # type: ignore[union-attr]
            if self._reader is not None:
                self._pending.put(None)
                self._reader.join()
            process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def _start(self) -> subprocess.Popen[bytes]:
        from voiceguide.ffmpeg import ffmpeg_exe, widen_pipe
        from voiceguide.host import interrupts_held

        command = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-f", "s16le", "-ar",
                   str(self.rate), "-ac", "1", "-i", "pipe:0", "-af",
                   f"{_GUARD},{k_weighting(self.rate)},volume={_SCALE}", "-f", "s32le", "-c:a", "pcm_s32le", "pipe:1"]
        # A file, not a pipe: ffmpeg can never block on its messages. Kept open until close (no context manager).
        try:
            self._log = tempfile.TemporaryFile()  # noqa: SIM115
        except OSError as exc:
            raise EncoderError(f"cannot write ffmpeg's log for K-weighting the speech in {tempfile.gettempdir()} "
                               f"({exc.strerror})") from None
        with interrupts_held():  # a Ctrl-C inside Popen would leave the ffmpeg running and unknown to close()
            try:
                self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                                 stderr=self._log, bufsize=0)
            except OSError as exc:
                raise EncoderError(f"cannot run ffmpeg ({exc.strerror}): {command[0]}") from None
            # A line is written whole (a few hundred KB) and K-weighted at ffmpeg's pace: with the pipes' usual
            # 64 KB the caller waited for ffmpeg on every line, 0.17 s of a cold 40-minute render, instead of
            # processing the next one meanwhile.
            widen_pipe(self._process.stdin)
            widen_pipe(self._process.stdout)
            self._reader = threading.Thread(target=self._read_all, args=(self._process,), daemon=True)
            self._reader.start()
        return self._process

    def _read_all(self, process: subprocess.Popen[bytes]) -> None:
        """On a thread: each clip's K-weighted samples, in the order added, into energies per sub-block."""
        sub = self.rate // SUB_BLOCKS_PER_SECOND
        try:
            while (item := self._pending.get()) is not None:
                text, length = item
                self._energies[text] = _sub_energies(_read(process.stdout, 4 * length), 4, sub, _SCALE)
        except BaseException as exc:  # handed to finish (an early end: ffmpeg failed, and its log says why)
            self._failed.append(exc)
            process.kill()

    def _fail(self) -> NoReturn:
        """EncoderError with ffmpeg's last message; the meter is closed."""
        process, log = self._process, self._log
        code = None
        if process is not None:
            if process.poll() is None:
                process.kill()
            code = process.wait()
        message: list[str] = []
        if log is not None:
            log.seek(0)
            message = log.read().decode(errors="replace").strip().splitlines()
        self.close()
        detail = message[-1] if message else f"exit {code}" if code else "no output"
        raise EncoderError(f"ffmpeg failed K-weighting the speech: {detail}")


def _read(stream: object, count: int) -> bytes:
    """Exactly ``count`` bytes from a raw pipe (EncoderError if it ends first)."""
    buffer = bytearray(count)
    view, done = memoryview(buffer), 0
    while done < count:
        got = cast(io.RawIOBase, stream).readinto(view[done:])
        if not got:
            raise EncoderError("the K-weighted speech ended early")
        done += got
    return bytes(buffer)


def _sub_energies(pcm: bytes, width: int, sub: int, scale: float = 1.0) -> array[float]:
    """Sum of squares per ``sub`` samples of ``pcm`` (``width`` bytes a sample), at full scale 1.0 before ``scale``."""
    audioop = load_audioop()
    full = float(1 << (8 * width - 1)) * scale
    step = sub * width
    out = array("d")
    for start in range(0, len(pcm), step):
        piece = pcm[start : start + step]
        rms = audioop.rms(piece, width) / full
        out.append(rms * rms * (len(piece) // width))
    return out


def session_loudness(plan: Plan, energies: Mapping[Say, Sequence[float]], gain_db: float = 0.0,
                     scales: Mapping[Say, Sequence[float]] | None = None) -> float:
    """The session's integrated loudness (LUFS, gated as BS.1770-4 and ebur128) with every line where the plan puts
    it at ``gain_db``: its sub-block energies and, where given, times ``scales[text]`` sub-block by sub-block (what
    the limiter leaves of them). A line the plan cuts short is cut short here too (its ring-out kept).

    (Sums over whole stretches go through C-level iterators: this runs once per gain levelling tries.)"""
    sub = plan.rate // SUB_BLOCKS_PER_SECOND
    grid = array("d", bytes(8 * (plan.total // sub + len_ring(plan.rate) + 2)))
    scaled: dict[Say, list[float]] = {}
    for event in plan.speech():
        text = event.text or ""
        found = scaled.get(text)
        if found is None:
            found = scaled[text] = list(limited(energies[text], scales.get(text, ()) if scales else ()))
        first, part = divmod(event.start, sub)
        share = part / sub  # a clip's sub-block straddles two of the session's: shared in proportion
        count = min(len(found), -(-(event.end - event.start) // sub) + len_ring(plan.rate))
        for offset, weight in ((0, 1 - share), (1, share)):
            start = first + offset
            grid[start : start + count] = array("d", map(operator.add, grid[start : start + count],
                                                         map(operator.mul, found[:count], itertools.repeat(weight))))
    return _gated(grid, BLOCK_SUBS * sub) + gain_db  # gating is relative: a gain moves every block alike


def limited(energy: Sequence[float], scale: Sequence[float]) -> Iterator[float]:
    """A clip's sub-block energies times what the limiter keeps of each (``scale``; 1.0 past its end)."""
    return map(operator.mul, energy, itertools.chain(scale, itertools.repeat(1.0)))


def len_ring(rate: int) -> int:
    """Sub-blocks of ring-out kept after each clip."""
    return -(-round(RING_SECONDS * rate) // (rate // SUB_BLOCKS_PER_SECOND))


def _gated(grid: Sequence[float], block_samples: int) -> float:
    """Integrated loudness of 400 ms blocks every 100 ms summed from sub-block energies, gated (BS.1770-4)."""
    running = list(itertools.accumulate(grid, initial=0.0))  # a block is the difference of two running sums
    blocks = map(operator.sub, running[BLOCK_SUBS::HOP_SUBS], running[::HOP_SUBS])
    return gated_power(list(map(operator.mul, blocks, itertools.repeat(1 / block_samples))))


ABSOLUTE_GATE = -70.0  # LUFS (BS.1770-4)
RELATIVE_GATE = -10.0  # LU below the loudness of the blocks over the absolute gate


def gated_loudness(blocks: Sequence[float]) -> float:
    """Integrated loudness (LUFS) from 400 ms block loudnesses (LUFS), gated as BS.1770-4 and ebur128 do."""
    return gated_power([10 ** ((block + 0.691) / 10) for block in blocks])


def gated_power(blocks: Sequence[float]) -> float:
    """Integrated loudness (LUFS) from 400 ms blocks' mean square (K-weighted, full scale 1.0), gated as BS.1770-4
    and ebur128 do: blocks under the absolute gate left out, then those more than 10 LU under the rest's mean."""
    absolute = 10 ** ((ABSOLUTE_GATE + 0.691) / 10)
    loud = list(filter(absolute.__le__, blocks))
    if not loud:
        return -math.inf
    relative = sum(loud) / len(loud) * 10 ** (RELATIVE_GATE / 10)
    kept = list(filter(relative.__le__, loud))
    return -0.691 + 10 * math.log10(sum(kept) / len(kept))
