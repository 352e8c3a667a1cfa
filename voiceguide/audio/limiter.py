"""The look-ahead limiter: a clip at a gain, turned down smoothly wherever a peak would pass the ceiling.

Gains change once per block (a millisecond), start falling a few blocks before
a peak and recover slowly after it. ``ClipBlocks`` works out what the limiter
would leave of a clip's energy at any gain from its per-block peaks and
energies, without processing audio: levelling (audio.loudness) tries several gains.
"""

from __future__ import annotations

import math
from array import array
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import compress, count

from voiceguide.errors import OptionError
from voiceguide.host import load_audioop
from voiceguide.speech.shaping import check_pcm  # the same samples and rates a clip is made of

# Sample-peak ceiling: leaves room for inter-sample peaks and MP3's overshoot so
# the decoded file's true peak stays at or below -1 dBTP.
CEILING_DBFS = -2.0
BLOCK_MS = 1  # the limiter's gain changes once per millisecond
ATTACK_BLOCKS = 5  # the gain starts falling this many blocks before a peak
RISE_DB_PER_BLOCK = 0.2  # and recovers at most 0.2 dB per millisecond afterwards
COARSE_BLOCKS = 64  # the limiter looks for peaks this many blocks at a time before looking closer
# ClipBlocks works out the limiter's dips this far above the gain first asked for: levelling's tries then all
# fall under it (on speech they span about 2 dB), and each try is a sum over the dips it already has.
DIP_HEADROOM_DB = 3.0


@dataclass(frozen=True)
class Dips:
    """Where the limiter turns a clip down at ``cap_db`` (with this ceiling and block size): stretches of blocks,
    the limiter's gain for each of their blocks; outside them it applies the plain gain.

    At any lower gain ``g`` the limiter applies ``min(g, those gains)`` in them, to the last bit, and the plain
    gain elsewhere: its gain is the lowest of the plain gain and a curve set by the peaks alone (each peak's gain,
    spread by the look-ahead and the slopes), so one working out serves every gain up to ``cap_db``.
    Held as three flat arrays, 8 bytes a block of the stretches (at 3 dB above a 2-hour session's first gain,
    3.1 MB for its 17 minutes of unique speech), not thousands of small ones.
    """

    cap_db: float
    ceiling_dbfs: float
    block_samples: int
    firsts: array[int]  # each stretch's first block
    ends: array[int]  # where each stretch's gains end in ``gains`` (the next one's begin)
    gains: array[float]  # the limiter's gain for every block of every stretch, in order

    def serve(self, gain_db: float, ceiling_dbfs: float, block_samples: int) -> bool:
        """Whether these are the dips of a limiter at that gain (or a higher one), ceiling and block size."""
        return gain_db <= self.cap_db and ceiling_dbfs == self.ceiling_dbfs and block_samples == self.block_samples

    def stretches(self) -> Iterator[tuple[int, memoryview]]:
        """Each stretch: its first block and the limiter's gains from there, block by block."""
        view, begin = memoryview(self.gains), 0
        for first, end in zip(self.firsts, self.ends, strict=True):
            yield first, view[begin:end]
            begin = end

    def at(self, gain_db: float) -> Dips:
        """These dips for a limiter at ``gain_db`` only (one they serve): each stretch cut to the blocks whose gain
        is below that gain, those with none left out. The limiter applies the lower of the gain and the dips'
        gains, so the blocks cut away are at the plain gain either way; what is left is a fraction of the size
        (levelling works them out a few dB above the gain it settles on), and only this is kept for the encoding."""
        if not self.serve(gain_db, self.ceiling_dbfs, self.block_samples):
            raise OptionError(f"Dips.at: these dips serve gains up to {self.cap_db} dB (asked {gain_db!r})")
        gain = 10 ** (gain_db / 20)
        firsts, ends, gains = array("l"), array("l"), array("d")
        for first, envelope in self.stretches():
            if min(envelope) >= gain:
                continue
            low, high = 0, len(envelope)
            while envelope[low] >= gain:
                low += 1
            while envelope[high - 1] >= gain:
                high -= 1
            firsts.append(first + low)
            gains.extend(envelope[low:high])
            ends.append(len(gains))
        return Dips(gain_db, self.ceiling_dbfs, self.block_samples, firsts, ends, gains)


def find_dips(peaks: Sequence[int], block_samples: int, cap_db: float, ceiling_dbfs: float) -> Dips:
    """The limiter's dips at ``cap_db`` for a clip whose blocks (``block_samples`` each) peak at ``peaks``."""
    gain = 10 ** (cap_db / 20)
    ceiling = 32767 * 10 ** (ceiling_dbfs / 20)
    over = ceiling / gain
    hot = list(compress(count(), map(over.__lt__, peaks)))
    want = [gain] * len(peaks) if hot else []
    for i in hot:
        want[i] = ceiling / peaks[i]
    firsts, ends, gains = array("l"), array("l"), array("d")
    for first, envelope in _dips(want, hot, gain):
        firsts.append(first)
        gains.extend(envelope)
        ends.append(len(gains))
    return Dips(cap_db, ceiling_dbfs, block_samples, firsts, ends, gains)


def limit(pcm: bytes, rate: int, gain_db: float, ceiling_dbfs: float = CEILING_DBFS, dips: Dips | None = None) -> bytes:
    """Apply ``gain_db`` to a clip, turning it down smoothly wherever a peak would pass the ceiling.

    Only the neighbourhood of peaks that pass the ceiling is worked on block by
    block (found with one C call per 64 ms); everything else is one multiply.
    ``dips``: the clip's dips as levelling worked them out (ClipBlocks.dips), if
    they serve this gain and ceiling: then the peaks are not looked for again,
    and the result is the same to the last bit. OptionError for samples that are not mono 16-bit, a rate,
    gain or ceiling out of range (or not finite), or ``dips`` that are not Dips.
    """
    check_pcm("limit", pcm, rate)
    _check_level("limit: gain_db", gain_db, -MAX_LEVEL_DB, MAX_LEVEL_DB)
    _check_level("limit: ceiling_dbfs", ceiling_dbfs, -MAX_LEVEL_DB, 0.0)
    if dips is not None and not isinstance(dips, Dips):
        raise OptionError(f"limit: dips must be the clip's Dips (ClipBlocks.dips) or None (got {type(dips).__name__})")
    audioop = load_audioop()
    block = max(1, rate * BLOCK_MS // 1000) * 2
    gain = 10 ** (gain_db / 20)
    if dips is not None and dips.serve(gain_db, ceiling_dbfs, block // 2):
        return _apply(pcm, block, gain, ((first, [min(gain, g) for g in envelope])
                                         for first, envelope in dips.stretches()))
    ceiling = 32767 * 10 ** (ceiling_dbfs / 20)
    over = ceiling / gain  # a sample above this passes the ceiling once gained
    if audioop.max(pcm, 2) <= over:
        return audioop.mul(pcm, 2, gain)  # nothing to limit: one multiply
    count = -(-len(pcm) // block)
    want = [gain] * count
    hot: list[int] = []  # blocks that must come down
    coarse = COARSE_BLOCKS * block
    for start in range(0, len(pcm), coarse):
        if audioop.max(pcm[start : start + coarse], 2) > over:
            for i in range(start // block, min(count, (start + coarse) // block)):
                peak = audioop.max(pcm[i * block : (i + 1) * block], 2)
                if peak > over:
                    want[i] = ceiling / peak
                    hot.append(i)
    return _apply(pcm, block, gain, _dips(want, hot, gain))


MAX_LEVEL_DB = 120.0  # a gain or ceiling beyond this is no level a clip can have (16-bit spans 96 dB)


def _check_level(name: str, value: object, low: float, high: float) -> None:
    """OptionError unless ``value`` is a finite number of dB from ``low`` to ``high``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:  # NaN fails too
        raise OptionError(f"{name} must be a number of dB from {low:g} to {high:g} (got {value!r})")


def _apply(pcm: bytes, block: int, gain: float, stretches: Iterable[tuple[int, list[float]]]) -> bytes:
    """``pcm`` at ``gain``, but at the envelope's gain block by block in each stretch (first block, gains), in order."""
    audioop = load_audioop()
    out: list[bytes] = []
    done = 0  # blocks written
    for first, envelope in stretches:
        out.append(audioop.mul(pcm[done * block : first * block], 2, gain))
        run = 0  # blocks at the same gain go through one multiply
        for i in range(1, len(envelope) + 1):
            if i == len(envelope) or envelope[i] != envelope[run]:
                out.append(audioop.mul(pcm[(first + run) * block : (first + i) * block], 2, envelope[run]))
                run = i
        done = first + len(envelope)
    out.append(audioop.mul(pcm[done * block :], 2, gain))
    return b"".join(out)


def _dips(want: list[float], hot: list[int], gain: float) -> Iterator[tuple[int, list[float]]]:
    """The limiter's gain, block by block, around the ``hot`` blocks (whose ``want`` is below ``gain``): for each
    stretch of blocks it works on, its first block and the gains; everywhere else the gain is ``gain``."""
    rise = 10 ** (RISE_DB_PER_BLOCK / 20)
    for first, last in _segments(want, hot, gain, rise):
        envelope = _window_min(want[first:last], ATTACK_BLOCKS + 1)  # look ahead: down by the time a peak arrives
        # A conditional, not min(): calling min() is most of the cost of loops this simple.
        for i in range(1, len(envelope)):  # recover slowly after it
            value, cap = envelope[i], envelope[i - 1] * rise
            envelope[i] = value if value <= cap else cap
        for i in range(len(envelope) - 2, -1, -1):  # and fall smoothly before it
            value, cap = envelope[i], envelope[i + 1] * rise
            envelope[i] = value if value <= cap else cap
        yield first, envelope


def _segments(want: list[float], hot: list[int], gain: float, rise: float) -> list[tuple[int, int]]:
    """Block ranges the limiter's dips cover, merged; outside them its gain is steady. Each hot block's dip
    reaches as far as the gain takes to climb back from that block's want (plus the look-ahead before it)."""
    segments: list[tuple[int, int]] = []
    log_rise = math.log(rise)
    for i in hot:
        reach = 2 + math.ceil(math.log(gain / want[i]) / log_rise)  # blocks to climb back, and 2 to spare
        first, last = max(0, i - ATTACK_BLOCKS - reach), min(len(want), i + reach + 1)
        while segments and first <= segments[-1][1]:  # a deep dip may reach back over earlier, shallower ones
            earlier = segments.pop()
            first, last = min(first, earlier[0]), max(last, earlier[1])
        segments.append((first, last))
    return segments


def _window_min(values: list[float], width: int) -> list[float]:
    """min(values[i : i + width]) for every i, in one pass (a monotonic queue instead of a min() per window)."""
    result = [0.0] * len(values)
    queue: deque[int] = deque()  # indexes of increasing values, the window's minimum first
    for i in range(len(values) - 1, -1, -1):
        while queue and values[queue[-1]] >= values[i]:
            queue.pop()
        queue.append(i)
        if queue[0] >= i + width:
            queue.popleft()
        result[i] = values[queue[0]]
    return result


class ClipBlocks:
    """A clip's peak and energy (sum of squares) per limiter block, worked out once: with them what the limiter
    leaves of the clip at any gain is a sum over the blocks it turns down, with no audio processed."""

    def __init__(self, pcm: bytes, rate: int) -> None:
        check_pcm("ClipBlocks", pcm, rate)
        audioop = load_audioop()
        block = max(1, rate * BLOCK_MS // 1000) * 2
        self.block_samples = block // 2
        # 2 + 4 bytes a millisecond (peaks reach 32768 at most; energies are summed in double precision):
        # held for every clip while levelling, so a 2-hour session's 17 minutes of unique speech fit in 6 MB.
        # (Slices of a memoryview: no copy of each block; this runs on every millisecond of every clip.)
        view, starts = memoryview(pcm), range(0, len(pcm), block)
        self.peaks = array("H", [audioop.max(view[i : i + block], 2) for i in starts])
        rms = [audioop.rms(view[i : i + block], 2) for i in starts]
        self.energy = array("f", [r * r * self.block_samples for r in rms])
        if rms and len(pcm) % block:  # a short last block
            self.energy[-1] = rms[-1] * rms[-1] * (len(pcm) % block // 2)
        self.peak = max(self.peaks, default=0)  # the clip's sample peak
        self._dips: Dips | None = None  # worked out for the highest gain asked for so far, plus DIP_HEADROOM_DB

    def kept(self, gain_db: float, ceiling_dbfs: float, sub: int) -> array[float]:
        """What ``limit(pcm, rate, gain_db, ceiling_dbfs)`` keeps of the clip's energy at that gain, per ``sub``
        samples (1.0 where it turns nothing down): the limiter's own gains, block by block, each block counted in
        the stretch where it starts (a millisecond block straddling two puts all its energy in the first).

        The gains come from the dips worked out once for a higher gain (``dips``): levelling asks again and again
        at gains a dB or two apart, and each time only this sum is done again."""
        gain = 10 ** (gain_db / 20)
        square = gain * gain
        block = self.block_samples
        shares = array("d", [1.0]) * (-(-len(self.peaks) * block // sub))
        lost: dict[int, float] = {}  # each block counts in the stretch where it starts
        energy = self.energy
        for first, envelope in self.dips(gain_db, ceiling_dbfs).stretches():
            for index, g in enumerate(envelope, first):
                if g < gain:
                    j = index * block // sub
                    lost[j] = lost.get(j, 0.0) + (square - g * g) * energy[index]
        for j, taken in lost.items():
            first, last = -(-j * sub // block), min(len(self.energy), -(-(j + 1) * sub // block))
            whole = square * sum(energy[first:last])
            shares[j] = max(0.0, 1 - taken / whole) if whole > 0 else 1.0
        return shares

    def dips(self, gain_db: float, ceiling_dbfs: float) -> Dips:
        """The limiter's dips for this clip at ``gain_db`` and any lower gain (see Dips): worked out once, at
        DIP_HEADROOM_DB above the first gain asked for, and again only for a higher gain or another ceiling."""
        if self._dips is None or not self._dips.serve(gain_db, ceiling_dbfs, self.block_samples):
            self._dips = find_dips(self.peaks, self.block_samples, gain_db + DIP_HEADROOM_DB, ceiling_dbfs)
        return self._dips
