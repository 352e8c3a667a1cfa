"""An MP3 file's frames read back: its LAME tag as ffmpeg's demuxer reads it, and where the file can be cut so that
its two halves decode apart (at a frame that borrows nothing from the frames before it).

Used by the file check (voiceguide.export.verify) to decode a long MP3 in two halves at once; nothing here decodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

from voiceguide.audio.encoded import MP3_DECODER_DELAY, MPEG1_FRAME
from voiceguide.export.formats import MP3_BITRATES

_KBPS = (0, *MP3_BITRATES, 0)  # MPEG-1 Layer III by the header's bit-rate index; 0: free format, not allowed
_RATES = (44100, 48000, 32000, 0)
_SAME_STREAM = 0xFFFE0C00  # header bits every frame of one stream shares: sync, version, layer, sample rate
CHAIN = 4  # frames whose headers must follow one another for a position to count as a frame boundary
SEARCH_BYTES = 1 << 20  # how far past the middle a cut is looked for (a dense session has one every few seconds)


def frame_size(header: bytes) -> int:
    """Bytes in the MPEG-1 Layer III frame whose 4-byte ``header`` this is; 0 when it is not one."""
    if len(header) < 4 or header[0] != 0xFF or header[1] & 0xFE != 0xFA:  # sync, MPEG-1, Layer III
        return 0
    kbps, rate = _KBPS[header[2] >> 4], _RATES[header[2] >> 2 & 3]
    return 144000 * kbps // rate + (header[2] >> 1 & 1) if kbps and rate else 0


@dataclass(frozen=True)
class LameTag:
    """What a LAME (Info/Xing) tag tells a gapless decoder, read as ffmpeg's MP3 demuxer reads it."""

    frames: int  # the audio frames it counts (0: not counted)
    start_pad: int  # the encoder's delay: ffmpeg skips start_pad + MP3_DECODER_DELAY samples at the start
    end_pad: int  # the padding: ffmpeg drops the last end_pad - MP3_DECODER_DELAY samples of the counted frames
    audio_at: int  # where the first audio frame starts (the tag's own frame is not audio)
    rate: int  # samples a second

    def end_trim(self, first: int, count: int) -> int:
        """Samples ffmpeg drops for the padding from ``count`` frames starting at frame ``first`` (counted from
        the first audio frame): the part of each that lies in [frames * 1152 - end_pad + 529, frames * 1152), the
        frame that crosses its start trimmed to its end (as libavformat's first/last_discard_sample)."""
        if not self.frames:
            return 0
        last = self.frames * MPEG1_FRAME
        first_dropped = last - self.end_pad + MP3_DECODER_DELAY
        trim = 0
        for index in range(max(first, first_dropped // MPEG1_FRAME - 1), min(first + count, -(-last // MPEG1_FRAME))):
            start, end = index * MPEG1_FRAME, (index + 1) * MPEG1_FRAME
            if end >= first_dropped and start < last:
                trim += min(end - first_dropped, MPEG1_FRAME)
        return trim


def lame_tag(frame: bytes, at: int, file_size: int) -> LameTag | None:
    """The LAME tag in ``frame`` (the file's bytes from byte ``at``, where its first frame starts), if the file
    is one whose halves can be decoded apart: MPEG-1 Layer III, a tag whose encoder delays ffmpeg honours (LAME,
    Lavf, Lavc) that counts its frames and its bytes, and the bytes it counts are the file's (else None)."""
    size = frame_size(frame[:4])
    if not size or len(frame) < size:
        return None
    xing = 4 + (17 if frame[3] >> 6 == 3 else 32)  # after the side information (ffmpeg allows for no CRC either)
    if frame[xing : xing + 4] not in (b"Xing", b"Info"):
        return None
    flags = int.from_bytes(frame[xing + 4 : xing + 8], "big")
    if flags & 3 != 3:  # no frame count, or no byte count
        return None
    frames = int.from_bytes(frame[xing + 8 : xing + 12], "big")
    counted = int.from_bytes(frame[xing + 12 : xing + 16], "big")
    field = xing + 16 + (100 if flags & 4 else 0) + (4 if flags & 8 else 0)  # past the seek table and quality
    version = frame[field : field + 4]
    delays = field + 9 + 1 + 1 + 4 + 2 + 2 + 1 + 1  # version, revision, lowpass, peak, 2 gains, flags, bit rate
    if version not in (b"LAME", b"Lavf", b"Lavc") or len(frame) < delays + 3 or counted != file_size - at:
        return None
    value = int.from_bytes(frame[delays : delays + 3], "big")
    return LameTag(frames, value >> 12, value & 4095, at + size, _RATES[frame[2] >> 2 & 3])


def independent_frame(handle: BinaryIO, start: int, end: int, like: bytes) -> int | None:
    """The first frame boundary at or after byte ``start`` (before ``end``) where a frame of the stream whose
    header is ``like`` begins and borrows no bits from the frames before it (main_data_begin 0), found within
    SEARCH_BYTES; a boundary counts only where CHAIN headers follow one another. None if there is none."""
    handle.seek(start)
    data = handle.read(min(SEARCH_BYTES, end - start))
    stream = int.from_bytes(like[:4], "big") & _SAME_STREAM
    at = data.find(b"\xff")
    while 0 <= at <= len(data) - 6:
        if _chained(data, at, stream, start + at, end):
            break
        at = data.find(b"\xff", at + 1)
    else:
        return None
    while at + 6 <= len(data):
        size = frame_size(data[at : at + 4])
        if not size or int.from_bytes(data[at : at + 4], "big") & _SAME_STREAM != stream:
            return None  # lost the stream (damaged, or not one stream): decode the file whole
        side = at + 4 + (0 if data[at + 1] & 1 else 2)  # the side information, after the CRC if there is one
        if data[side] == 0 and data[side + 1] & 0x80 == 0:  # main_data_begin: its first 9 bits
            return start + at
        at += size
    return None


def _chained(data: bytes, at: int, stream: int, position: int, end: int) -> bool:
    """Whether CHAIN frames of ``stream`` follow one another from ``at`` (or up to the file's ``end``)."""
    for _ in range(CHAIN):
        if position == end:
            return True
        header = data[at : at + 4]
        size = frame_size(header)
        if not size or int.from_bytes(header, "big") & _SAME_STREAM != stream:
            return False
        at, position = at + size, position + size
        if at + 4 > len(data):
            return position == end
    return True
