"""Reading a written file back: its decoded length and its chapters as stored, in stored order."""

from __future__ import annotations

import os
import re
import select
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NamedTuple

from voiceguide.audio.encoded import MP3_DECODER_DELAY, MPEG1_FRAME
from voiceguide.errors import VerifyError
from voiceguide.export.formats import Format, choose_format, get_format, millis
from voiceguide.export.id3 import HEADER, read_syncsafe, stored_chapter_ids, tag_length
from voiceguide.export.mp3frames import LameTag, independent_frame, lame_tag
from voiceguide.export.text import safe_text
from voiceguide.ffmpeg import (
    DECODE_STALL_S,
    ffmpeg_exe,
    file_url,
    filter_graph_path,
    filter_graph_text,
    running_ffmpeg,
)
from voiceguide.host import uncapped_env, usable_cores
from voiceguide.plan.timeline import Chapter

DECODE_FRAME = 65536  # samples per frame handed from the decoding graph to the output (p=0: the last one short)
# glibc's malloc keeps small freed blocks in "fast bins" and merges them all back (malloc_consolidate) before
# each large allocation: the decoding graph frees small per-frame structures and allocates a DECODE_FRAME
# buffer for every 57 MP3 frames, and that merging was a few per cent of the decoding. Without fast bins
# 40 minutes decode in 0.75 s instead of 0.79 (medians of 7; other C libraries ignore the variable).
NO_FAST_BINS = "glibc.malloc.mxfast=0"
LIST_TIMEOUT_S = 60  # ffmpeg's demuxer reads a file's head to list its chapters: far longer than that is a hang
# An MP3 at least this long is decoded in two halves at once (on two cores): 40 minutes, 0.76 s -> 0.57 s. Shorter
# ones are not worth the second input.
PARTS_MIN_SECONDS = 60


class StoredChapter(NamedTuple):
    """A chapter as a file stores it: start and end in seconds, and its title."""

    start: float
    end: float
    title: str


@dataclass(frozen=True)
class Probe:
    """What a written file decodes to: its length in samples at ``rate`` and its chapters in stored order."""

    samples: int
    chapters: tuple[StoredChapter, ...]
    rate: int


def probe(path: Path, rate: int, fmt: str | Format | None = None) -> Probe:
    """Decode ``path`` at the rate its format stores (streaming, flat memory) and read its chapters back.

    ``fmt`` defaults to the one ``path``'s extension names; Opus is decoded at
    48 kHz, the rest at ``rate``, so no resampler blurs the count. A long MP3
    with a LAME tag is decoded in two halves at once where a core is free (see
    decoding_cut): the length is what the two decoders return, less the padding
    the tag asks a gapless decoder to drop from the end, as ffmpeg drops it.
    """
    chosen = choose_format(path) if fmt is None else get_format(fmt)
    stored_rate = chosen.file_rate(rate)
    _check_decodable(Path(path))
    cut = _find_cut(path, stored_rate) if chosen.name == "mp3" else None
    if cut is None:
        total = _decode(path, [filter_graph_path(path)], stored_rate)[0]
    else:
        url = file_url(path)
        first, second = _decode(path, [filter_graph_text(f"subfile,,start,0,end,{cut.at},,:{url}"),
                                       filter_graph_text(f"subfile,,start,{cut.at},end,{cut.size},,:{url}")
                                       + ":format_name=mp3"], stored_rate)
        skipped = cut.tag.start_pad + MP3_DECODER_DELAY
        if (first + skipped) % MPEG1_FRAME or second % MPEG1_FRAME:  # each decoded frame is 1152 samples
            raise VerifyError(f"{path}: cannot be decoded: its halves decode to {first} and {second} samples, "
                              f"not whole frames")
        total = first + second - cut.tag.end_trim((first + skipped) // MPEG1_FRAME, second // MPEG1_FRAME)
    return Probe(total, read_chapters(path), stored_rate)


@dataclass(frozen=True)
class Cut:
    """Where an MP3 file is cut to be decoded in two halves: byte ``at`` of ``size``, under LAME tag ``tag``."""

    at: int
    size: int
    tag: LameTag


def decoding_cut(path: Path, rate: int) -> Cut | None:
    """Where ``path`` (an MP3 at ``rate``) can be cut to be decoded in two halves at once, or None: decoded whole.

    Only where it pays and is exact: two cores or more, a file at least PARTS_MIN_SECONDS long whose LAME tag
    counts its frames and its bytes (those of the file), and a frame near the middle that borrows nothing from
    the frames before it (a decoder started there needs nothing earlier: our silent frames, and the first
    frame of each part LAME encoded, are such frames). VerifyError for what is not a readable file."""
    _check_decodable(Path(path))  # a FIFO would block the open for ever
    return _find_cut(path, rate)


def _find_cut(path: Path, rate: int) -> Cut | None:
    """decoding_cut of a path already checked."""
    if usable_cores() < 2:
        return None
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            at = tag_length(handle.read(HEADER))
            handle.seek(at)
            first = handle.read(4096)  # the tag's frame: 104 to 1441 bytes
            tag = lame_tag(first, at, size)
            if tag is None or tag.rate != rate or tag.frames * MPEG1_FRAME < PARTS_MIN_SECONDS * rate:
                return None
            cut = independent_frame(handle, tag.audio_at + (size - tag.audio_at) // 2, size, first[:4])
    except OSError as exc:
        raise VerifyError(f"{path}: cannot be read ({exc.strerror})") from None
    return None if cut is None else Cut(cut, size, tag)


def _decode(path: Path, sources: Sequence[str], rate: int) -> list[int]:
    """Decode each of ``sources`` (amovie file names, escaped) to mono 16-bit samples at ``rate`` in one ffmpeg,
    each its own decoding thread and its own pipe, and return how many samples each gave (VerifyError if ffmpeg
    says anything or fails; killed and reaped if it hangs or we are interrupted)."""
    # Decoded inside the filter graph (amovie), handed on in frames of DECODE_FRAME samples: ffmpeg's usual
    # path (-i) passes every 1152-sample MP3 frame between its demuxer, decoder, filter and muxer threads,
    # and those hand-offs (1.6 million futex calls at 40 minutes) took longer than the decoding. The samples are
    # made mono 16-bit there too (not in a second graph by -ac/-ar): 40 minutes of MP3, 2.1 s -> 0.8 s.
    # One decoding thread a source: amovie with FLAC's frame-threaded decoder crashed ffmpeg 9 in 10 of 40 runs.
    # Each source is an input of its own (decoded on a thread of its own) with an output of its own: one ffmpeg,
    # not two, as a second process would add its own 35 MB to the process tree.
    command = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin"]
    pipes = [os.pipe() for _ in sources[1:]]  # after anything that may fail before the try below closes them
    for source in sources:
        command += ["-f", "lavfi", "-i", f"amovie=filename={source}:dec_threads=1,"
                                         f"aformat=sample_fmts=s16:channel_layouts=mono:sample_rates={rate},"
                                         f"asetnsamples=n={DECODE_FRAME}:p=0"]
    for index, target in enumerate(["pipe:1", *(f"pipe:{write}" for _, write in pipes)]):
        command += ["-map", str(index), "-f", "s16le", "-c:a", "pcm_s16le", target]
    try:
        totals = _read_outputs(path, command, [read for read, _ in pipes], [write for _, write in pipes])
    finally:
        for read, _ in pipes:
            os.close(read)
    return [total // 2 for total in totals]


def _read_outputs(path: Path, command: list[str], reads: list[int], writes: list[int]) -> list[int]:
    """Run the decoding ``command`` and count the bytes of each output: its stdout, then the pipes whose ends are
    ``reads`` (``writes`` go to ffmpeg, and are closed here once it has them)."""
    # ffmpeg's messages go to a file, not a pipe: a damaged file makes it log a line per bad frame, which
    # would fill a pipe nobody reads while we read the samples, and both would wait for ever.
    with tempfile.TemporaryFile() as log:
        # Killed and reaped on a hang or Ctrl-C (even as it starts), never left running.
        with _running(command, log, env=decoding_env(), pass_fds=writes) as process:
            assert process.stdout is not None
            readers = {process.stdout.fileno(): 0, **{read: index for index, read in enumerate(reads, 1)}}
            totals = [0] * len(readers)
            buffer = bytearray(1 << 20)  # read into one buffer: no new bytes object per read
            while readers:
                # Nothing at all for DECODE_STALL_S: ffmpeg hangs (stopped, or a file system that does not
                # answer); it is killed rather than waited for.
                ready = select.select(list(readers), [], [], DECODE_STALL_S)[0]
                if not ready:
                    raise VerifyError(f"{path}: ffmpeg stopped decoding (nothing for {DECODE_STALL_S} s)")
                for fd in ready:
                    count = os.readv(fd, [buffer])
                    if count:
                        totals[readers[fd]] += count
                    else:
                        del readers[fd]
        log.seek(0)
        error = log.read().decode(errors="replace").strip()
    # Any message counts: the graph's decoder stops at the first bad frame and ffmpeg still exits with 0.
    if process.returncode != 0 or error:
        why = error.splitlines()[-1] if error else f"ffmpeg failed (exit {process.returncode})"
        raise VerifyError(f"{path}: cannot be decoded: {why}")
    return totals


def decoding_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: ours) for the decoding ffmpeg: glibc's malloc without fast bins (NO_FAST_BINS), added
    to any tunables already set unless they set that one themselves, and without render's heap cap."""
    env = dict(os.environ if env is None else env)
    tunables = env.get("GLIBC_TUNABLES", "")
    if "glibc.malloc.mxfast=" not in tunables:
        env["GLIBC_TUNABLES"] = f"{tunables}:{NO_FAST_BINS}" if tunables else NO_FAST_BINS
    return uncapped_env(env)  # its decoding threads run faster on heaps of their own


def _running(command: list[str], log: IO[bytes] | int, **options: Any) -> AbstractContextManager[subprocess.Popen[bytes]]:
    """ffmpeg reading the file back for the length of a block, its output on a pipe (VerifyError if it cannot be
    run; see running_ffmpeg)."""
    return running_ffmpeg(command, log, stdout=subprocess.PIPE, error=VerifyError, doing="to check the file", **options)


def _check_decodable(path: Path) -> None:
    """VerifyError unless ``path`` is a regular file: a FIFO would block ffmpeg's open for ever, a device never end."""
    if not path.is_file():
        raise VerifyError(f"{path}: not a file that can be decoded ({_kind(path)})")


def _kind(path: Path) -> str:
    """What ``path`` is, in a word, for a message."""
    if not path.exists():
        return "missing"
    if path.is_dir():
        return "a folder"
    return "a FIFO" if path.is_fifo() else "a device or socket"


def read_chapters(path: Path) -> tuple[StoredChapter, ...]:
    """Chapters as stored in the file, in the order they are stored (never sorted here).

    ID3 CHAP frames are taken in the order of their bytes in the tag, Vorbis
    comments in the order of the comment list; anything else (MP4) as ffmpeg's
    demuxer lists them. VerifyError for what is not a readable file (a FIFO would block the open for ever).
    """
    _check_decodable(Path(path))
    try:
        with open(path, "rb") as handle:
            head = handle.read(HEADER)
            if head[:3] == b"ID3":
                return _id3_chapters(path, head + handle.read(read_syncsafe(head[6:10])))
    except OSError as exc:
        raise VerifyError(f"{path}: cannot be read ({exc.strerror})") from None
    vorbis = _vorbis_chapters(path)
    return vorbis if vorbis is not None else demuxed_chapters(path)


def _id3_chapters(path: Path, tag: bytes) -> tuple[StoredChapter, ...]:
    from mutagen.id3 import ID3, ID3NoHeaderError

    try:
        frames = {f.element_id: f for f in ID3(path).getall("CHAP")}
    except (ID3NoHeaderError, OSError, ValueError):
        return ()
    found = [frames[i] for i in stored_chapter_ids(tag) if i in frames]
    return tuple(StoredChapter(f.start_time / 1000, f.end_time / 1000, str(f.sub_frames.get("TIT2", "")))
                 for f in found)


def _vorbis_chapters(path: Path) -> tuple[StoredChapter, ...] | None:
    """CHAPTERnnn comments in stored order (None when the file has no Vorbis comments)."""
    import mutagen
    from mutagen.flac import FLAC
    from mutagen.oggopus import OggOpus
    from mutagen.oggvorbis import OggVorbis

    try:
        audio: Any = mutagen.File(path)
    except (mutagen.MutagenError, OSError):
        return None
    if not isinstance(audio, (FLAC, OggOpus, OggVorbis)) or audio.tags is None:
        return None  # MP4 atoms, RIFF: no Vorbis comments
    starts: dict[str, float] = {}
    names: dict[str, str] = {}
    for key, value in list(audio.tags):  # type: ignore[arg-type]  # a Vorbis comment block: (key, value) pairs
        match = re.fullmatch(r"CHAPTER(\d+)(NAME)?", key.upper())
        clock = re.fullmatch(r"(\d+):(\d\d):(\d\d)\.(\d{3})", value)
        if match and match[2]:
            names[match[1]] = value
        elif match and clock:
            hours, minutes, seconds, ms = (int(x) for x in clock.groups())
            starts[match[1]] = (hours * 3_600_000 + minutes * 60_000 + seconds * 1000 + ms) / 1000
    order = list(starts)
    if not order:
        return ()  # comments, but no chapter times (a file from elsewhere, or only CHAPTERnnnNAME)
    ends = [*(starts[n] for n in order[1:]), float(audio.info.length)]
    return tuple(StoredChapter(starts[n], end, names.get(n, "")) for n, end in zip(order, ends, strict=True))


def demuxed_chapters(path: Path) -> tuple[StoredChapter, ...]:
    """Chapters as ffmpeg's demuxer (and so ffprobe) lists them, at their stored times (-copyts: no shift).

    VerifyError if ffmpeg cannot be run or takes more than LIST_TIMEOUT_S; interrupted, it is killed."""
    _check_decodable(Path(path))
    with _running(_demux_command(path), subprocess.DEVNULL) as demuxer:  # timed out or interrupted: killed, reaped
        try:
            return _parse_ffmetadata(demuxer.communicate(timeout=LIST_TIMEOUT_S)[0])
        except subprocess.TimeoutExpired:
            raise VerifyError(f"{path}: ffmpeg did not list its chapters within {LIST_TIMEOUT_S} s") from None


def _demux_command(path: Path) -> list[str]:
    return [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-copyts", "-i", str(path),
            "-f", "ffmetadata", "pipe:1"]


def _parse_ffmetadata(output: bytes) -> tuple[StoredChapter, ...]:
    """The chapters of ffmpeg's ffmetadata output, in its order."""
    meta = output.decode("utf-8", errors="replace")
    chapters: list[StoredChapter] = []
    current: dict[str, str] | None = None
    for line in [*meta.splitlines(), "[END]"]:
        if line.startswith("["):
            if current is not None:
                num, _, den = current.get("TIMEBASE", "1/1000").partition("/")
                unit = int(num) / int(den or 1)
                chapters.append(StoredChapter(int(current.get("START", 0)) * unit, int(current.get("END", 0)) * unit,
                                              re.sub(r"\\(.)", r"\1", current.get("title", ""))))
            current = {} if line == "[CHAPTER]" else None
        elif current is not None and "=" in line:
            key, _, value = line.partition("=")
            current[key] = value
    return tuple(chapters)


def verify(path: Path, rate: int, total: int, chapters: Sequence[Chapter], fmt: str | Format | None = None) -> Probe:
    """Raise VerifyError unless ``path`` decodes to exactly the plan's length with exactly its chapters.

    The length is compared at the rate the format stores, to the sample (MP3's
    LAME tag makes decoders trim exactly; Opus holds the 48 kHz length rounded
    up). Chapters are compared in stored order, start and title, to the
    millisecond, as stored and as ffmpeg's demuxer reads them; a format that
    holds no chapters (WAV) must have none.
    """
    chosen = choose_format(path) if fmt is None else get_format(fmt)
    found = probe(path, rate, chosen)
    # After the decoding, not beside it: the two ffmpegs together took the tree to 97 MB for 16 ms.
    listed = demuxed_chapters(path)
    expected = chosen.file_samples(total, rate)
    if found.samples != expected:
        raise VerifyError(f"{path}: decodes to {found.samples / found.rate:.3f} s ({found.samples} samples) "
                          f"but the plan is {total / rate:.3f} s ({expected} samples)")
    wanted = [(millis(c.start, rate), safe_text(c.title)) for c in chapters] if chosen.holds_chapters else []
    for reader, stored in (("stored", found.chapters), ("ffmpeg", listed)):
        got = [(round(c.start * 1000), c.title) for c in stored]
        if got != wanted:
            raise VerifyError(f"{path}: has {len(got)} chapters ({reader}), the plan has {len(wanted)} "
                              f"(first difference: {_first_difference(got, wanted)})")
    return found


def _first_difference(found: list[tuple[int, str]], wanted: list[tuple[int, str]]) -> str:
    for got, want in zip(found, wanted, strict=False):
        if got != want:
            return f"{got[1]!r} at {got[0] / 1000:.3f} s instead of {want[1]!r} at {want[0] / 1000:.3f} s"
    return "missing" if len(found) < len(wanted) else "extra chapters"
