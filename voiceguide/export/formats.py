"""Output formats: one registry of what each format is and how it is written.

Adding a format is one ``Format`` entry here (plus a writer function if it
stores chapters or covers in a way no other format does). Everything else in
the package asks the registry instead of comparing format names.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from voiceguide.errors import OptionError


class Encoder(enum.Enum):
    """What turns PCM into the file."""

    LAME = "lame"  # in-process, on every core (voiceguide.export.mp3)
    FFMPEG = "ffmpeg"  # piped to ffmpeg (voiceguide.export.encode)


class ChapterKind(enum.Enum):
    """Where a format keeps chapters, and so who writes them."""

    ID3 = "id3"  # CHAP frames under an ordered top-level CTOC, written by us in time order
    FFMETADATA = "ffmetadata"  # ffmpeg writes them from its metadata file (MP4 chapter track)
    VORBIS = "vorbis"  # CHAPTER000=00:01:02.345 comments, written by us with mutagen (exact milliseconds)
    NONE = "none"  # the format has nowhere players read chapters from


class CoverKind(enum.Enum):
    """How a format embeds cover art."""

    ID3 = "id3"  # an APIC frame, part of the ID3 tag
    MP4 = "mp4"  # a covr atom
    FLAC = "flac"  # a FLAC picture block
    VORBIS = "vorbis"  # a base64 FLAC picture block in a METADATA_BLOCK_PICTURE comment
    NONE = "none"


# MPEG-1 Layer III bitrates (kbit/s), in header index order from 1.
MP3_BITRATES = (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
# Spoken word: 64 kbit/s a channel (AAC, Vorbis and Opus are transparent for a voice there), 128 kbit/s for
# stereo with music. MP3 mono is 96k: at 64k LAME's coding noise in the 9-15 kHz band overshot the true
# peak of a limited voice by up to 2.5 dB (Piper's psoas: a -2.8 dBFS sample-peak ceiling decoded at
# -0.1 dBTP), and each correction lowered the ceiling, limited harder and made it worse; at 96k the same
# PCM decodes at -2.5 dBTP, for the same encoding time (measured: 1.65-1.8 CPU-s either way, 9 minutes).
DEFAULT_KBPS_PER_CHANNEL = 64


def _frozen(mapping: Mapping[int, tuple[int, int]]) -> Mapping[int, tuple[int, int]]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class Format:
    """One output format: its names, how it is encoded and where its tags, chapters and cover go."""

    name: str
    extensions: tuple[str, ...]  # the first is the one default file names get
    mime: str
    encoder: Encoder
    codec_args: tuple[str, ...]  # ffmpeg's codec and muxer (MP3's entry is what the benchmark compares against)
    chapters: ChapterKind
    cover: CoverKind
    lossless: bool = False
    # kbit/s the encoder accepts at 44.1 kHz, (lowest, highest) by channel count; empty for lossless formats.
    bitrate_ranges: Mapping[int, tuple[int, int]] = field(default_factory=lambda: _frozen({}))
    allowed_bitrates: tuple[int, ...] = ()  # when only some rates in the range exist (MP3's frame header)
    sample_rate: int | None = None  # the rate the file stores, if the format imposes one (Opus: 48 kHz)
    # kbit/s when none is asked for, by channel count (lossy formats; DEFAULT_KBPS_PER_CHANNEL if absent)
    default_bitrates: Mapping[int, int] = field(default_factory=lambda: MappingProxyType({}))

    def default_kbps(self, channels: int = 1) -> int | None:
        """The bit rate used when none is asked for (None for a lossless format)."""
        if self.lossless:
            return None
        return self.default_bitrates.get(channels, DEFAULT_KBPS_PER_CHANNEL * channels)

    @property
    def extension(self) -> str:
        """The extension default file names get."""
        return self.extensions[0]

    @property
    def holds_chapters(self) -> bool:
        """Whether players can read chapters from this format (WAV: no)."""
        return self.chapters is not ChapterKind.NONE

    def file_rate(self, rate: int) -> int:
        """The sample rate the file stores for a session at ``rate``."""
        return self.sample_rate or rate

    def file_samples(self, samples: int, rate: int) -> int:
        """How many samples (at ``file_rate``) a session of ``samples`` at ``rate`` becomes in this format.

        Resampling rounds up: 4 s + 37 samples at 44.1 kHz are 192,041 samples
        at 48 kHz (192,040.27 exactly), as ffmpeg's resampler writes them.
        """
        stored = self.file_rate(rate)
        return samples if stored == rate else -(-samples * stored // rate)


REGISTRY: tuple[Format, ...] = (
    Format("mp3", (".mp3",), "audio/mpeg", Encoder.LAME,
           ("-c:a", "libmp3lame", "-id3v2_version", "3", "-write_xing", "1", "-f", "mp3"),
           ChapterKind.ID3, CoverKind.ID3,
           bitrate_ranges=_frozen({1: (32, 320), 2: (32, 320)}), allowed_bitrates=MP3_BITRATES,
           default_bitrates=MappingProxyType({1: 96, 2: 128})),
    Format("m4a", (".m4a", ".m4b"), "audio/mp4", Encoder.FFMPEG,
           ("-c:a", "aac", "-movflags", "+faststart", "-f", "ipod"),  # MP4 chapters (QuickTime chapter track)
           ChapterKind.FFMETADATA, CoverKind.MP4,
           # ffmpeg's AAC clamps above 6144 bits per frame and channel (264 kbit/s at 44.1 kHz)
           bitrate_ranges=_frozen({1: (8, 264), 2: (16, 528)})),
    Format("ogg", (".ogg", ".oga"), "audio/ogg", Encoder.FFMPEG, ("-c:a", "libvorbis", "-f", "ogg"),
           ChapterKind.VORBIS, CoverKind.VORBIS,
           bitrate_ranges=_frozen({1: (32, 240), 2: (45, 500)})),  # libvorbis refuses anything outside these
    Format("opus", (".opus",), "audio/ogg; codecs=opus", Encoder.FFMPEG, ("-c:a", "libopus", "-f", "opus"),
           ChapterKind.VORBIS, CoverKind.VORBIS,
           bitrate_ranges=_frozen({1: (6, 256), 2: (12, 512)}), sample_rate=48000),  # libopus: up to 256k a channel
    Format("flac", (".flac",), "audio/flac", Encoder.FFMPEG, ("-c:a", "flac", "-f", "flac"),
           ChapterKind.VORBIS, CoverKind.FLAC, lossless=True),
    Format("wav", (".wav",), "audio/wav", Encoder.FFMPEG, ("-c:a", "pcm_s16le", "-f", "wav"),
           ChapterKind.NONE, CoverKind.NONE, lossless=True),
)
FORMATS: Mapping[str, Format] = MappingProxyType({f.name: f for f in REGISTRY})
EXTENSIONS: Mapping[str, Format] = MappingProxyType({ext: f for f in REGISTRY for ext in f.extensions})
NAMES = tuple(FORMATS)


def _choices() -> str:
    return ", ".join(f"{f.name} ({'/'.join(f.extensions)})" for f in REGISTRY)


def get_format(name: str | Format) -> Format:
    """The registry entry for a format name (OptionError, listing the formats, for an unknown one)."""
    if isinstance(name, Format):
        return name
    found = FORMATS.get(str(name).strip().lower()) if isinstance(name, str) else None
    if found is None:
        raise OptionError(f"--format: unknown format {name!r} (choose from {', '.join(NAMES)})")
    return found


def choose_format(path: Path | str, name: str | Format | None = None) -> Format:
    """The format to write ``path`` in: the one its extension names, which ``name`` (if given) must agree with.

    A file name is the user's promise of what the file is: writing Ogg into
    ``x.m4a`` (or MP3 into ``out.xyz``) would break it, so a contradiction or an
    unknown extension is an OptionError listing the formats.
    """
    chosen = None if name is None else get_format(name)
    suffix = Path(path).suffix.lower()
    named = EXTENSIONS.get(suffix)
    if named is None:
        what = f"has an unknown extension {suffix!r}" if suffix else "has no extension"
        raise OptionError(f"{path}: {what}; name the file for one of the formats: {_choices()}")
    if chosen is not None and chosen is not named:
        raise OptionError(f"{path}: --format {chosen.name} contradicts the file's extension {suffix!r} ({named.name}); "
                          f"drop one of them (formats: {_choices()})")
    return named


def parse_bitrate(bitrate: str | int) -> int:
    """'64k', '64K' or '64' (or the int 64) -> 64 kbit/s; OptionError for anything else ('00k', '', '6.4k')."""
    if isinstance(bitrate, bool) or not isinstance(bitrate, (str, int)):
        raise OptionError(f"--bitrate: expected kbit/s like 64k (got {bitrate!r})")
    text = str(bitrate).strip().lower().removesuffix("k")
    if not re.fullmatch(r"[1-9][0-9]{0,3}", text):
        raise OptionError(f"--bitrate: expected kbit/s like 64k (got {bitrate!r})")
    return int(text)


def check_bitrate(fmt: str | Format, bitrate: str | int | None, channels: int = 1) -> int | None:
    """The bit rate (kbit/s) to encode ``fmt`` at: ``bitrate`` if the encoder accepts it, else OptionError.

    None means the format's default (``Format.default_kbps``). Lossless formats take none (None),
    and refuse one that is given rather than ignore it.
    """
    fmt = get_format(fmt)
    if fmt.lossless:
        if bitrate is not None:
            raise OptionError(f"--bitrate: {fmt.name} is lossless and has no bit rate (got {bitrate!r})")
        return None
    low, high = fmt.bitrate_ranges[min(max(channels, 1), 2)]
    kbps = (fmt.default_kbps(channels) or DEFAULT_KBPS_PER_CHANNEL * channels) if bitrate is None \
        else parse_bitrate(bitrate)
    allowed = [b for b in fmt.allowed_bitrates if low <= b <= high]
    if allowed and kbps not in allowed:
        raise OptionError(f"--bitrate: {fmt.name} takes one of {', '.join(f'{b}k' for b in allowed)} (got {bitrate!r})")
    if not low <= kbps <= high:
        layout = "mono" if channels == 1 else "stereo (with music)"
        raise OptionError(f"--bitrate: {fmt.name} {layout} takes {low}k to {high}k (got {bitrate!r})")
    return kbps


def millis(samples: int, rate: int) -> int:
    """A sample position in whole milliseconds, rounded half up (the resolution chapters are stored at)."""
    return (2 * samples * 1000 + rate) // (2 * rate)

