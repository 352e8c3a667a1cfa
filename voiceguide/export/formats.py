"""Output formats: one registry of what each format is and how it is written."""

from __future__ import annotations

from pathlib import Path

from voiceguide.errors import OptionError

# Spoken word: 44.1 kHz mono at 64 kbit/s is transparent for a voice and small.
DEFAULT_BITRATE = "64k"
# ffmpeg settings per format (MP3 is encoded in-process; its entry here is the benchmark's floor).
FORMAT_ARGS = {
    "mp3": ["-c:a", "libmp3lame", "-id3v2_version", "3", "-write_xing", "1", "-f", "mp3"],
    "m4a": ["-c:a", "aac", "-movflags", "+faststart", "-f", "ipod"],  # MP4 chapters (QuickTime chapter track)
    "ogg": ["-c:a", "libvorbis", "-f", "ogg"],  # Vorbis-comment chapters (CHAPTER001=...)
    "opus": ["-c:a", "libopus", "-ar", "48000", "-f", "opus"],  # Opus runs at 48 kHz; chapters as in ogg
    "flac": ["-c:a", "flac", "-f", "flac"],  # lossless; Vorbis-comment chapters
    "wav": ["-c:a", "pcm_s16le", "-f", "wav"],  # no chapters: WAV has nowhere players read them from
}
FORMATS = tuple(FORMAT_ARGS)
EXTENSIONS = {f".{fmt}": fmt for fmt in FORMATS}
LOSSLESS = {"flac", "wav"}


def format_for(path: Path, fmt: str | None) -> str:
    """The format to write: as given, else from the file's extension, else MP3."""
    if fmt:
        if fmt not in FORMATS:
            raise OptionError(f"--format: unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
        return fmt
    return EXTENSIONS.get(path.suffix.lower(), "mp3")


# MPEG-1 Layer III bitrates (kbit/s), in header index order from 1.
MP3_BITRATES = (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)


def parse_bitrate(bitrate: str) -> int:
    """'64k' or '64' -> 64 (kbit/s), one of the rates MP3 allows."""
    text = bitrate.strip().lower().removesuffix("k")
    if not text.isdigit() or int(text) not in MP3_BITRATES:
        raise OptionError(f"--bitrate: expected one of {', '.join(f'{b}k' for b in MP3_BITRATES)} (got {bitrate!r})")
    return int(text)
