"""The MP3's ID3v2.3 tag, with its frames stored in the order we choose, and a reader of that stored order.

mutagen serializes each frame, but its tag writer sorts frames by a priority
list and then by size, which puts a short "Closing" chapter before a long
"Lunge (left)" one. Players and ffmpeg list CHAP frames in stored order, so the
tag is assembled here frame by frame: text frames, the ordered top-level CTOC,
the CHAP frames in time order, then the cover.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator, Sequence
from typing import Any

from voiceguide.export.formats import millis
from voiceguide.export.tags import Tags
from voiceguide.export.text import safe_text
from voiceguide.plan.timeline import Chapter

HEADER = 10  # "ID3", version (2 bytes), flags, syncsafe size (4 bytes)
TOC_ID = "toc"


def chapter_id(index: int) -> str:
    """The element id of the chapter at ``index`` in time order."""
    return f"chp{index}"


def _frame_bytes(frame: Any) -> bytes:
    """One frame as mutagen serializes it for ID3v2.3 (header and body), through its public save()."""
    from mutagen.id3 import ID3

    tag = ID3()
    tag.add(frame)
    buffer = io.BytesIO()
    tag.save(buffer, v2_version=3, padding=lambda info: 0)
    return buffer.getvalue()[HEADER:]


def _syncsafe(size: int) -> bytes:
    return bytes((size >> shift) & 0x7F for shift in (21, 14, 7, 0))


def read_syncsafe(raw: bytes) -> int:
    """The number an ID3v2 syncsafe integer (4 bytes, 7 bits each) holds; a file cut short inside it holds what
    its bytes say (a shorter tag, which readers then find wanting) rather than an error from zip."""
    return sum(b << shift for b, shift in zip(raw[:4], (21, 14, 7, 0), strict=False))


def tag_length(head: bytes) -> int:
    """Bytes the ID3v2 tag at the start of ``head`` (its first HEADER bytes at least) takes, footer included;
    0 when it starts with none: where the audio frames may begin."""
    if head[:3] != b"ID3" or len(head) < HEADER:
        return 0
    return HEADER + (10 if head[5] & 0x10 else 0) + read_syncsafe(head[6:10])


def id3_tag(tags: Tags, chapters: Sequence[Chapter], rate: int) -> bytes:
    """An ID3v2.3 tag: text frames, a top-level ordered CTOC, one CHAP per chapter in time order, the cover.

    Frames are stored in exactly this order (see the module's docstring).
    """
    from mutagen.id3 import APIC, CHAP, COMM, CTOC, TALB, TCON, TIT2, TPE1, TRCK, TYER, CTOCFlags

    frames: list[Any] = [TIT2(encoding=3, text=tags.title), TPE1(encoding=3, text=tags.artist),
                         TALB(encoding=3, text=tags.album), TCON(encoding=3, text=tags.genre)]
    if tags.comment:
        frames.append(COMM(encoding=3, lang="eng", desc="", text=tags.comment))
    if tags.year:
        frames.append(TYER(encoding=3, text=tags.year))  # ID3v2.3's year frame
    if tags.track:
        frames.append(TRCK(encoding=3, text=tags.track))
    ordered = sorted(chapters, key=lambda c: c.start)
    ids = [chapter_id(i) for i in range(len(ordered))]
    if ids:
        frames.append(CTOC(element_id=TOC_ID, flags=CTOCFlags.TOP_LEVEL | CTOCFlags.ORDERED, child_element_ids=ids,
                           sub_frames=[TIT2(encoding=3, text="Chapters")]))
    for element, chapter in zip(ids, ordered, strict=True):
        frames.append(CHAP(element_id=element, start_time=millis(chapter.start, rate),
                           end_time=millis(chapter.end, rate),
                           sub_frames=[TIT2(encoding=3, text=safe_text(chapter.title))]))
    if tags.cover:
        frames.append(APIC(encoding=3, mime=tags.cover_mime, type=3, desc="Cover", data=tags.cover))
    body = b"".join(_frame_bytes(frame) for frame in frames)
    return b"ID3" + bytes([3, 0, 0]) + _syncsafe(len(body)) + body


def stored_frames(data: bytes) -> Iterator[tuple[str, bytes]]:
    """(frame id, body) of each frame of an ID3v2.3 or v2.4 tag at the start of ``data``, in stored order."""
    if len(data) < HEADER or data[:3] != b"ID3" or data[3] not in (3, 4):
        return
    version, flags = data[3], data[5]
    end = HEADER + read_syncsafe(data[6:10])
    at = HEADER
    if flags & 0x40:  # extended header: skip it (its size counts itself in v2.4, not in v2.3)
        size = struct.unpack(">I", data[at : at + 4])[0]
        at += size if version == 4 else size + 4
    while at + 10 <= min(end, len(data)) and data[at : at + 4].strip(b"\0"):
        raw = data[at + 4 : at + 8]
        size = read_syncsafe(raw) if version == 4 else struct.unpack(">I", raw)[0]
        yield data[at : at + 4].decode("latin-1"), data[at + 10 : at + 10 + size]
        at += 10 + size


def stored_chapter_ids(data: bytes) -> list[str]:
    """The element ids of the CHAP frames in ``data``'s ID3 tag, in the order they are stored."""
    return [body.split(b"\0", 1)[0].decode("latin-1") for frame_id, body in stored_frames(data) if frame_id == "CHAP"]
