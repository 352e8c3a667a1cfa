"""Background music: looped or trimmed to the session, faded in and out, ducked under every spoken line.

Music files are checked and measured before any work (any format ffmpeg
decodes), levelled so the bed sits a set number of dB under the voice, and
streamed (never held in memory). The ducking envelope comes from the plan,
not from listening to the voice: the music is already down when a line
starts (150 ms ahead), stays down while it is said, and comes back up over
half a second after it, moving in millisecond steps, so it never pumps.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import math
import os
import re
import select
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISREG
from typing import Any

from voiceguide.audio.assemble import AudioPart
from voiceguide.audio.loudness import DISCARD, ebur128_filter
from voiceguide.errors import EncoderError, OptionError
from voiceguide.ffmpeg import DECODE_STALL_S, ffmpeg_exe, file_url, running_ffmpeg
from voiceguide.host import load_audioop, recall, remember
from voiceguide.plan.timeline import RATE, Plan

ATTACK = 0.15  # seconds the music starts going down before a line
RELEASE = 0.5  # seconds it takes to come back up after one
FADE_IN, FADE_OUT = 3.0, 5.0
STEREO_DB = 10 * math.log10(2)  # mono voice on both channels measures this much louder (BS.1770 sums channels)
MEASURE_SECONDS = 180  # loudness of a music file is measured on its first three minutes
MEASURE_TIMEOUT_S = 120  # measuring those three minutes takes a second or two: this long means ffmpeg hangs
READ_BYTES = 1 << 18  # the most one read of the decoded music takes


@dataclass(frozen=True)
class Track:
    """A music file, measured: its length and integrated loudness."""

    path: Path
    seconds: float
    loudness: float


def measure_track(path: Path, cache_folder: Path | None = None) -> Track:
    """Check that ``path`` is decodable audio and measure it; OptionError (exit 2) if it is not."""
    try:
        stat = path.stat()
    except OSError as exc:
        raise OptionError(f"--music: {path}: {exc.strerror or 'cannot be read'}") from None
    if not S_ISREG(stat.st_mode):  # a FIFO or a device would hang ffmpeg or never end
        raise OptionError(f"--music: {path}: not a regular file (a folder, pipe or device)")
    key = hashlib.sha256(json.dumps([str(path.resolve()), stat.st_size, stat.st_mtime_ns]).encode()).hexdigest()
    known = recall(cache_folder, "music", key)
    if known is not None:
        try:
            data = json.loads(known)
            return Track(path, float(data["seconds"]), float(data["loudness"]))
        except (ValueError, KeyError, TypeError):
            pass  # unreadable: measure afresh
    code, messages = _measured(path)
    duration = re.search(r"Duration: (\d+):(\d+):([\d.]+)", messages)
    integrated = re.findall(r"I:\s+(-?[\d.]+) LUFS", messages)
    if code != 0 or not duration or not integrated:
        last = (messages.strip().splitlines() or ["not audio"])[-1]
        raise OptionError(f"--music: {path}: cannot be read as audio ({last})")
    hours, minutes, seconds = duration.groups()
    track = Track(path, int(hours) * 3600 + int(minutes) * 60 + float(seconds), float(integrated[-1]))
    if track.seconds < 1 or math.isinf(track.loudness) or track.loudness < -60:
        raise OptionError(f"--music: {path}: silent or shorter than a second")
    remember(cache_folder, "music", key, json.dumps({"seconds": track.seconds, "loudness": track.loudness}).encode())
    return track


def _measured(path: Path) -> tuple[int, str]:
    """ffmpeg's exit code and messages, measuring the first MEASURE_SECONDS of ``path``: killed and reaped on
    Ctrl-C (even as it starts) and after MEASURE_TIMEOUT_S (OptionError), never left running."""
    command = [ffmpeg_exe(), "-hide_banner", "-nostats", "-i", file_url(path), "-vn", "-ac", "2", "-ar", str(RATE),
               "-af", f"atrim=end={MEASURE_SECONDS},{ebur128_filter()},{DISCARD}", "-f", "null", "-"]
    # The messages come through a pipe read while waiting (a few lines: ebur128's summary), not a temporary file,
    # which a full temporary folder would leave empty, and the file blamed for it.
    with running_ffmpeg(command, subprocess.PIPE, doing="to measure the music") as process:
        try:
            _, messages = process.communicate(timeout=MEASURE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise OptionError(f"--music: {path}: ffmpeg did not finish measuring it in {MEASURE_TIMEOUT_S} s "
                              "(a file system that does not answer?)") from None
    return process.returncode, messages.decode(errors="replace")


def _duck_spans(plan: Plan) -> list[tuple[int, int]]:
    """Sample ranges (with attack and release) where someone speaks, merged."""
    attack, release = round(ATTACK * plan.rate), round(RELEASE * plan.rate)
    spans: list[tuple[int, int]] = []
    for event in plan.speech():
        start, end = max(0, event.start - attack), min(plan.total, event.end + release)
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], end))
        else:
            spans.append((start, end))
    return spans


def _read_decoded(fd: int, count: int, path: Path) -> Iterator[bytes]:
    """``count`` bytes from the decoder's pipe ``fd`` (fewer if the file ends first) in pieces of READ_BYTES,
    the last one shorter: the same pieces however the pipe hands them on (``chunks`` steps its fades and ducking
    by what it has, so the pieces decide the samples). EncoderError if nothing comes for DECODE_STALL_S (a
    decoder stuck on a file system that does not answer), so the caller stops it instead of waiting for ever."""
    buffer = bytearray(READ_BYTES)
    view = memoryview(buffer)
    while count > 0:
        want, filled = min(count, READ_BYTES), 0
        while filled < want:
            if not select.select([fd], [], [], DECODE_STALL_S)[0]:
                raise EncoderError(f"--music: {path}: ffmpeg stopped decoding it (nothing for {DECODE_STALL_S} s)")
            got = os.readv(fd, [view[filled:want]])
            if not got:
                break  # the file ended before it said it would
            filled += got
        if filled:
            yield bytes(view[:filled])
        if filled < want:
            return
        count -= filled


class MusicBed:
    """The music for a plan: decoded on demand from any sample, levelled, faded and ducked."""

    def __init__(self, plan: Plan, tracks: Sequence[Track], level: float, duck_db: float) -> None:
        self.plan = plan
        self.tracks = list(tracks)
        self.level = level  # LUFS the bed plays at when nobody speaks
        self.duck = 10 ** (-duck_db / 20)
        self.spans = _duck_spans(plan)
        self.starts = [start for start, _ in self.spans]
        self.cycle = sum(round(t.seconds * plan.rate) for t in self.tracks)

    def _decoded(self, start: int, end: int) -> Iterator[bytes]:
        """Stereo 16-bit music for session samples start..end: the tracks in turn, looped, each levelled."""
        rate = self.plan.rate
        position = start % self.cycle
        remaining = end - start
        index = 0
        while position >= round(self.tracks[index].seconds * rate):
            position -= round(self.tracks[index].seconds * rate)
            index += 1
        while remaining > 0:
            track = self.tracks[index]
            length = round(track.seconds * rate)
            take = min(remaining, length - position)
            gain = self.level - track.loudness
            command = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-ss", f"{position / rate:.6f}", "-i",
                       file_url(track.path),
                       "-vn", "-ac", "2", "-ar", str(rate), "-af", f"volume={gain:.2f}dB", "-f", "s16le", "pipe:1"]
            # Never left running: stopped and reaped if the encoding stops or is interrupted while it decodes, or
            # as it starts (running_ffmpeg), killed once enough is read (the rest of the track is not wanted).
            with running_ffmpeg(command, subprocess.DEVNULL, stdout=subprocess.PIPE, doing="to decode the music") \
                    as process:
                assert process.stdout is not None
                left = take * 4
                for data in _read_decoded(process.stdout.fileno(), left, track.path):
                    left -= len(data)
                    yield data
                process.kill()
            if left > 0:
                yield bytes(left)  # a file shorter than it claimed: silence, never a shifted timeline
            remaining -= take
            position = 0
            index = (index + 1) % len(self.tracks)

    def gain_at(self, sample: int) -> float:
        """The bed's gain (fades times ducking) at one sample."""
        rate, total = self.plan.rate, self.plan.total
        gain = min(1.0, sample / (FADE_IN * rate), max(0.0, (total - sample) / (FADE_OUT * rate)))
        attack, release = round(ATTACK * rate), round(RELEASE * rate)
        index = bisect.bisect_right(self.starts, sample) - 1
        if index >= 0:
            start, end = self.spans[index]
            if sample < end:
                if sample < start + attack and start > 0:
                    depth = (sample - start) / attack
                elif sample >= end - release:
                    depth = (end - sample) / release
                else:
                    depth = 1.0
                gain *= self.duck**depth  # linear in dB: a smooth, even glide
        return gain

    def _regions(self) -> list[tuple[int, int, float | None]]:
        """The session as (start, end, gain) runs where the gain is steady, and (start, end, None) where it moves."""
        rate, total = self.plan.rate, self.plan.total
        attack, release = round(ATTACK * rate), round(RELEASE * rate)
        moving = [(0, min(total, round(FADE_IN * rate))), (max(0, total - round(FADE_OUT * rate)), total)]
        for start, end in self.spans:
            if start > 0:
                moving.append((start, min(end, start + attack)))
            moving.append((max(start, end - release), end))
        moving.sort()
        merged: list[tuple[int, int]] = []
        for start, end in moving:
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            elif end > start:
                merged.append((start, end))
        regions: list[tuple[int, int, float | None]] = []
        cursor = 0
        for start, end in merged:
            if start > cursor:
                regions.append((cursor, start, self.gain_at((cursor + start) // 2)))
            regions.append((start, end, None))
            cursor = end
        if cursor < total:
            regions.append((cursor, total, self.gain_at((cursor + total) // 2)))
        return regions

    def chunks(self, start: int, end: int, block: int = 44) -> Iterator[bytes]:
        """Samples start..end of the bed, with fades and ducking: one multiply per steady run, ms steps elsewhere."""
        audioop = load_audioop()
        regions = self._regions()
        index = max(0, bisect.bisect_right([r[0] for r in regions], start) - 1)
        cursor = start
        pending = b""
        for data in self._decoded(start, end):
            pending += data
            out: list[bytes] = []
            at = 0  # bytes of pending already used
            available = len(pending) // 4
            while available > 0 and index < len(regions):
                _, region_end, gain = regions[index]
                if cursor >= region_end:
                    index += 1
                    continue
                if gain is not None:
                    count = min(region_end - cursor, available)
                else:
                    count = min(block, region_end - cursor, available)
                    gain = self.gain_at(cursor + count // 2)
                out.append(audioop.mul(pending[at : at + count * 4], 2, gain))
                at += count * 4
                available -= count
                cursor += count
            pending = pending[at:]
            if out:
                yield b"".join(out)


class MixedAudio:
    """Voice (mono) over a music bed (stereo): the source a music session is encoded from."""

    channels = 2

    def __init__(self, voice: Any, bed: MusicBed) -> None:
        self.voice = voice
        self.bed = bed

    @property
    def total(self) -> int:
        """Length in samples (per channel)."""
        return int(self.voice.total)

    def silences(self) -> list[tuple[int, int]]:
        """None: music plays throughout (so the encoder does not cut the session into parts)."""
        return []

    def part(self, start: int, end: int) -> AudioPart:
        """Samples ``start`` to ``end`` as a source of their own (for --split)."""
        return AudioPart(self, start, end)

    def chunks(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Stereo 16-bit PCM: the voice on both channels plus the bed."""
        audioop = load_audioop()
        end = self.total if end is None else end
        voice = self.voice.chunks(start, end)
        music = self.bed.chunks(start, end)
        voice_buffer = music_buffer = b""
        done = False
        while not done:
            try:
                while len(music_buffer) < 1 << 16:
                    music_buffer += next(music)
            except StopIteration:
                done = True
            while len(voice_buffer) * 2 < len(music_buffer):
                try:
                    voice_buffer += next(voice)
                except StopIteration:
                    break
            count = min(len(voice_buffer) // 2, len(music_buffer) // 4)
            if count:
                stereo = audioop.tostereo(voice_buffer[: count * 2], 2, 1, 1)
                yield audioop.add(stereo, music_buffer[: count * 4], 2)
                voice_buffer, music_buffer = voice_buffer[count * 2 :], music_buffer[count * 4 :]
        if voice_buffer:  # a bed that came up short: the voice alone
            yield audioop.tostereo(voice_buffer, 2, 1, 1)


def mix_loudness(plan: Plan, voice: float, music: float) -> float:
    """The integrated loudness (BS.1770 gating) a session will measure, from its voice and bed levels.

    Speech blocks measure ``voice`` (the bed is ducked far under them); the
    rest measure ``music``. Whether the bed's blocks count depends on the
    relative gate, so a long, quiet bed can pull a session's reading down.
    """
    spans = _duck_spans(plan)
    speaking = sum(end - start for start, end in spans) / max(1, plan.total)
    power = speaking * 10 ** (voice / 10) + (1 - speaking) * 10 ** (music / 10)
    ungated = 10 * math.log10(power)
    if music < ungated - 10:  # the bed falls under the relative gate: only speech counts
        return voice
    return ungated
