"""Tags, chapters and covers, written the way each container's players read them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from voiceguide.plan.timeline import Chapter


@dataclass(frozen=True)
class Tags:
    """Metadata written into the file."""

    title: str
    artist: str = "voiceguide"
    album: str = "voiceguide sessions"
    genre: str = "Speech"
    comment: str = ""
    year: str = ""
    track: str = ""
    cover: bytes = b""  # PNG or JPEG
    cover_mime: str = "image/png"


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
                  f"title={_escape(chapter.title)}"]
    return "\n".join(lines) + "\n"


def _id3_tag(tags: Tags, chapters: Sequence[Chapter], rate: int) -> bytes:
    """An ID3v2.3 tag: text frames, one CHAP per chapter and a top-level ordered CTOC listing them in time order."""
    import io

    from mutagen.id3 import APIC, CHAP, COMM, CTOC, ID3, TALB, TCON, TIT2, TPE1, TRCK, TYER, CTOCFlags

    tag = ID3()
    tag.add(TIT2(encoding=3, text=tags.title))
    tag.add(TPE1(encoding=3, text=tags.artist))
    tag.add(TALB(encoding=3, text=tags.album))
    tag.add(TCON(encoding=3, text=tags.genre))
    if tags.comment:
        tag.add(COMM(encoding=3, lang="eng", desc="", text=tags.comment))
    if tags.year:
        tag.add(TYER(encoding=3, text=tags.year))  # ID3v2.3's year frame
    if tags.track:
        tag.add(TRCK(encoding=3, text=tags.track))
    if tags.cover:
        tag.add(APIC(encoding=3, mime=tags.cover_mime, type=3, desc="Cover", data=tags.cover))
    ordered = sorted(chapters, key=lambda c: c.start)
    ids = [f"chp{i}" for i in range(len(ordered))]
    for element, chapter in zip(ids, ordered, strict=True):
        tag.add(CHAP(element_id=element, start_time=round(chapter.start * 1000 / rate),
                     end_time=round(chapter.end * 1000 / rate), sub_frames=[TIT2(encoding=3, text=chapter.title)]))
    if ids:
        tag.add(CTOC(element_id="toc", flags=CTOCFlags.TOP_LEVEL | CTOCFlags.ORDERED, child_element_ids=ids,
                     sub_frames=[TIT2(encoding=3, text="Chapters")]))
    buffer = io.BytesIO()
    tag.save(buffer, v2_version=3, padding=lambda info: 0)
    return buffer.getvalue()


def _add_cover(path: Path, fmt: str, tags: Tags) -> None:
    """Embed the cover the way each container's players look for it."""
    import base64

    from mutagen.flac import FLAC, Picture

    picture = Picture()
    picture.type, picture.mime, picture.desc, picture.data = 3, tags.cover_mime, "Cover", tags.cover
    if fmt == "m4a":
        from mutagen.mp4 import MP4, MP4Cover

        mp4 = MP4(path)
        kind = MP4Cover.FORMAT_PNG if tags.cover_mime == "image/png" else MP4Cover.FORMAT_JPEG
        mp4["covr"] = [MP4Cover(tags.cover, imageformat=kind)]
        mp4.save()
    elif fmt == "flac":
        flac = FLAC(path)
        flac.add_picture(picture)
        flac.save()
    else:  # ogg, opus: a base64 FLAC picture block in a Vorbis comment
        from mutagen.oggopus import OggOpus
        from mutagen.oggvorbis import OggVorbis

        ogg = OggOpus(path) if fmt == "opus" else OggVorbis(path)
        assert ogg.tags is not None
        ogg.tags["METADATA_BLOCK_PICTURE"] = [base64.b64encode(picture.write()).decode("ascii")]
        ogg.save()


def _add_vorbis_chapters(path: Path, fmt: str, chapters: Sequence[Chapter], rate: int) -> None:
    """Vorbis-comment chapters (CHAPTER001=00:01:02.345, CHAPTER001NAME=...): ffmpeg writes them only for Opus."""
    from mutagen.flac import FLAC
    from mutagen.oggvorbis import OggVorbis

    audio = FLAC(path) if fmt == "flac" else OggVorbis(path)
    assert audio.tags is not None
    for number, chapter in enumerate(sorted(chapters, key=lambda c: c.start)):
        millis = round(chapter.start * 1000 / rate)
        hours, rest = divmod(millis, 3_600_000)
        minutes, rest = divmod(rest, 60_000)
        audio.tags[f"CHAPTER{number:03d}"] = f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"
        audio.tags[f"CHAPTER{number:03d}NAME"] = chapter.title
    audio.save()
