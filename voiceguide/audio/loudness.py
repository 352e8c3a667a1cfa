"""Loudness: every session at -16 LUFS integrated with true peaks at most -1 dBTP.

Speech clips are already levelled one by one (speech.process_clip). At
render time the session's integrated loudness is measured with ffmpeg's
``ebur128`` filter, the way players and podcast apps measure it, on the spoken
parts only: long silences are shortened to a second, which changes nothing
the gated measurement counts but makes it take a fraction of a second for a
session of hours. One gain brings the session to the target; a smooth
look-ahead limiter keeps every clip's peaks under the ceiling, and a second
measurement corrects for what the limiter took away.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from voiceguide.errors import EncoderError
from voiceguide.host import recall
from voiceguide.host import remember as store
from voiceguide.plan.timeline import Plan
from voiceguide.speech.engine import Clip

TARGET_LUFS = -16.0
# Sample-peak ceiling: leaves room for inter-sample peaks and MP3's overshoot so
# the decoded file's true peak stays at or below -1 dBTP.
CEILING_DBFS = -2.0
MAX_GAP_SECONDS = 0.45  # longer silences are shortened for the measurement: a 400 ms block never spans one
BLOCK_MS = 1  # the limiter's gain changes once per millisecond
ATTACK_BLOCKS = 5  # the gain starts falling this many blocks before a peak
RISE_DB_PER_BLOCK = 0.2  # and recovers at most 0.2 dB per millisecond afterwards


def _audioop():  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():  # deprecated on 3.12 (audioop-lts provides it on 3.13+)
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop
    return audioop


@dataclass(frozen=True)
class Loudness:
    """An ebur128 measurement: integrated loudness (LUFS) and true peak (dBTP)."""

    integrated: float
    true_peak: float


def measure(chunks: Iterator[bytes], rate: int, true_peak: bool = True) -> Loudness:
    """Integrated loudness and true peak of mono 16-bit PCM, measured by ffmpeg's ebur128 filter.

    Without ``true_peak`` (the slow part) the peak is reported as -inf.
    """
    from voiceguide.ffmpeg import ffmpeg_exe, run_ffmpeg

    command = [ffmpeg_exe(), "-hide_banner", "-nostats", "-f", "s16le", "-ar", str(rate), "-ac", "1", "-i", "pipe:0",
               "-af", f"ebur128=framelog=quiet{':peak=true' if true_peak else ''}", "-f", "null", "-"]
    with tempfile.TemporaryFile() as log:  # a file, not a pipe: ffmpeg can never block on it
        run_ffmpeg(command, chunks, log)
        log.seek(0)
        return parse_ebur128(log.read().decode(errors="replace"))


def parse_ebur128(log: str) -> Loudness:
    """Read the summary ffmpeg's ebur128 filter prints."""
    integrated = re.findall(r"I:\s+(-?[\d.]+|-inf) LUFS", log)
    peak = re.findall(r"Peak:\s+(-?[\d.]+|-inf) dBFS", log)
    if not integrated:
        raise EncoderError("could not measure loudness: " + (log.strip().splitlines() or ["no output"])[-1])
    return Loudness(float(integrated[-1]), float(peak[-1]) if peak else -math.inf)


def speech_only(plan: Plan, clips: Mapping[str, Clip], max_gap: float = MAX_GAP_SECONDS) -> Iterator[bytes]:
    """The session with every silence longer than ``max_gap`` seconds shortened to it."""
    cap = round(max_gap * plan.rate)
    cursor = 0
    for event in plan.speech():
        yield bytes(2 * min(cap, event.start - cursor))
        yield clips[event.text or ""].pcm
        cursor = event.end
    yield bytes(2 * min(cap, plan.total - cursor))


def limit(pcm: bytes, rate: int, gain_db: float, ceiling_dbfs: float = CEILING_DBFS) -> bytes:
    """Apply ``gain_db`` to a clip, turning it down smoothly wherever a peak would pass the ceiling."""
    audioop = _audioop()
    block = max(1, rate * BLOCK_MS // 1000) * 2
    gain = 10 ** (gain_db / 20)
    ceiling = 32767 * 10 ** (ceiling_dbfs / 20)
    pieces = [pcm[i : i + block] for i in range(0, len(pcm), block)]
    want = [min(gain, ceiling / peak) if (peak := audioop.max(p, 2)) else gain for p in pieces]
    rise = 10 ** (RISE_DB_PER_BLOCK / 20)
    envelope = list(want)
    for i in range(len(envelope)):  # look ahead: be down by the time a peak arrives
        envelope[i] = min(want[i : i + ATTACK_BLOCKS + 1])
    for i in range(1, len(envelope)):  # recover slowly after it
        envelope[i] = min(envelope[i], envelope[i - 1] * rise)
    for i in range(len(envelope) - 2, -1, -1):  # and fall smoothly before it
        envelope[i] = min(envelope[i], envelope[i + 1] * rise)
    return b"".join(audioop.mul(p, 2, g) for p, g in zip(pieces, envelope, strict=True))


@dataclass(frozen=True)
class Levelled:
    """Clips brought to the session target, and what was measured."""

    clips: dict[str, Clip]
    gain_db: float
    measured: Loudness  # the session after levelling


def level_session(plan: Plan, clips: Mapping[str, Clip], target: float = TARGET_LUFS,
                  remember: Path | None = None) -> Levelled:
    """Gain (and limiting) for every clip so the session measures ``target`` LUFS with peaks under the ceiling.

    The limiter makes loudness grow more slowly than gain, so the gain is found
    by the secant method on measurements (three or four, each a fraction of a
    second). With ``remember`` (a folder) the gain found for exactly this
    speech and arrangement is kept, so re-rendering the session measures once.
    """
    used = list(dict.fromkeys(event.text or "" for event in plan.speech()))  # words and tones: not sortable together
    if not used:
        return Levelled(dict(clips), 0.0, Loudness(-math.inf, -math.inf))
    signature = _signature(plan, clips, target)

    def limited(gain: float) -> dict[str, Clip]:
        return {text: Clip(limit(clips[text].pcm, plan.rate, gain), plan.rate) for text in used}

    known = recall(remember, "levels", signature)
    if known is not None:
        try:
            gain = float(json.loads(known)["gain_db"])
        except (ValueError, KeyError, TypeError):
            pass  # unreadable: measure afresh
        else:
            return Levelled(limited(gain), gain, Loudness(target, -math.inf))
    raw = measure(speech_only(plan, clips), plan.rate, true_peak=False)
    points: list[tuple[float, float]] = []  # (gain, loudness after limiting)
    gain = target - raw.integrated
    best: tuple[float, dict[str, Clip], Loudness] | None = None
    for _ in range(5):
        levelled = limited(gain)
        after = measure(speech_only(plan, levelled), plan.rate, true_peak=False)
        points.append((gain, after.integrated))
        if best is None or abs(after.integrated - target) < abs(best[2].integrated - target):
            best = (gain, levelled, after)
        if abs(after.integrated - target) <= 0.2:
            break
        if len(points) == 1:
            gain += (target - after.integrated) * 2  # the limiter roughly halves what gain adds
        else:
            (g0, l0), (g1, l1) = points[-2], points[-1]
            slope = (l1 - l0) / (g1 - g0) if g1 != g0 and l1 != l0 else 0.5
            gain = g1 + (target - l1) / max(slope, 0.1)
        gain = min(gain, 30.0)
    assert best is not None
    store(remember, "levels", signature, json.dumps({"gain_db": best[0]}).encode())
    return Levelled(best[1], best[0], best[2])


def _signature(plan: Plan, clips: Mapping[str, Clip], target: float) -> str:
    """What the measured loudness depends on: the clips, where they sit, the target and the limiter."""
    digest = hashlib.sha256(repr((target, CEILING_DBFS, RISE_DB_PER_BLOCK, ATTACK_BLOCKS, MAX_GAP_SECONDS)).encode())
    cap = round(MAX_GAP_SECONDS * plan.rate)
    digests: dict[str, bytes] = {}  # each clip hashed once, however often it is said
    cursor = 0
    for event in plan.speech():
        text = event.text or ""
        if text not in digests:
            digests[text] = hashlib.sha256(clips[text].pcm).digest()
        digest.update(min(cap, event.start - cursor).to_bytes(8, "little"))
        digest.update(digests[text])
        cursor = event.end
    return digest.hexdigest()
