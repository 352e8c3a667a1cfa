"""Export: encode the PCM stream with ffmpeg, with tags and chapters, written atomically.

ffmpeg comes from the imageio-ffmpeg wheel (no system install needed) unless
$VOICEGUIDE_FFMPEG names another. The output is encoded to a temporary file
beside the target and renamed into place only when complete, so a failed or
interrupted render never leaves a partial file and never loses the old one.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from voiceguide.errors import EncoderError, OutputError, VerifyError
from voiceguide.timeline import Chapter

# Spoken word: 44.1 kHz mono at 64 kbit/s is transparent for a voice and small.
DEFAULT_BITRATE = "64k"
DISK_FULL_SIGNS = ("No space left on device", "File too large", "Disk quota exceeded")
FORMAT_ARGS = {
    "mp3": ["-c:a", "libmp3lame", "-id3v2_version", "3", "-write_xing", "1", "-f", "mp3"],
}


@dataclass(frozen=True)
class Tags:
    """Metadata written into the file."""

    title: str
    artist: str = "voiceguide"
    album: str = "voiceguide sessions"
    genre: str = "Speech"
    comment: str = ""


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary to use."""
    override = os.environ.get("VOICEGUIDE_FFMPEG")
    if override:
        return override
    try:
        import imageio_ffmpeg

        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except (ImportError, RuntimeError):
        found = shutil.which("ffmpeg")
        if found:
            return found
    raise EncoderError("no ffmpeg found; run: pip install imageio-ffmpeg (or install ffmpeg)")


def _escape(value: str) -> str:
    for char in ("\\", "=", ";", "#", "\n"):
        value = value.replace(char, "\\" + char)
    return value


def ffmetadata(tags: Tags, chapters: Sequence[Chapter], rate: int) -> str:
    """ffmpeg's metadata file: global tags, then chapters in time order (sample time base)."""
    lines = [";FFMETADATA1"]
    for key, value in (("title", tags.title), ("artist", tags.artist), ("album", tags.album),
                       ("genre", tags.genre), ("comment", tags.comment)):
        if value:
            lines.append(f"{key}={_escape(value)}")
    for chapter in sorted(chapters, key=lambda c: c.start):
        lines += ["[CHAPTER]", f"TIMEBASE=1/{rate}", f"START={chapter.start}", f"END={chapter.end}",
                  f"title={_escape(chapter.title)}"]
    return "\n".join(lines) + "\n"


def check_writable(output: Path) -> None:
    """Fail early, before any work, if the output cannot be written."""
    folder = output.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=f".{output.name}.", suffix=".probe")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"{folder}: cannot write the output here ({exc.strerror})") from None
    if output.is_dir():
        raise OutputError(f"{output}: is a directory")


def encode(chunks: Iterable[bytes], rate: int, output: Path, tags: Tags, chapters: Sequence[Chapter],
           bitrate: str = DEFAULT_BITRATE, fmt: str = "mp3", check: Callable[[Path], None] | None = None) -> None:
    """Encode mono 16-bit PCM chunks to ``output``; atomic: all or nothing.

    ``check`` is called on the finished temporary file before it is renamed into place.
    """
    check_writable(output)
    fd, temp_name = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".part")
    os.close(fd)
    temp = Path(temp_name)
    with tempfile.TemporaryDirectory(prefix="voiceguide-encode-") as work:
        meta = Path(work) / "metadata.txt"
        meta.write_text(ffmetadata(tags, chapters, rate), encoding="utf-8")
        log_path = Path(work) / "ffmpeg.log"
        command = [
            ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
            "-f", "s16le", "-ar", str(rate), "-ac", "1", "-i", "pipe:0",
            "-i", str(meta), "-map", "0:a", "-map_metadata", "1", "-map_chapters", "1",
            "-ar", str(rate), "-ac", "1", "-b:a", bitrate, *FORMAT_ARGS[fmt], str(temp),
        ]
        try:
            with open(log_path, "wb") as log:
                try:
                    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log)
                except OSError as exc:
                    raise EncoderError(f"cannot run ffmpeg ({exc.strerror}): {command[0]}") from None
                assert process.stdin is not None
                try:
                    for chunk in chunks:
                        process.stdin.write(chunk)
                    process.stdin.close()
                except BrokenPipeError:
                    pass  # ffmpeg stopped early; its log says why
                except BaseException:
                    process.kill()
                    process.wait()
                    raise
                code = process.wait()
            if code != 0:
                last = log_path.read_text(errors="replace").strip().splitlines()[-3:]
                message = " | ".join(last) or "no message"
                if code == -getattr(signal, "SIGXFSZ", 0) or any(sign in message for sign in DISK_FULL_SIGNS):
                    detail = last[-1].strip() if last else "file size limit exceeded"
                    raise OutputError(f"{output}: cannot write: the disk is full or the file is too large ({detail}); "
                                      "nothing was replaced")
                raise EncoderError(f"ffmpeg failed (exit {code}): {message}")
            if check is not None:
                check(temp)  # e.g. --verify: a file that fails never replaces the previous one
            os.replace(temp, output)
        except OSError as exc:
            raise OutputError(f"{output}: cannot write ({exc.strerror})") from None
        finally:
            temp.unlink(missing_ok=True)


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
