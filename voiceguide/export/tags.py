"""Tags, chapters and covers, written the way each container's players read them.

Which writer a format uses is registry data (``Format.chapters``, ``Format.cover``);
MP3's whole ID3 tag is built in ``voiceguide.export.id3``.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from voiceguide.errors import EncoderError
from voiceguide.export.formats import ChapterKind, CoverKind, Format, millis
from voiceguide.export.text import safe_text
from voiceguide.plan.timeline import Chapter


@dataclass(frozen=True)
class Tags:
    """Metadata written into the file; every text field is made safe (one line, no control characters)."""

    title: str
    artist: str = "voiceguide"
    album: str = "voiceguide sessions"
    genre: str = "Speech"
    comment: str = ""
    year: str = ""
    track: str = ""
    cover: bytes = b""  # PNG or JPEG
    cover_mime: str = "image/png"

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, str):
                object.__setattr__(self, item.name, safe_text(value))


def _escape(value: str) -> str:
    for char in ("\\", "=", ";", "#", "\n"):
        value = value.replace(char, "\\" + char)
    return value


def ffmetadata(tags: Tags, chapters: Sequence[Chapter], rate: int) -> str:
    """ffmpeg's metadata file: global tags, then chapters in time order (sample time base)."""
    lines = [";FFMETADATA1"]
    for key, value in (("title", tags.title), ("artist", tags.artist), ("album", tags.album),
                       ("genre", tags.genre), ("comment", tags.comment), ("date", tags.year), ("track", tags.track)):
        if value:
            lines.append(f"{key}={_escape(value)}")
    for chapter in sorted(chapters, key=lambda c: c.start):
        lines += ["[CHAPTER]", f"TIMEBASE=1/{rate}", f"START={chapter.start}", f"END={chapter.end}",
                  f"title={_escape(safe_text(chapter.title))}"]
    return "\n".join(lines) + "\n"


def vorbis_time(samples: int, rate: int) -> str:
    """A chapter start as the Vorbis chapter extension writes it: HH:MM:SS.mmm, to the millisecond."""
    hours, rest = divmod(millis(samples, rate), 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


def write_vorbis_chapters(path: Path, chapters: Sequence[Chapter], rate: int) -> None:
    """Vorbis-comment chapters (CHAPTER000=00:01:02.345, CHAPTER000NAME=...) in time order.

    Written here rather than by ffmpeg: ffmpeg's writer rounds the seconds
    field to the nearest second while keeping the milliseconds, so a chapter at
    112.865 s is stored as 00:01:53.865 (one second late).
    """
    audio = _open(path)
    for number, chapter in enumerate(sorted(chapters, key=lambda c: c.start)):
        audio.tags[f"CHAPTER{number:03d}"] = vorbis_time(chapter.start, rate)
        audio.tags[f"CHAPTER{number:03d}NAME"] = safe_text(chapter.title)
    audio.save()


def _open(path: Path) -> Any:
    import mutagen

    audio = mutagen.File(path)
    if audio is None or audio.tags is None:
        raise EncoderError(f"{path}: the encoded file has no tags to write into")
    return audio


def _picture(tags: Tags) -> Any:
    from mutagen.flac import Picture

    picture = Picture()
    picture.type, picture.mime, picture.desc, picture.data = 3, tags.cover_mime, "Cover", tags.cover
    return picture


def _mp4_cover(path: Path, tags: Tags) -> None:
    from mutagen.mp4 import MP4Cover

    mp4 = _open(path)
    kind = MP4Cover.FORMAT_PNG if tags.cover_mime == "image/png" else MP4Cover.FORMAT_JPEG
    mp4["covr"] = [MP4Cover(tags.cover, imageformat=kind)]
    mp4.save()


def _flac_cover(path: Path, tags: Tags) -> None:
    flac = _open(path)
    flac.add_picture(_picture(tags))
    flac.save()


def _vorbis_cover(path: Path, tags: Tags) -> None:
    ogg = _open(path)  # Ogg Vorbis or Opus: a base64 FLAC picture block in a comment
    ogg.tags["METADATA_BLOCK_PICTURE"] = [base64.b64encode(_picture(tags).write()).decode("ascii")]
    ogg.save()


# Writers that run on the file ffmpeg made; MP3's cover is part of its ID3 tag, WAV takes none.
COVER_WRITERS: dict[CoverKind, Callable[[Path, Tags], None]] = {
    CoverKind.MP4: _mp4_cover, CoverKind.FLAC: _flac_cover, CoverKind.VORBIS: _vorbis_cover}


def ffmpeg_chapters(fmt: Format, chapters: Sequence[Chapter]) -> Sequence[Chapter]:
    """The chapters ffmpeg itself should write for ``fmt`` (only where it stores them exactly)."""
    return chapters if fmt.chapters is ChapterKind.FFMETADATA else ()


def finish_tags(path: Path, fmt: Format, tags: Tags, chapters: Sequence[Chapter], rate: int) -> None:
    """Add what ffmpeg did not write: Vorbis-comment chapters and the cover, as ``fmt``'s entry says."""
    if fmt.chapters is ChapterKind.VORBIS and chapters:
        write_vorbis_chapters(path, chapters, rate)
    writer = COVER_WRITERS.get(fmt.cover)
    if tags.cover and writer is not None:
        writer(path, tags)
