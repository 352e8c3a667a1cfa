"""Reading a written file back: its decoded length and its chapters as stored."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from voiceguide.errors import VerifyError
from voiceguide.ffmpeg import ffmpeg_exe
from voiceguide.plan.timeline import Chapter


@dataclass(frozen=True)
class Probe:
    """What a written file decodes to: its length in samples and its chapters (start and end in seconds)."""

    samples: int
    chapters: tuple[tuple[float, float, str], ...]


def probe(path: Path, rate: int) -> Probe:
    """Decode ``path`` (streaming, flat memory) and read its chapters back, with the same ffmpeg."""
    command = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-i", str(path),
               "-f", "s16le", "-ac", "1", "-ar", str(rate), "pipe:1"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout is not None and process.stderr is not None
        total = 0
        while chunk := process.stdout.read(1 << 20):
            total += len(chunk)
        error = process.stderr.read().decode(errors="replace").strip()
    if process.returncode != 0:
        raise VerifyError(f"{path}: cannot be decoded: {error.splitlines()[-1] if error else 'ffmpeg failed'}")
    return Probe(total // 2, read_chapters(path))


def read_chapters(path: Path) -> tuple[tuple[float, float, str], ...]:
    """Chapters as stored in the file: (start s, end s, title) in time order.

    ID3 CHAP frames are read with mutagen: ffmpeg's reader shifts them by the
    encoder delay, which would hide exactly the errors verification looks for.
    """
    from mutagen.id3 import ID3, ID3NoHeaderError

    try:
        frames = ID3(path).getall("CHAP")
    except (ID3NoHeaderError, OSError, ValueError):
        frames = []
    if frames:
        return tuple(sorted((f.start_time / 1000, f.end_time / 1000, str(f.sub_frames.get("TIT2", ""))) for f in frames))
    meta = subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-i", str(path), "-f", "ffmetadata", "pipe:1"],
                          capture_output=True, check=False).stdout.decode("utf-8", errors="replace")
    return _parse_chapters(meta)


def _parse_chapters(meta: str) -> tuple[tuple[float, float, str], ...]:
    chapters: list[tuple[float, float, str]] = []
    current: dict[str, str] | None = None
    for line in [*meta.splitlines(), "[END]"]:
        if line.startswith("["):
            if current is not None:
                num, _, den = current.get("TIMEBASE", "1/1000").partition("/")
                unit = int(num) / int(den or 1)
                chapters.append((int(current.get("START", 0)) * unit, int(current.get("END", 0)) * unit,
                                 re.sub(r"\\(.)", r"\1", current.get("title", ""))))
            current = {} if line == "[CHAPTER]" else None
        elif current is not None and "=" in line:
            key, _, value = line.partition("=")
            current[key] = value
    return tuple(chapters)


def verify(path: Path, rate: int, total: int, chapters: Sequence[Chapter]) -> Probe:
    """Raise VerifyError unless ``path`` decodes to exactly ``total`` samples (within 1 ms) with these chapters."""
    found = probe(path, rate)
    if abs(found.samples - total) > rate // 1000:
        raise VerifyError(f"{path}: decodes to {found.samples / rate:.3f} s but the plan is {total / rate:.3f} s")
    if chapters and [c[2] for c in found.chapters] != [c.title for c in chapters]:
        raise VerifyError(f"{path}: has {len(found.chapters)} chapters, the plan has {len(chapters)} "
                          f"(first difference: {_first_difference([c[2] for c in found.chapters], [c.title for c in chapters])})")
    for (start, _end, title), chapter in zip(found.chapters, chapters, strict=True):
        if abs(start - chapter.start / rate) > 0.002:
            raise VerifyError(f"{path}: chapter {title!r} starts at {start:.3f} s, the plan says {chapter.start / rate:.3f} s")
    return found


def _first_difference(found: list[str], wanted: list[str]) -> str:
    for got, want in zip(found, wanted, strict=False):
        if got != want:
            return f"{got!r} instead of {want!r}"
    return "missing" if len(found) < len(wanted) else "extra chapters"
