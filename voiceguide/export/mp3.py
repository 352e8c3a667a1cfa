"""MP3 encoded in-process with LAME on every core: parts cut at silent frame boundaries, long silences written as
ready-made silent frames, all joined under one LAME Info tag."""

from __future__ import annotations

import io
import os
import struct
import threading
from collections.abc import Iterable, Sequence
from itertools import pairwise
from pathlib import Path
from typing import IO, Any, Protocol

from voiceguide.audio.encoded import LAME_ENCODER_DELAY, MPEG1_FRAME, MPEG1_RATES
from voiceguide.errors import EncoderError
from voiceguide.export.formats import MP3_BITRATES
from voiceguide.export.id3 import id3_tag
from voiceguide.export.stream import PcmSource, SampleCounter
from voiceguide.export.tags import Tags
from voiceguide.plan.timeline import Chapter

LAME_QUALITY = 3  # LAME's own default algorithm quality, as ffmpeg's libmp3lame uses it


FRAME = MPEG1_FRAME  # samples per MPEG-1 Layer III frame
MIN_PART_SECONDS = 60  # parts shorter than this are not worth a thread


class PartListener(Protocol):
    """Hears the file's audio as it is written (the file check measures it while the rest is still being encoded:
    see voiceguide.audio.encoded.StreamCheck).

    A listener with a ``skipped(data, frames)`` method is told of the ready-made silent frames that way instead
    (``frames`` of them, the silent_spans in order): one that knows where they are need not decode them."""

    def __call__(self, data: bytes, silent: bytes) -> None:
        """``data``: the next bytes of the file's audio frames (every frame after the LAME Info frame, LAME's and
        the ready-made silent ones, in file order); ``silent``: a silent frame of the same stream."""


class _Heard:
    """The file being written, every byte also handed to a PartListener."""

    def __init__(self, out: IO[bytes], heard: PartListener, kbps: int, rate: int) -> None:
        self.out, self.heard, self.kbps, self.rate = out, heard, kbps, rate
        self.silent = b""

    def write(self, data: bytes) -> int:
        written = self.out.write(data)
        if data:
            if not self.silent:  # the first bytes written start with a frame header
                self.silent = silent_frame(data[:4], self.kbps, self.rate, 0)
            self.heard(data, self.silent)
        return written

    def write_silent(self, data: bytes, frames: int) -> None:
        """Write ``frames`` ready-made silent frames: to a listener that skips them, as such."""
        skipped = getattr(self.heard, "skipped", None)
        if skipped is None or not self.silent:
            self.write(data)
        else:
            self.out.write(data)
            skipped(data, frames)


def encode_mp3(source: Iterable[bytes] | PcmSource, rate: int, path: Path, tags: Tags, chapters: Sequence[Chapter],
                kbps: int, counter: SampleCounter, jobs: int, channels: int = 1,
                heard: PartListener | None = None) -> None:
    """MP3 with an ID3v2.3 tag (chapters + ordered top-level CTOC) and a LAME Info tag for gapless length.

    A PcmSource is cut at frame boundaries inside its silences (see segments):
    long silences become ready-made silent frames, which LAME need not encode
    (a dense 40-minute session is more than half silence), and the speech
    between them is encoded in parts on every core, then joined in order. Each
    part but the last is encoded one frame short, so LAME's priming and padding
    (zeros) exactly fill that frame: every part starts where the plan says and
    the whole decodes to exactly the planned number of samples. ``heard`` hears
    every byte of audio frames as it is written.
    """
    audio: PcmSource | None = source if hasattr(source, "silences") else None  # type: ignore[assignment]
    parts = segments(audio, rate, jobs, channels) if audio is not None else []
    path.write_bytes(id3_tag(tags, chapters, rate))
    info_length = _info_frame_length(kbps, rate, channels)
    with open(path, "r+b") as out:
        out.seek(0, os.SEEK_END)
        info_at = out.tell()
        out.write(bytes(info_length))  # placeholder, filled in at the end
        sink = _Heard(out, heard, kbps, rate) if heard is not None else out
        frames = -1
        if audio is not None and len(parts) > 1:
            frames = _encode_segments(audio, parts, rate, kbps, sink, counter, jobs, channels)
            content = audio.total
        else:
            stream = audio.chunks() if audio is not None else iter(source)  # type: ignore[arg-type]
            samples = _encode_part(stream, rate, kbps, sink, counter, channels=channels)
            content = audio.total if audio is not None else samples  # what a gapless decoder must return
        end = out.tell()
        out.seek(info_at + info_length)
        first = out.read(4)
        if frames < 0:  # one LAME stream: its frames average the bit rate exactly
            frames = _count_frames(first, end - info_at - info_length, kbps, rate)
        out.seek(info_at)
        out.write(_info_frame(first, kbps, rate, channels, frames, content, end - info_at))


def _new_encoder(rate: int, kbps: int, channels: int = 1) -> Any:
    import lameenc

    encoder = lameenc.Encoder()
    encoder.set_bit_rate(kbps)
    encoder.set_in_sample_rate(rate)
    encoder.set_out_sample_rate(rate)  # else LAME resamples low bit rates (64k stereo -> 24 kHz), breaking the framing
    encoder.set_channels(channels)
    encoder.set_quality(LAME_QUALITY)
    return encoder


class _Stopped(Exception):
    """Another part failed or the render was interrupted: stop encoding this part."""


def _encode_part(chunks: Iterable[bytes], rate: int, kbps: int, out: IO[bytes] | _Heard, counter: SampleCounter,
                 stop: threading.Event | None = None, channels: int = 1) -> int:
    """Encode one stream of PCM into ``out``; return the number of samples (per channel) encoded."""
    encoder = _new_encoder(rate, kbps, channels)
    frame_bytes = 2 * channels
    samples = 0
    pending: list[bytes] = []
    size = 0
    for chunk in chunks:
        if stop is not None and stop.is_set():
            raise _Stopped
        pending.append(chunk)
        size += len(chunk)
        if size >= 1 << 20:  # hand LAME about a megabyte at a time (it releases the GIL while encoding)
            out.write(encoder.encode(b"".join(pending)))
            samples += size // frame_bytes
            counter.add(size // frame_bytes)
            pending, size = [], 0
    if pending:
        out.write(encoder.encode(b"".join(pending)))
        samples += size // frame_bytes
        counter.add(size // frame_bytes)
    out.write(encoder.flush())
    return samples


def _encode_segments(audio: PcmSource, parts: list[tuple[int, int, bool]], rate: int, kbps: int,
                     out: IO[bytes] | _Heard, counter: SampleCounter, jobs: int, channels: int) -> int:
    """Encode the speech parts on ``jobs`` threads and write every part in order, silent ones as ready-made frames;
    return the number of frames written."""
    from concurrent.futures import ThreadPoolExecutor

    stop = threading.Event()
    total = audio.total

    def run(part: tuple[int, int, bool]) -> bytes:
        start, end, silent = part
        if silent:
            return b""
        buffer = io.BytesIO()
        _encode_part(audio.chunks(start, end - (FRAME if end != total else 0)), rate, kbps, buffer, counter, stop,
                     channels)
        return buffer.getvalue()

    frames, header = 0, b""
    pool = ThreadPoolExecutor(max_workers=max(1, jobs))
    try:
        # map() queues every part at once and gives the results back in order; writing them only copies bytes, so
        # it keeps up with the encoding and the parts held are those finished ahead of a slower one before them.
        for (start, end, silent), data in zip(parts, pool.map(run, parts), strict=True):
            if silent:
                count = (end - start) // FRAME
                silence = silent_frames(header, kbps, rate, frames, count)
                if isinstance(out, _Heard):
                    out.write_silent(silence, count)
                else:
                    out.write(silence)
                frames += count
                counter.add(end - start)
                continue
            header = header or data[:4]
            out.write(data)
            frames += _frames_in(data, kbps, rate)
            if end != total:
                counter.add(FRAME)  # the part's final (silent) frame, left to LAME's padding: counted as encoded
        return frames
    except BaseException:
        stop.set()  # Ctrl-C, SIGTERM or a failed part: the other parts stop at their next chunk
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


MIN_SILENT_SECONDS = 1.0  # a silence this long (past the margins around sound) is written as ready-made frames
# Silence kept on each side of a cut (and of ready-made silent frames), so nothing audible is near a joint. Decoded,
# LAME's output of a line reaches about 20 ms past its last sample and its pre-echo about 10 ms before its first:
# a quarter of a second is ten times that. (It was a second before a cut and half a second after: LAME encoded
# 12% more of a dense 40-minute session's frames.)
CUT_MARGIN_SECONDS = 0.25


def segments(audio: PcmSource, rate: int, jobs: int, channels: int = 1) -> list[tuple[int, int, bool]]:
    """The session as consecutive parts (start, end, silent), every boundary a frame boundary inside a silence.

    Silent parts lie in silences at least MIN_SILENT_SECONDS long, CUT_MARGIN_SECONDS
    after the last sound and before the next, as every cut
    (nothing audible is near a joint); they are written as silent frames (mono
    MPEG-1 only). Where that leaves fewer parts than ``jobs``, the speech is cut
    further (split_points), so every core has work.
    """
    total = audio.total
    silent = silent_spans(audio, rate, channels)
    bounds = {0, total, *(edge for span in silent for edge in span)}
    if len(silent) + 1 < jobs:
        for cut in split_points(audio, rate, jobs):
            # not inside a silent part, nor so near a boundary that a part would be under two frames
            if not any(low < cut < high for low, high in silent) and all(abs(cut - b) >= 2 * FRAME for b in bounds):
                bounds.add(cut)
    spans = set(silent)
    return [(a, b, (a, b) in spans) for a, b in pairwise(sorted(bounds))]


def silent_spans(audio: PcmSource, rate: int, channels: int = 1) -> list[tuple[int, int]]:
    """The sample ranges an MP3 of ``audio`` holds as ready-made silent frames (see segments), in order."""
    if channels != 1 or rate not in MPEG1_RATES:
        return []
    return [(low, high) for low, high in _cut_ranges(audio, rate) if high - low >= MIN_SILENT_SECONDS * rate]


def silent_frame(header: bytes, kbps: int, rate: int, index: int) -> bytes:
    """Frame ``index`` of a CBR stream, silent: ``header`` (a mono MPEG-1 Layer III frame's) with the padding bit
    this frame needs to keep the stream at exactly ``kbps``, side information all zero (no main data, nothing
    borrowed from earlier frames, every spectral value zero) and zeros to the frame's length."""
    size = 144000 * kbps
    padded = _padded(index, size, rate)
    head = bytearray(header[:4])
    head[2] = (head[2] & ~0x02) | (0x02 if padded else 0)
    return bytes(head) + bytes(size // rate + padded - 4)


def silent_frames(header: bytes, kbps: int, rate: int, first: int, count: int) -> bytes:
    """Frames ``first`` to ``first + count - 1`` of the stream, silent: what ``silent_frame`` makes of each, put
    together from the two frames it can make (with the padding bit and without) instead of one by one (a dense
    40-minute session writes some 55,000 of them, while the encoding threads want the interpreter)."""
    size = 144000 * kbps
    plain = silent_frame(header, kbps, rate, 0)  # frame 0 is never padded
    padded = bytes([*plain[:2], plain[2] | 0x02, *plain[3:], 0])  # the padding bit set, and the byte it adds
    return b"".join(padded if _padded(k, size, rate) else plain for k in range(first, first + count))


def _padded(index: int, size: int, rate: int) -> bool:
    """Whether CBR frame ``index`` (frames of ``size / rate`` bytes, ``size`` = 144000 * kbps) carries the padding
    byte: those that do keep the stream at exactly its bit rate."""
    return (index + 1) * size // rate - index * size // rate > size // rate


def _frames_in(data: bytes, kbps: int, rate: int) -> int:
    """How many CBR frames ``data`` (whole frames, as LAME wrote them) holds, walked header by header."""
    size, at, count = 144000 * kbps // rate, 0, 0
    while at + 4 <= len(data):
        if data[at] != 0xFF or data[at + 1] & 0xE0 != 0xE0:
            raise EncoderError(f"LAME wrote something that is not an MP3 frame at byte {at} of a part")
        at += size + (data[at + 2] >> 1 & 1)
        count += 1
    return count


def split_points(audio: PcmSource, rate: int, jobs: int) -> list[int]:
    """Where to cut the session into ``jobs`` parts: frame boundaries inside long silences.

    A cut at sample c needs the frame before it to be silent (it is replaced by
    LAME's zero priming and padding) and some silence around it, so nothing
    audible is near a joint.
    """
    total = audio.total
    parts = min(jobs, total // (MIN_PART_SECONDS * rate))
    if parts < 2:
        return []
    candidates = _cut_ranges(audio, rate)
    cuts: list[int] = []
    for k in range(1, parts):
        target = total * k // parts // FRAME * FRAME  # cuts must fall on frame boundaries
        best = None
        for low, high in candidates:
            point = min(max(target, low), high)
            if best is None or abs(point - target) < abs(best - target):
                best = point
        if best is not None and (not cuts or best > cuts[-1]) and best - (cuts[-1] if cuts else 0) >= FRAME * 2:
            cuts.append(best)
    return cuts


def _cut_ranges(audio: PcmSource, rate: int) -> list[tuple[int, int]]:
    """Frame-boundary ranges (first, last) where the session may be cut: inside a silence, with CUT_MARGIN_SECONDS
    of it before and after."""
    total = audio.total
    before = after = round(CUT_MARGIN_SECONDS * rate)  # silence wanted before and after a cut
    ranges: list[tuple[int, int]] = []
    for start, end in audio.silences():
        low = -(-(start + before) // FRAME) * FRAME  # first frame boundary with enough silence before it
        high = (end - after) // FRAME * FRAME
        if low <= high and low > 0 and high < total:
            ranges.append((low, high))
    return ranges


def _count_frames(header: bytes, audio_bytes: int, kbps: int, rate: int) -> int:
    """Frames in a CBR stream: LAME pads frames so they average exactly 144000 * kbps / rate bytes."""
    if len(header) < 4 or header[0] != 0xFF:
        return 0
    return round(audio_bytes * rate / (144 * kbps * 1000))


def _info_frame_length(kbps: int, rate: int, channels: int) -> int:
    needed = 4 + (17 if channels == 1 else 32) + 120 + 36
    return next(144000 * b // rate for b in MP3_BITRATES if b >= kbps and 144000 * b // rate >= needed)


def _info_frame(first_header: bytes, kbps: int, rate: int, channels: int, frames: int, samples: int,
                stream_bytes: int) -> bytes:
    """A LAME 'Info' frame: frame count, byte count, seek table, encoder delay and padding (for gapless players)."""
    length = _info_frame_length(kbps, rate, channels)
    bitrate = next(b for b in MP3_BITRATES if 144000 * b // rate == length)
    header = bytearray(first_header[:4])
    header[2] = (MP3_BITRATES.index(bitrate) + 1) << 4 | (header[2] & 0x0C)  # bitrate index, same rate, no padding
    frame = bytearray(length)
    frame[:4] = header
    at = 4 + (17 if channels == 1 else 32)
    toc = bytes(min(255, i * 256 // 100) for i in range(100))
    xing = b"Info" + struct.pack(">III", 0x0F, frames, stream_bytes) + toc + struct.pack(">I", 0)
    padding = max(0, frames * 1152 - samples - LAME_ENCODER_DELAY)
    lame = b"".join([
        b"LAME3.100",
        bytes([0x01, 0]),  # tag revision 0 / CBR; lowpass unknown
        bytes(8),  # peak amplitude and both replay gains: not measured here
        bytes([0, min(255, kbps)]),  # encoding flags; the (CBR) bitrate
        ((LAME_ENCODER_DELAY << 12) | min(padding, 4095)).to_bytes(3, "big"),  # what gapless decoders trim
        bytes(4),  # misc, mp3 gain, preset
        struct.pack(">I", stream_bytes),  # music length: the Info frame and every audio frame
        bytes(2),  # music CRC: not computed (no decoder checks it)
    ])
    frame[at : at + len(xing)] = xing
    frame[at + len(xing) : at + len(xing) + len(lame)] = lame
    crc_at = at + len(xing) + len(lame)
    frame[crc_at : crc_at + 2] = _crc16(bytes(frame[:crc_at])).to_bytes(2, "big")
    return bytes(frame)


def _crc16(data: bytes) -> int:
    """CRC-16/ARC, the checksum the LAME tag uses."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc
