"""Loudness: every session at its LUFS target (-16 by default) with true peaks at most -1 dBTP.

Speech clips are already levelled one by one (speech.process_clip). At
render time the session's integrated loudness is worked out as BS.1770 and
ebur128 define it (K-weighted 400 ms blocks, gated), from each distinct clip
K-weighted once and placed where the plan puts it (audio.energies): no pass
over the session. One gain brings the session to the target; the clips that
gain would push past the sample-peak ceiling go through a smooth look-ahead
limiter, and the loudness it takes away is made up. The gain is applied as
assembly reads each clip (audio.assemble), so no levelled copy of the speech
is ever held. What the encoder then does to loudness and peaks is measured on
the written file with ffmpeg's ebur128, the way players measure (audio.encoded).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
import tempfile
import threading
from array import array
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from voiceguide.audio import TARGET_LUFS
from voiceguide.audio.clips import CachedClips, clip_digest, clip_once, clip_samples
from voiceguide.audio.energies import (
    DENORMAL_GUARD,
    SUB_BLOCKS_PER_SECOND,
    ClipMeter,
    analysis_order,
    gated_loudness,
    limited,
    session_loudness,
)
from voiceguide.audio.limiter import (  # the limiter's settings are part of what a stored result depends on
    ATTACK_BLOCKS,
    BLOCK_MS,
    CEILING_DBFS,
    RISE_DB_PER_BLOCK,
    ClipBlocks,
    Dips,
    limit,
)
from voiceguide.errors import EncoderError
from voiceguide.host import load_audioop, recall, release_free_memory
from voiceguide.host import remember as store
from voiceguide.plan.blocks import Say
from voiceguide.plan.timeline import Plan
from voiceguide.plan.tones import Tone
from voiceguide.speech.cache import LIMITED, ClipCache
from voiceguide.speech.engine import Clip

MAX_GAP_SECONDS = 0.45  # a longer silence is all the same to loudness (a 400 ms block never spans one)
RECENT_LIMITED = 8  # limited clips kept for their next use
KEPT_DIPS_BLOCKS = 150_000  # the limiter's dips kept from levelling for the encoding: at most 1.2 MB (see _kept_dips)
FIT_ROUNDS = 6  # gains tried at most: the plain gain, then steps towards the target
MIN_SLOPE = 0.05  # a voice limited so hard that gain barely moves its loudness still takes bounded steps
NEAR_WEIGHT = 0.6  # a step's slope: this much the slope where it starts, the rest the slope where Newton's would end
FIT_TOLERANCE_LU = 0.02  # close enough: ebur128 prints loudness to 0.1, and the written file is measured anyway
LEVELS_VERSION = 2  # how a remembered gain was found (2: composed from clip energies)
_UNTOUCHED = 0.999  # a sub-block the limiter kept more than this of counts as left alone
MAX_GAIN_DB = 30.0  # a session this much too quiet is brought up no further
# The end of every measuring chain: the meters print when the stream ends, and their audio is dropped here
# rather than handed on, frame by frame, to `-f null` (ffmpeg's encoder and muxer threads): measuring a
# 40-minute MP3 whole with true peak took 5.7 CPU-seconds, 2.9 of them those hand-offs.
DISCARD = "aselect=0"


def ebur128_filter(true_peak: bool = False, blocks: bool = False) -> str:
    """The filter chain that measures: the denormal guard, then ebur128 (with true peak if asked), logging the
    loudness of every 400 ms block if ``blocks`` (a stream measured in pieces: see ``parse_ebur128``)."""
    return f"{DENORMAL_GUARD},ebur128=framelog={'info' if blocks else 'quiet'}{':peak=true' if true_peak else ''}"


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
               "-af", f"{ebur128_filter(true_peak)},{DISCARD}", "-f", "null", "-"]
    with tempfile.TemporaryFile() as log:  # a file, not a pipe: ffmpeg can never block on it
        run_ffmpeg(command, chunks, log)
        log.seek(0)
        return parse_ebur128(log.read().decode(errors="replace"))


def parse_ebur128(log: str, *more: str) -> Loudness:
    """Read what ffmpeg's ebur128 filter printed: its summary, or for one stream measured in pieces (one log
    each, with ``ebur128_filter(blocks=True)``) the loudness gated here over every piece's 400 ms blocks together
    (``gated_loudness``) and the highest of the pieces' true peaks.

    On speech the two agree to a few thousandths of a LU (blocks are printed to 0.1 LU, the summary too); near
    a contrived signal's gate threshold a rounded block can fall on the other side of it.
    """
    found: list[Loudness] = []
    blocks: list[float] = []
    for text in (log, *more):
        integrated = re.findall(r"I:\s+(-?[\d.]+|-inf) LUFS", text)
        peak = re.findall(r"Peak:\s+(-?[\d.]+|-inf) dBFS", text)
        if not integrated:
            raise EncoderError("could not measure loudness: " + (text.strip().splitlines() or ["no output"])[-1])
        found.append(Loudness(float(integrated[-1]), float(peak[-1]) if peak else -math.inf))
        blocks.extend(float(m) for m in _MOMENTARY.findall(text)[_FIRST_FULL_BLOCK:])
    if not more:
        return found[0]
    return Loudness(gated_loudness(blocks), max(f.true_peak for f in found))


# ebur128's frame log: one line per 100 ms with the loudness of the last 400 ms (M), the block BS.1770 gates
# and averages; the first three lines cover less than 400 ms and are not blocks.
_MOMENTARY = re.compile(r"\bt:\s*[\d.]+\s+TARGET:[^\n]*?\bM:\s*(-?[\d.]+|-inf)")
_FIRST_FULL_BLOCK = 3


def speech_windows(plan: Plan, rate: int, margin: float = MAX_GAP_SECONDS / 2) -> list[tuple[int, int]]:
    """Where the session is not silent, as sample ranges at ``rate``: each line (or tone) widened by ``margin``
    seconds on both sides and merged with its neighbours where they meet, so silences shrink to ``2 * margin``
    as in ``speech_only``."""
    pad = round(margin * plan.rate)
    merged: list[list[int]] = []
    for event in plan.speech():
        start, end = max(0, event.start - pad), min(plan.total, event.end + pad)
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(start * rate // plan.rate, -(-end * rate // plan.rate)) for start, end in merged]


class Levels:
    """How the session's clips are levelled: one gain, and the clips whose peaks that gain would push past
    the ceiling, which go through the limiter. Applied as assembly reads each clip: no levelled copy of the
    speech is held, only a few recently limited clips (lines said again soon)."""

    def __init__(self, gain_db: float, ceiling_dbfs: float = CEILING_DBFS, limited: Iterable[Say] = (),
                 rate: int = 44100, store: Path | None = None, dips: Mapping[Say, Dips] | None = None) -> None:
        self.gain_db = gain_db
        self.ceiling_dbfs = ceiling_dbfs
        self.limited = frozenset(limited)
        self.rate = rate
        # The limited clips' dips as levelling worked them out (Dips.at this gain): the limiter then need not look
        # for the peaks again. Each is let go once its clip is limited (the encoding reaches it).
        self._dips = dict(dips or {})
        # Where limited clips are kept once made (the clip cache's folder): the next render reads them back
        # instead of running the limiter (Python, on every clip it limits) again. None: limit every time.
        self.store = ClipCache(store / LIMITED) if store is not None else None
        self._recent: OrderedDict[Say, bytes] = OrderedDict()
        self._lock = threading.Lock()  # the MP3 encoder reads parts of the session on several threads

    @property
    def gain(self) -> float:
        """The gain as a factor."""
        return 10 ** (self.gain_db / 20)

    def pcm(self, clips: Mapping[Say, Clip], text: Say, first: int, last: int) -> bytes:
        """Samples ``first`` to ``last`` of one clip, levelled."""
        if text not in self.limited:
            return load_audioop().mul(clips[text].pcm[first * 2 : last * 2], 2, self.gain)
        with self._lock:
            done = self._recent.get(text)
        if done is None:
            done = self._limit(clips, text)
            with self._lock:
                self._recent[text] = done
                while len(self._recent) > RECENT_LIMITED:
                    self._recent.popitem(last=False)
        return done[first * 2 : last * 2]

    def _limit(self, clips: Mapping[Say, Clip], text: Say) -> bytes:
        """One clip through the limiter, or read back from the store where an earlier render left it."""
        with self._lock:
            dips = self._dips.pop(text, None)
        if self.store is None:
            return limit(clip_once(clips, text).pcm, self.rate, self.gain_db, self.ceiling_dbfs, dips)
        key = hashlib.sha256(repr(("limited", clip_digest(clips, text), self.gain_db, self.ceiling_dbfs, self.rate,
                                   BLOCK_MS, ATTACK_BLOCKS, RISE_DB_PER_BLOCK)).encode()).hexdigest()
        found = self.store.get(key)  # checksummed: a damaged entry is not used
        if found is not None and found.rate == self.rate and found.samples == clip_samples(clips, text):
            return found.pcm
        done = limit(clip_once(clips, text).pcm, self.rate, self.gain_db, self.ceiling_dbfs, dips)
        self.store.put(key, Clip(done, self.rate))
        return done


def level_session(plan: Plan, clips: Mapping[Say, Clip], target: float = TARGET_LUFS,
                  remember: Path | None = None, ceiling_dbfs: float = CEILING_DBFS,
                  speech_signature: str | None = None) -> Levels:
    """One gain (and limiting where peaks need it) so the session measures ``target`` LUFS under the ceiling.

    Each distinct clip is K-weighted once (while the render was making it, if it
    did: CachedClips.analysis) and the session's loudness composed from the
    clips where the plan puts them (audio.energies): no pass over the session.
    The limiter takes a little loudness from the clips it turns down; for each
    gain tried, what it would leave of those clips is worked out sub-block by
    sub-block (limiter.ClipBlocks.kept, no audio processed) until the session
    lands on the target. The result for exactly this speech, arrangement,
    target and ceiling is remembered in ``remember``
    (a folder), so a warm render measures nothing.
    """
    used = list(dict.fromkeys(event.text or "" for event in plan.speech()))  # words and tones: not sortable together
    found = clips.take_analysis() if isinstance(clips, CachedClips) else None  # given up here, used or not
    if not used:
        return Levels(0.0, ceiling_dbfs, (), plan.rate)
    signature = hashlib.sha256(repr((speech_signature or session_signature(plan, clips), target, ceiling_dbfs,
                                     RISE_DB_PER_BLOCK, ATTACK_BLOCKS, LEVELS_VERSION)).encode()).hexdigest()
    known = recall(remember, "levels", signature)
    if known is not None:
        try:
            note = json.loads(known)
            gain, names = float(note["gain_db"]), [_heard(entry) for entry in note["limited"]]
        except (ValueError, KeyError, TypeError):
            pass  # unreadable: measure afresh
        else:
            return Levels(gain, ceiling_dbfs, [t for t in names if t in used], plan.rate, remember)
    # Each clip's energies and per-millisecond peaks and energies (for the limiter's share): measured as the
    # clips were made if they were (see CachedClips.analysis), else now, each clip read once for both.
    if found is None or not found.energies.keys() == found.blocks.keys() == set(used):
        with ClipMeter(plan.rate) as meter:
            for text in analysis_order(used):
                meter.add(text, clips[text])
            found = meter.finish()
    energies, blocks = found.energies, found.blocks
    raw = session_loudness(plan, energies)
    if not math.isfinite(raw):
        return Levels(0.0, ceiling_dbfs, (), plan.rate)  # nothing audible to level
    gain, limited = _fit_gain(plan, used, energies, blocks, raw, target, ceiling_dbfs)
    dips = _kept_dips(blocks, limited, gain, ceiling_dbfs)
    energies.clear()  # in place: the clips' store holds the same Analysis (MeteredClips.analysis) while encoding
    blocks.clear()
    release_free_memory()  # the fit's tables are gone; the encoding that follows needs none of that heap
    levels = Levels(gain, ceiling_dbfs, limited, plan.rate, remember, dips)
    stored = sorted([["tone", t.value] if isinstance(t, Tone) else ["text", t] for t in levels.limited])
    store(remember, "levels", signature, json.dumps({"gain_db": gain, "limited": stored}).encode())
    return levels


def _kept_dips(blocks: Mapping[Say, ClipBlocks], limited: Sequence[Say], gain: float,
               ceiling_dbfs: float) -> dict[Say, Dips]:
    """The limited clips' dips at the gain settled on (Dips.at: the blocks the limiter turns down, nothing else),
    for the limiter, which then need not look for the peaks again; none if together they pass KEPT_DIPS_BLOCKS.

    All or none, so that what a render holds while it encodes does not grow with the session past the budget:
    a dense 40-minute session's take 0.8 MB and save the limiter half its work (0.1 CPU-s of a cold render), a
    2-hour session's would take 2.5 MB (3-4 MB of the tree's peak, with the heap's fragments) and are let go."""
    dips: dict[Say, Dips] = {}
    held = 0
    for text in limited:
        found = blocks[text].dips(gain, ceiling_dbfs).at(gain)
        held += len(found.gains)
        if held > KEPT_DIPS_BLOCKS:
            return {}
        dips[text] = found
    return dips


def _fit_gain(plan: Plan, used: list[Say], energies: Mapping[Say, Sequence[float]], blocks: Mapping[Say, ClipBlocks],
              raw: float, target: float, ceiling_dbfs: float) -> tuple[float, list[Say]]:
    """The gain that brings the session (measured ``raw`` LUFS as it is) to ``target`` once the limiter has turned
    down the clips whose peaks it pushes past the ceiling, and those clips.

    Steps from the plain gain, each try's loudness composed exactly. The slope
    (loudness gained per dB) is the share of the energy in sub-blocks the
    limiter left alone: those follow the gain, the ones it turned down stay near
    the ceiling. The slope falls as the gain rises (more of the speech reaches
    the ceiling), so Newton's step alone falls short (0.08-0.10 LU on speech at
    -16 LUFS, and a third try); the step is taken with the slope here and the
    slope where Newton's step would land, weighed NEAR_WEIGHT to the rest (a sum
    over the limiter's dips, no loudness composed). On speech the second try
    lands within 0.01 LU (FIT_TOLERANCE_LU: 0.02).
    """
    said = Counter(event.text or "" for event in plan.speech())
    sub = plan.rate // SUB_BLOCKS_PER_SECOND

    def limiting(gain: float) -> tuple[list[Say], dict[Say, array[float]], float]:
        """The clips the limiter turns down at ``gain``, what it keeps of each sub-block of them, and the slope."""
        over = 32767 * 10 ** ((ceiling_dbfs - gain) / 20)
        pushed = [text for text in used if blocks[text].peak > over]
        scales = {text: blocks[text].kept(gain, ceiling_dbfs, sub) for text in pushed}
        left = total = 0.0  # K-weighted energy the limiter left alone, and all of it, over the session
        for text in used:
            energy = energies[text]
            scale: Sequence[float] = scales.get(text, ())
            total += said[text] * sum(limited(energy, scale))
            shares = itertools.chain(scale, itertools.repeat(1.0))  # 1.0 past the limiter's end, as in ``limited``
            left += said[text] * sum(itertools.compress(energy, map(_UNTOUCHED.__lt__, shares)))
        return pushed, scales, min(1.0, max(MIN_SLOPE, left / total)) if total > 0 else 1.0

    gain = min(MAX_GAIN_DB, target - raw)
    for round_ in range(FIT_ROUNDS):
        pushed, scales, slope = limiting(gain)
        found = session_loudness(plan, energies, gain, scales)
        if abs(found - target) <= FIT_TOLERANCE_LU or round_ == FIT_ROUNDS - 1 or gain >= MAX_GAIN_DB:
            return gain, pushed
        ahead = limiting(min(MAX_GAIN_DB, gain + (target - found) / slope))[2]
        gain = min(MAX_GAIN_DB, gain + (target - found) / (NEAR_WEIGHT * slope + (1 - NEAR_WEIGHT) * ahead))
    raise AssertionError("unreachable")  # the last round returns


def _heard(entry: list[str]) -> Say:
    """A remembered clip name back as the plan has it: words, or a tone (stored as ["tone", name])."""
    kind, value = entry
    return Tone(value) if kind == "tone" else str(value)


def session_signature(plan: Plan, clips: Mapping[Say, Clip]) -> str:
    """What the session's loudness depends on: the clips' contents and where they sit (silences as measured)."""
    digest = hashlib.sha256(repr((MAX_GAP_SECONDS, plan.rate)).encode())
    cap = round(MAX_GAP_SECONDS * plan.rate)
    digests: dict[Say, bytes] = {}  # each clip's digest read once, however often it is said
    cursor = 0
    for event in plan.speech():
        text = event.text or ""
        if text not in digests:
            digests[text] = clip_digest(clips, text)
        digest.update(min(cap, event.start - cursor).to_bytes(8, "little"))
        digest.update(digests[text])
        cursor = event.end
    return digest.hexdigest()
