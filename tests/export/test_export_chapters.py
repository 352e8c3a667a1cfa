"""Chapters in every format: stored in time order, at the plan's millisecond, read back by ffmpeg and by mutagen."""

from __future__ import annotations

import random
import struct
import subprocess
from pathlib import Path

import mutagen
import pytest

from voiceguide.errors import VerifyError
from voiceguide.export.encode import encode
from voiceguide.export.formats import FORMATS
from voiceguide.export.tags import Tags
from voiceguide.export.verify import probe, read_chapters, verify
from voiceguide.ffmpeg import ffmpeg_exe
from voiceguide.plan.timeline import Chapter

RATE = 44100
# Titles that get SHORTER over time (mutagen's own writer would store "Closing" first), and starts whose
# fractional second is .5 or more (ffmpeg's Vorbis-comment writer rounds those a second late).
TITLES = ["Introduction to the long session", "Runner's stretch (left)", "Lunge", "Closing"]
SECONDS = [0.0, 25.72, 60.5, 112.865]
TOTAL = round(120.25 * RATE) + 37  # not a whole number of 48 kHz samples either
STARTS = [round(s * RATE) for s in SECONDS]
CHAPTERS = [Chapter(t, a, b) for t, a, b in zip(TITLES, STARTS, [*STARTS[1:], TOTAL], strict=True)]
PLAN_MS = [(s * 1000 * 2 + RATE) // (2 * RATE) for s in STARTS]  # 0, 25720, 60500, 112865


def silence() -> list[bytes]:
    return [bytes(2 * TOTAL)]


def id3_frames_as_stored(data: bytes) -> list[tuple[str, bytes]]:
    """Walk an ID3v2.3 tag's frames by hand, in the order of their bytes (independent of the code under test)."""
    assert data[:3] == b"ID3" and data[3] == 3
    size = (data[6] << 21) | (data[7] << 14) | (data[8] << 7) | data[9]
    frames, at = [], 10
    while at < 10 + size and data[at] != 0:
        frame_id, frame_size = data[at : at + 4].decode(), struct.unpack(">I", data[at + 4 : at + 8])[0]
        frames.append((frame_id, data[at + 10 : at + 10 + frame_size]))
        at += 10 + frame_size
    return frames


def text_frame(body: bytes) -> str:
    """An ID3v2.3 text frame's body: an encoding byte, then Latin-1 or UTF-16 with a byte order mark."""
    codec = {0: "latin-1", 1: "utf-16"}[body[0]]
    return body[1:].decode(codec).rstrip("\0")


def ffmpeg_chapters(path: Path) -> list[tuple[int, str]]:
    """(start ms, title) as ffmpeg's demuxer (what ffprobe -show_chapters shows) lists them, in its order."""
    meta = subprocess.run([ffmpeg_exe(), "-v", "error", "-copyts", "-i", str(path), "-f", "ffmetadata", "-"],
                          capture_output=True, check=True, text=True).stdout
    found: list[tuple[int, str]] = []
    for block in meta.split("[CHAPTER]")[1:]:
        fields = dict(line.split("=", 1) for line in block.strip().splitlines() if "=" in line)
        num, den = (int(x) for x in fields["TIMEBASE"].split("/"))
        found.append((round(int(fields["START"]) * num * 1000 / den), fields.get("title", "")))
    return found


def mutagen_chapters(path: Path, fmt: str) -> list[tuple[int, str]]:
    """(start ms, title) read with mutagen, in stored order."""
    audio = mutagen.File(path)
    assert audio is not None
    if fmt == "mp3":
        by_id = {c.element_id: c for c in audio.tags.getall("CHAP")}
        order = [body.split(b"\0", 1)[0].decode() for fid, body in id3_frames_as_stored(path.read_bytes()) if fid == "CHAP"]
        return [(by_id[i].start_time, str(by_id[i].sub_frames["TIT2"])) for i in order]
    if fmt == "m4a":
        return [(round(c.start * 1000), c.title) for c in audio.chapters]
    comments = [(k.upper(), v) for k, v in audio.tags if k.upper().startswith("CHAPTER")]
    times = [v for k, v in comments if not k.endswith("NAME")]
    names = [v for k, v in comments if k.endswith("NAME")]
    millis = [int(h) * 3_600_000 + int(m) * 60_000 + round(float(s) * 1000)
              for h, m, s in (t.split(":") for t in times)]
    return list(zip(millis, names, strict=True))


def test_mp3_chapter_frames_are_stored_in_time_order(tmp_path: Path) -> None:
    out = tmp_path / "s.mp3"
    shuffled = CHAPTERS[:]
    random.Random(4).shuffle(shuffled)  # the order they are handed over must not matter either
    encode(silence(), RATE, out, Tags(title="x"), shuffled)
    frames = id3_frames_as_stored(out.read_bytes())
    ids = [fid for fid, _ in frames]
    chaps = [body for fid, body in frames if fid == "CHAP"]
    assert ids.index("CTOC") < ids.index("CHAP")  # the table of contents first, then the chapters
    starts = [struct.unpack(">I", body.split(b"\0", 1)[1][:4])[0] for body in chaps]
    assert starts == PLAN_MS  # stored in time order, to the millisecond
    titles = [text_frame(body.split(b"TIT2", 1)[1][6:]) for body in chaps]
    assert titles == TITLES
    assert [t for _, t in ffmpeg_chapters(out)] == TITLES  # what ffprobe -show_chapters lists first is "Introduction"


@pytest.mark.parametrize("fmt", ["mp3", "m4a", "ogg", "opus", "flac"])
def test_every_format_stores_the_plans_chapters_to_the_millisecond(fmt: str, tmp_path: Path) -> None:
    out = tmp_path / f"s{FORMATS[fmt].extension}"
    encode(silence(), RATE, out, Tags(title="x"), CHAPTERS)
    wanted = list(zip(PLAN_MS, TITLES, strict=True))
    assert ffmpeg_chapters(out) == wanted
    assert mutagen_chapters(out, fmt) == wanted
    assert [(round(c.start * 1000), c.title) for c in read_chapters(out)] == wanted
    verify(out, RATE, TOTAL, CHAPTERS)


@pytest.mark.parametrize("fmt", ["mp3", "m4a", "ogg", "opus", "flac", "wav"])
def test_every_format_decodes_to_exactly_the_plans_length(fmt: str, tmp_path: Path) -> None:
    out = tmp_path / f"s{FORMATS[fmt].extension}"
    encode(silence(), RATE, out, Tags(title="x"), CHAPTERS)
    stored_rate = 48000 if fmt == "opus" else RATE
    raw = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(out), "-f", "s16le", "-ac", "1", "-"],
                         capture_output=True, check=True).stdout  # at the file's own rate: no resampler
    expected = TOTAL if fmt != "opus" else -(-TOTAL * 48000 // RATE)  # Opus: the 48 kHz length, rounded up
    assert len(raw) // 2 == expected
    assert getattr(mutagen.File(out).info, "sample_rate", 48000) == stored_rate  # an Opus stream is 48 kHz by definition
    assert verify(out, RATE, TOTAL, CHAPTERS).samples == expected
    with pytest.raises(VerifyError, match="samples"):
        verify(out, RATE, TOTAL + 1, CHAPTERS)  # one sample off is a failure: the truth is exact


def test_wav_holds_no_chapters_and_verify_checks_what_it_can_hold(tmp_path: Path) -> None:
    out = tmp_path / "s.wav"
    encode(silence(), RATE, out, Tags(title="x"), CHAPTERS)
    assert read_chapters(out) == () and ffmpeg_chapters(out) == []
    assert verify(out, RATE, TOTAL, CHAPTERS).chapters == ()  # the plan's chapters cannot be in a WAV: not a failure


def test_verify_refuses_chapters_stored_out_of_order(tmp_path: Path) -> None:
    from mutagen.id3 import CHAP, ID3, TIT2

    out = tmp_path / "s.mp3"
    encode(silence(), RATE, out, Tags(title="x"), [])
    tag = ID3(out)
    for index, chapter in enumerate(CHAPTERS):
        tag.add(CHAP(element_id=f"c{index}", start_time=PLAN_MS[index], end_time=round(chapter.end * 1000 / RATE),
                     sub_frames=[TIT2(encoding=3, text=chapter.title)]))
    tag.save(out, v2_version=3)  # mutagen's writer sorts frames by size: "Lunge" and "Closing" come first
    stored = [t for _, t in ffmpeg_chapters(out)]
    assert stored != TITLES and sorted(stored) == sorted(TITLES)
    assert [c.title for c in read_chapters(out)] == stored  # read as stored, not sorted
    with pytest.raises(VerifyError, match="first difference"):
        verify(out, RATE, TOTAL, CHAPTERS)


def test_verify_refuses_a_chapter_a_second_late(tmp_path: Path) -> None:
    out = tmp_path / "s.ogg"
    encode(silence(), RATE, out, Tags(title="x"), CHAPTERS)
    audio = mutagen.File(out)
    audio.tags["CHAPTER003"] = "00:01:53.865"  # what ffmpeg's own writer stored for 112.865 s
    audio.save()
    with pytest.raises(VerifyError, match=r"'Closing' at 113\.865 s instead of 'Closing' at 112\.865 s"):
        verify(out, RATE, TOTAL, CHAPTERS)


def test_probing_flac_again_and_again_never_crashes_ffmpeg(tmp_path: Path) -> None:
    # probe() decodes inside ffmpeg's filter graph; with FLAC's frame-threaded decoder there ffmpeg 9 crashed
    # (SIGSEGV, heap corruption) in about one run in four. Twenty runs: all must decode the whole file.
    out = tmp_path / "s.flac"
    encode(silence(), RATE, out, Tags(title="x"), CHAPTERS)
    assert {probe(out, RATE).samples for _ in range(20)} == {TOTAL}


@pytest.mark.parametrize("ext", ["flac", "ogg"])
def test_a_file_with_comments_but_no_chapter_times_has_no_chapters(ext: str, tmp_path: Path) -> None:
    # Written by ffmpeg, not by us: a title, and a chapter name with no time. Reading it back raised ValueError
    # from inside (zip of no starts and one end); it is a file without chapters.
    out = tmp_path / f"other.{ext}"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "sine=d=1", "-metadata", "title=Elsewhere",
                    "-metadata", "CHAPTER001NAME=Orphan", str(out)], check=True)
    assert read_chapters(out) == ()
    assert probe(out, RATE).chapters == ()
