"""Export: encode the PCM stream with ffmpeg, with tags and chapters, written atomically.

ffmpeg comes from the imageio-ffmpeg wheel (no system install needed) unless
$VOICEGUIDE_FFMPEG names another. The output is encoded to a temporary file
beside the target and renamed into place only when complete, so a failed or
interrupted render never leaves a partial file and never loses the old one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from voiceguide.errors import EncoderError, OutputError
from voiceguide.timeline import Chapter

# Spoken word: 44.1 kHz mono at 64 kbit/s is transparent for a voice and small.
DEFAULT_BITRATE = "64k"
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
           bitrate: str = DEFAULT_BITRATE, fmt: str = "mp3") -> None:
    """Encode mono 16-bit PCM chunks to ``output``; atomic: all or nothing."""
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
                raise EncoderError(f"ffmpeg failed (exit {code}): {' | '.join(last) or 'no message'}")
            os.replace(temp, output)
        except OSError as exc:
            raise OutputError(f"{output}: cannot write ({exc.strerror})") from None
        finally:
            temp.unlink(missing_ok=True)
