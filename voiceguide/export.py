"""Export: encode the PCM stream with ffmpeg, with tags and chapters, written atomically.

ffmpeg comes from the imageio-ffmpeg wheel (no system install needed) unless
$VOICEGUIDE_FFMPEG names another. The output is encoded to a temporary file
beside the target and renamed into place only when complete, so a failed or
interrupted render never leaves a partial file and never loses the old one.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import signal
import struct
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import IO, Protocol

from voiceguide.errors import EncoderError, OptionError, OutputError, VerifyError
from voiceguide.host import usable_cores
from voiceguide.timeline import Chapter

# Spoken word: 44.1 kHz mono at 64 kbit/s is transparent for a voice and small.
DEFAULT_BITRATE = "64k"
DISK_FULL_SIGNS = ("No space left on device", "File too large", "Disk quota exceeded")
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
                       ("genre", tags.genre), ("comment", tags.comment), ("date", tags.year), ("track", tags.track)):
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


class PcmSource(Protocol):
    """Audio that can be produced in parts (voiceguide.assemble.SessionAudio): lets MP3 encode on every core."""

    @property
    def total(self) -> int: ...

    def chunks(self, start: int = 0, end: int | None = None) -> Iterator[bytes]: ...

    def silences(self) -> list[tuple[int, int]]: ...


def encode(source: Iterable[bytes] | PcmSource, rate: int, output: Path, tags: Tags, chapters: Sequence[Chapter],
           bitrate: str = DEFAULT_BITRATE, fmt: str | None = None, check: Callable[[Path], None] | None = None,
           progress: Callable[[int], None] | None = None, jobs: int | None = None) -> None:
    """Encode mono 16-bit PCM to ``output`` (format from ``fmt`` or the extension); atomic: all or nothing.

    ``source`` is a sequence of PCM chunks, or a PcmSource, which MP3 encodes
    in parallel parts. MP3 is encoded in-process with LAME (lameenc) and tagged
    with mutagen; other formats go through ffmpeg. ``check`` is called on the
    finished temporary file before it is renamed into place; ``progress`` hears
    the number of samples encoded so far.
    """
    fmt = format_for(output, fmt)
    kbps = parse_bitrate(bitrate) if fmt == "mp3" else 0
    if fmt not in LOSSLESS and not re.fullmatch(r"\d{2,3}k?", bitrate.strip().lower()):
        raise OptionError(f"--bitrate: expected kbit/s like 64k (got {bitrate!r})")
    bitrate = bitrate.strip().lower().removesuffix("k") + "k"  # ffmpeg reads a bare 64 as 64 bit/s
    check_writable(output)
    fd, temp_name = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".part")
    os.close(fd)
    temp = Path(temp_name)
    channels = int(getattr(source, "channels", 1))  # 2 when music is mixed in
    counter = _Counter(progress, channels)
    try:
        if fmt == "mp3":
            _encode_mp3(source, rate, temp, tags, chapters, kbps, counter, jobs or usable_cores(), channels)
        else:
            chunks = source.chunks() if hasattr(source, "silences") else source
            _encode_ffmpeg(counter.through(chunks), rate, temp, tags, chapters, bitrate, fmt, output, channels)
        if check is not None:
            check(temp)  # e.g. --verify: a file that fails never replaces the previous one
        os.replace(temp, output)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            raise OutputError(f"{output}: cannot write: the disk is full or the file is too large ({exc.strerror}); "
                              "nothing was replaced") from None
        raise OutputError(f"{output}: cannot write ({exc.strerror})") from None
    finally:
        temp.unlink(missing_ok=True)


class _Counter:
    """Counts samples handed to an encoder, from any thread, and reports the running total."""

    def __init__(self, progress: Callable[[int], None] | None, channels: int = 1) -> None:
        self.progress = progress
        self.frame_bytes = 2 * channels
        self.done = 0
        self.lock = threading.Lock()

    def add(self, samples: int) -> None:
        if self.progress is not None:
            with self.lock:
                self.done += samples
                self.progress(self.done)

    def through(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            yield chunk
            self.add(len(chunk) // self.frame_bytes)


def parse_bitrate(bitrate: str) -> int:
    """'64k' or '64' -> 64 (kbit/s), one of the rates MP3 allows."""
    text = bitrate.strip().lower().removesuffix("k")
    if not text.isdigit() or int(text) not in MP3_BITRATES:
        raise OptionError(f"--bitrate: expected one of {', '.join(f'{b}k' for b in MP3_BITRATES)} (got {bitrate!r})")
    return int(text)


# MPEG-1 Layer III bitrates (kbit/s), in header index order from 1.
MP3_BITRATES = (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
LAME_ENCODER_DELAY = 576  # samples LAME puts before the audio; decoders skip it when the LAME tag says so
LAME_QUALITY = 3  # LAME's own default algorithm quality, as ffmpeg's libmp3lame uses it


FRAME = 1152  # samples per MPEG-1 Layer III frame
MIN_PART_SECONDS = 60  # parts shorter than this are not worth a thread


def _encode_mp3(source: Iterable[bytes] | PcmSource, rate: int, path: Path, tags: Tags, chapters: Sequence[Chapter],
                kbps: int, counter: _Counter, jobs: int, channels: int = 1) -> None:
    """MP3 with an ID3v2.3 tag (chapters + ordered top-level CTOC) and a LAME Info tag for gapless length.

    A PcmSource is cut into parts at silent frame boundaries and the parts are
    encoded on separate cores, then joined. Each part but the last is encoded
    one frame short, so LAME's priming and padding (zeros) exactly fill that
    frame: every part starts where the plan says and the whole decodes to
    exactly the planned number of samples (see _split_points).
    """
    if hasattr(source, "silences"):
        audio: PcmSource = source  # type: ignore[assignment]
        cuts = [0, *_split_points(audio, rate, jobs), audio.total]
        parts = [audio.chunks(a, b - (FRAME if b != audio.total else 0)) for a, b in pairwise(cuts)]
        total = audio.total
    else:
        parts = [iter(source)]  # type: ignore[arg-type]
        total = -1
    path.write_bytes(_id3_tag(tags, chapters, rate))
    info_length = _info_frame_length(kbps, rate, channels)
    with open(path, "r+b") as out:
        out.seek(0, os.SEEK_END)
        info_at = out.tell()
        out.write(bytes(info_length))  # placeholder, filled in at the end
        if len(parts) == 1:
            samples = _encode_part(parts[0], rate, kbps, out, counter, channels=channels)
        else:
            samples = _encode_parallel(parts, rate, kbps, out, counter, path)
        end = out.tell()
        out.seek(info_at + info_length)
        first = out.read(4)
        frames = _count_frames(first, end - info_at - info_length, kbps, rate)
        content = total if total >= 0 else samples  # what a gapless decoder must return
        out.seek(info_at)
        out.write(_info_frame(first, kbps, rate, channels, frames, content, end - info_at))


def _new_encoder(rate: int, kbps: int, channels: int = 1):  # type: ignore[no-untyped-def]
    import lameenc

    encoder = lameenc.Encoder()
    encoder.set_bit_rate(kbps)
    encoder.set_in_sample_rate(rate)
    encoder.set_out_sample_rate(rate)  # else LAME resamples low bit rates (64k stereo -> 24 kHz), breaking the framing
    encoder.set_channels(channels)
    encoder.set_quality(LAME_QUALITY)
    return encoder


class _Stopped(Exception):
    """Another part failed or the render was interrupted: stop encoding this part."""


def _encode_part(chunks: Iterable[bytes], rate: int, kbps: int, out: IO[bytes], counter: _Counter,
                 stop: threading.Event | None = None, channels: int = 1) -> int:
    """Encode one stream of PCM into ``out``; return the number of samples (per channel) encoded."""
    encoder = _new_encoder(rate, kbps, channels)
    frame_bytes = 2 * channels
    samples = 0
    pending: list[bytes] = []
    size = 0
    for chunk in chunks:
        if stop is not None and stop.is_set():
            raise _Stopped
        pending.append(chunk)
        size += len(chunk)
        if size >= 1 << 20:  # hand LAME about a megabyte at a time (it releases the GIL while encoding)
            out.write(encoder.encode(b"".join(pending)))
            samples += size // frame_bytes
            counter.add(size // frame_bytes)
            pending, size = [], 0
    if pending:
        out.write(encoder.encode(b"".join(pending)))
        samples += size // frame_bytes
        counter.add(size // frame_bytes)
    out.write(encoder.flush())
    return samples


def _encode_parallel(parts: list[Iterator[bytes]], rate: int, kbps: int, out: IO[bytes], counter: _Counter,
                     path: Path) -> int:
    """Encode parts on separate threads into temporary files beside ``path``, then append them in order."""
    from concurrent.futures import ThreadPoolExecutor

    temps = [path.with_name(f"{path.name}.{i}") for i in range(len(parts))]
    stop = threading.Event()

    def run(index: int) -> int:
        with open(temps[index], "wb") as handle:
            return _encode_part(parts[index], rate, kbps, handle, counter, stop)

    pool = ThreadPoolExecutor(max_workers=len(parts))
    try:
        samples = sum(pool.map(run, range(len(parts))))
        for temp in temps:
            with open(temp, "rb") as handle:
                shutil.copyfileobj(handle, out, 1 << 20)
        # Each part but the last left out its final (silent) frame; count it as encoded.
        counter.add(FRAME * (len(parts) - 1))
        return samples
    except BaseException:
        stop.set()  # Ctrl-C, SIGTERM or a failed part: the other parts stop at their next chunk
        raise
    finally:
        pool.shutdown(wait=True)
        for temp in temps:
            temp.unlink(missing_ok=True)


def _split_points(audio: PcmSource, rate: int, jobs: int) -> list[int]:
    """Where to cut the session into ``jobs`` parts: frame boundaries inside long silences.

    A cut at sample c needs the frame before it to be silent (it is replaced by
    LAME's zero priming and padding) and some silence around it, so nothing
    audible is near a joint.
    """
    total = audio.total
    parts = min(jobs, total // (MIN_PART_SECONDS * rate))
    if parts < 2:
        return []
    before, after = rate, rate // 2  # silence wanted before and after a cut
    candidates: list[tuple[int, int]] = []
    for start, end in audio.silences():
        low = -(-(start + before) // FRAME) * FRAME  # first frame boundary with enough silence before it
        high = (end - after) // FRAME * FRAME
        if low <= high and low > 0 and high < total:
            candidates.append((low, high))
    cuts: list[int] = []
    for k in range(1, parts):
        target = total * k // parts // FRAME * FRAME  # cuts must fall on frame boundaries
        best = None
        for low, high in candidates:
            point = min(max(target, low), high)
            if best is None or abs(point - target) < abs(best - target):
                best = point
        if best is not None and (not cuts or best > cuts[-1]) and best - (cuts[-1] if cuts else 0) >= FRAME * 2:
            cuts.append(best)
    return cuts


def _count_frames(header: bytes, audio_bytes: int, kbps: int, rate: int) -> int:
    """Frames in a CBR stream: LAME pads frames so they average exactly 144000 * kbps / rate bytes."""
    if len(header) < 4 or header[0] != 0xFF:
        return 0
    return round(audio_bytes * rate / (144 * kbps * 1000))


def _info_frame_length(kbps: int, rate: int, channels: int) -> int:
    needed = 4 + (17 if channels == 1 else 32) + 120 + 36
    return next(144000 * b // rate for b in MP3_BITRATES if b >= kbps and 144000 * b // rate >= needed)


def _info_frame(first_header: bytes, kbps: int, rate: int, channels: int, frames: int, samples: int,
                stream_bytes: int) -> bytes:
    """A LAME 'Info' frame: frame count, byte count, seek table, encoder delay and padding (for gapless players)."""
    length = _info_frame_length(kbps, rate, channels)
    bitrate = next(b for b in MP3_BITRATES if 144000 * b // rate == length)
    header = bytearray(first_header[:4])
    header[2] = (MP3_BITRATES.index(bitrate) + 1) << 4 | (header[2] & 0x0C)  # bitrate index, same rate, no padding
    frame = bytearray(length)
    frame[:4] = header
    at = 4 + (17 if channels == 1 else 32)
    toc = bytes(min(255, i * 256 // 100) for i in range(100))
    xing = b"Info" + struct.pack(">III", 0x0F, frames, stream_bytes) + toc + struct.pack(">I", 0)
    padding = max(0, frames * 1152 - samples - LAME_ENCODER_DELAY)
    lame = b"".join([
        b"LAME3.100",
        bytes([0x01, 0]),  # tag revision 0 / CBR; lowpass unknown
        bytes(8),  # peak amplitude and both replay gains: not measured here
        bytes([0, min(255, kbps)]),  # encoding flags; the (CBR) bitrate
        ((LAME_ENCODER_DELAY << 12) | min(padding, 4095)).to_bytes(3, "big"),  # what gapless decoders trim
        bytes(4),  # misc, mp3 gain, preset
        struct.pack(">I", stream_bytes),  # music length: the Info frame and every audio frame
        bytes(2),  # music CRC: not computed (no decoder checks it)
    ])
    frame[at : at + len(xing)] = xing
    frame[at + len(xing) : at + len(xing) + len(lame)] = lame
    crc_at = at + len(xing) + len(lame)
    frame[crc_at : crc_at + 2] = _crc16(bytes(frame[:crc_at])).to_bytes(2, "big")
    return bytes(frame)


def _crc16(data: bytes) -> int:
    """CRC-16/ARC, the checksum the LAME tag uses."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


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


def run_ffmpeg(command: list[str], chunks: Iterable[bytes], log: IO[bytes]) -> int:
    """Run ffmpeg with ``chunks`` on its stdin and its messages going to ``log``; return its exit code.

    Interrupted (Ctrl-C, SIGTERM) or failing on our side, ffmpeg is killed, never left running.
    """
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
    return process.wait()


def _encode_ffmpeg(chunks: Iterable[bytes], rate: int, temp: Path, tags: Tags, chapters: Sequence[Chapter],
                   bitrate: str, fmt: str, output: Path, channels: int = 1) -> None:
    """Pipe the PCM to ffmpeg for every format but MP3."""
    with tempfile.TemporaryDirectory(prefix="voiceguide-encode-") as work:
        meta = Path(work) / "metadata.txt"
        meta.write_text(ffmetadata(tags, chapters, rate), encoding="utf-8")
        log_path = Path(work) / "ffmpeg.log"
        command = [
            ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
            "-f", "s16le", "-ar", str(rate), "-ac", str(channels), "-i", "pipe:0",
            "-i", str(meta), "-map", "0:a", "-map_metadata", "1", "-map_chapters", "1",
            "-ar", str(rate), "-ac", str(channels), *([] if fmt in LOSSLESS else ["-b:a", bitrate]), *FORMAT_ARGS[fmt],
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
    if fmt in ("ogg", "flac") and chapters:
        _add_vorbis_chapters(temp, fmt, chapters, rate)
    if tags.cover and fmt != "wav":
        _add_cover(temp, fmt, tags)


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
