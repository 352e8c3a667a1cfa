"""MP3 encoded in-process with LAME on every core: parts cut at silent frame boundaries, joined under one LAME Info tag."""

from __future__ import annotations

import os
import shutil
import struct
import threading
from collections.abc import Iterable, Iterator, Sequence
from itertools import pairwise
from pathlib import Path
from typing import IO, Any

from voiceguide.export.formats import MP3_BITRATES
from voiceguide.export.id3 import id3_tag
from voiceguide.export.stream import PcmSource, SampleCounter
from voiceguide.export.tags import Tags
from voiceguide.plan.timeline import Chapter

LAME_ENCODER_DELAY = 576  # samples LAME puts before the audio; decoders skip it when the LAME tag says so
LAME_QUALITY = 3  # LAME's own default algorithm quality, as ffmpeg's libmp3lame uses it


FRAME = 1152  # samples per MPEG-1 Layer III frame
MIN_PART_SECONDS = 60  # parts shorter than this are not worth a thread


def encode_mp3(source: Iterable[bytes] | PcmSource, rate: int, path: Path, tags: Tags, chapters: Sequence[Chapter],
                kbps: int, counter: SampleCounter, jobs: int, channels: int = 1) -> None:
    """MP3 with an ID3v2.3 tag (chapters + ordered top-level CTOC) and a LAME Info tag for gapless length.

    A PcmSource is cut into parts at silent frame boundaries and the parts are
    encoded on separate cores, then joined. Each part but the last is encoded
    one frame short, so LAME's priming and padding (zeros) exactly fill that
    frame: every part starts where the plan says and the whole decodes to
    exactly the planned number of samples (see split_points).
    """
    if hasattr(source, "silences"):
        audio: PcmSource = source  # type: ignore[assignment]
        cuts = [0, *split_points(audio, rate, jobs), audio.total]
        parts = [audio.chunks(a, b - (FRAME if b != audio.total else 0)) for a, b in pairwise(cuts)]
        total = audio.total
    else:
        parts = [iter(source)]
        total = -1
    path.write_bytes(id3_tag(tags, chapters, rate))
    info_length = _info_frame_length(kbps, rate, channels)
    with open(path, "r+b") as out:
        out.seek(0, os.SEEK_END)
        info_at = out.tell()
        out.write(bytes(info_length))  # placeholder, filled in at the end
        if len(parts) == 1:
            samples = _encode_part(parts[0], rate, kbps, out, counter, channels=channels)
        else:
            samples = _encode_parallel(parts, rate, kbps, out, counter, path)
        end = out.tell()
        out.seek(info_at + info_length)
        first = out.read(4)
        frames = _count_frames(first, end - info_at - info_length, kbps, rate)
        content = total if total >= 0 else samples  # what a gapless decoder must return
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


def _encode_part(chunks: Iterable[bytes], rate: int, kbps: int, out: IO[bytes], counter: SampleCounter,
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


def _encode_parallel(parts: list[Iterator[bytes]], rate: int, kbps: int, out: IO[bytes], counter: SampleCounter,
                     path: Path) -> int:
    """Encode parts on separate threads into temporary files beside ``path``, then append them in order."""
    from concurrent.futures import ThreadPoolExecutor

    temps = [path.with_name(f"{path.name}.{i}") for i in range(len(parts))]
    stop = threading.Event()

    def run(index: int) -> int:
        with open(temps[index], "wb") as handle:
            return _encode_part(parts[index], rate, kbps, handle, counter, stop)

    pool = ThreadPoolExecutor(max_workers=len(parts))
    try:
        samples = sum(pool.map(run, range(len(parts))))
        for temp in temps:
            with open(temp, "rb") as handle:
                shutil.copyfileobj(handle, out, 1 << 20)
        # Each part but the last left out its final (silent) frame; count it as encoded.
        counter.add(FRAME * (len(parts) - 1))
        return samples
    except BaseException:
        stop.set()  # Ctrl-C, SIGTERM or a failed part: the other parts stop at their next chunk
        raise
    finally:
        pool.shutdown(wait=True)
        for temp in temps:
            temp.unlink(missing_ok=True)


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
    before, after = rate, rate // 2  # silence wanted before and after a cut
    candidates: list[tuple[int, int]] = []
    for start, end in audio.silences():
        low = -(-(start + before) // FRAME) * FRAME  # first frame boundary with enough silence before it
        high = (end - after) // FRAME * FRAME
        if low <= high and low > 0 and high < total:
            candidates.append((low, high))
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
