"""Writing the session: encode to a temporary file beside the target, check it, rename it into place (all or nothing)."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import cast

from mutagen import MutagenError

from voiceguide.errors import EncoderError, OutputError
from voiceguide.export.formats import Encoder, Format, check_bitrate, choose_format
from voiceguide.export.mp3 import PartListener, encode_mp3
from voiceguide.export.outputs import Staging, Target, check_targets, write_error
from voiceguide.export.stream import PcmSource, SampleCounter
from voiceguide.export.tags import Tags, ffmetadata, ffmpeg_chapters, finish_tags
from voiceguide.export.text import safe_text
from voiceguide.ffmpeg import DISK_FULL_SIGNS, ffmpeg_exe, run_ffmpeg
from voiceguide.host import usable_cores
from voiceguide.leftovers import temp_folder, temp_name
from voiceguide.plan.timeline import Chapter


def check_writable(output: Path) -> None:
    """Fail early, before any work, if the output cannot be written (its folder, or a target that is no file)."""
    folder = output.parent
    probe = temp_name(output, ".probe")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"{folder}: cannot write the output here ({exc.strerror})") from None
    check_targets([Target(output, "the output")])


def encode(source: Iterable[bytes] | PcmSource, rate: int, output: Path, tags: Tags, chapters: Sequence[Chapter],
           bitrate: str | int | None = None, fmt: str | Format | None = None,
           check: Callable[[Path], None] | None = None,
           progress: Callable[[int], None] | None = None, jobs: int | None = None, temp: Path | None = None,
           heard: PartListener | None = None) -> None:
    """Encode 16-bit PCM to ``output``, in the format its extension names; atomic: all or nothing.

    ``fmt``, if given, must agree with the extension (OptionError otherwise, as
    for an unknown extension or a bit rate the format does not take; see
    voiceguide.export.formats). ``source`` is a sequence of PCM chunks, or a
    PcmSource, which MP3 encodes in parallel parts. MP3 is encoded in-process
    with LAME (lameenc); other formats go through ffmpeg. ``check`` is called on
    the finished temporary file before it is renamed into place; ``progress``
    hears the number of samples encoded so far. With ``temp`` (a file from a
    Staging) the audio is written there and the caller renames it with its other outputs. ``heard``
    hears an MP3's audio frames as they are written (see voiceguide.export.mp3.PartListener).
    """
    channels = int(getattr(source, "channels", 1))  # 2 when music is mixed in
    chosen = choose_format(output, fmt)
    kbps = check_bitrate(chosen, bitrate, channels)
    chapters = [replace(c, title=safe_text(c.title)) for c in chapters] if chosen.holds_chapters else []
    if temp is None:
        check_writable(output)
        with Staging([output]) as staging:
            encode(source, rate, output, tags, chapters, bitrate, chosen, check, progress, jobs,
                   temp=staging.temp(output), heard=heard)
            staging.commit()
        return
    counter = SampleCounter(progress, channels)
    try:
        if chosen.encoder is Encoder.LAME:
            assert kbps is not None
            encode_mp3(source, rate, temp, tags, chapters, kbps, counter, jobs or usable_cores(), channels, heard)
        else:
            chunks = cast(PcmSource, source).chunks() if hasattr(source, "silences") else source
            _encode_ffmpeg(counter.through(chunks), rate, temp, tags, chapters, kbps, chosen, output, channels)
        if check is not None:
            check(temp)  # e.g. --verify: a file that fails never replaces the previous one
    except (OSError, MutagenError) as exc:
        raise write_error(output, exc) from None


def _encode_ffmpeg(chunks: Iterable[bytes], rate: int, temp: Path, tags: Tags, chapters: Sequence[Chapter],
                   kbps: int | None, fmt: Format, output: Path, channels: int = 1) -> None:
    """Pipe the PCM to ffmpeg for every format but MP3, then add what ffmpeg does not write exactly."""
    work = temp_folder("encode")
    try:
        meta = work / "metadata.txt"
        meta.write_text(ffmetadata(tags, ffmpeg_chapters(fmt, chapters), rate), encoding="utf-8")
        log_path = work / "ffmpeg.log"
        command = [
            ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
            "-f", "s16le", "-ar", str(rate), "-ac", str(channels), "-i", "pipe:0",
            "-i", str(meta), "-map", "0:a", "-map_metadata", "1", "-map_chapters", "1",
            "-ar", str(fmt.file_rate(rate)), "-ac", str(channels), *([] if kbps is None else ["-b:a", f"{kbps}k"]),
            *fmt.codec_args,
            str(temp),
        ]
        with open(log_path, "wb") as log:
            code = run_ffmpeg(command, chunks, log)
        if code != 0:
            last = log_path.read_text(errors="replace").strip().splitlines()[-3:]
            message = " | ".join(last) or "no message"
            if code == -getattr(signal, "SIGXFSZ", 0) or any(sign in message for sign in DISK_FULL_SIGNS):
                detail = last[-1].strip() if last else "file size limit exceeded"
                raise OutputError(f"{output}: cannot write: the disk is full or the file is too large ({detail}); "
                                  "nothing was replaced")
            raise EncoderError(f"ffmpeg failed (exit {code}): {message}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    finish_tags(temp, fmt, tags, chapters, rate)
