"""Assembly: the plan and its clips become PCM, in order, sample-exact, for any range of the session.

Nothing is concatenated in memory: silence comes from one shared buffer of
zeros and clips are yielded as they are, so memory stays flat however long
the session is. Any stretch of the session can be produced on its own, which
lets the encoder work on several parts at once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from voiceguide.audio.clips import clip_samples
from voiceguide.plan.blocks import Say
from voiceguide.plan.timeline import RATE, Plan
from voiceguide.speech.engine import Clip

if TYPE_CHECKING:
    from voiceguide.audio.loudness import Levels

BYTES_PER_SAMPLE = 2  # mono 16-bit
_ZEROS = bytes(RATE * BYTES_PER_SAMPLE)  # one second of silence, shared by every gap


def _silence(samples: int) -> Iterator[bytes]:
    size = len(_ZEROS) // BYTES_PER_SAMPLE
    while samples > 0:
        step = min(samples, size)
        yield _ZEROS[: step * BYTES_PER_SAMPLE]
        samples -= step


@dataclass(frozen=True)
class SessionAudio:
    """A planned session's audio, produced on demand: mono 16-bit PCM at ``plan.rate``.

    With ``levels`` every clip is levelled as it is read (the clips are never copied whole).
    """

    plan: Plan
    clips: Mapping[Say, Clip]
    levels: Levels | None = None

    def __post_init__(self) -> None:
        cursor = 0
        for event in self.plan.speech():
            if clip_samples(self.clips, event.text or "") != event.end - event.start or event.start < cursor:
                raise ValueError(f"clip for {event.text!r} does not match the plan")  # a bug, not user error
            cursor = event.end

    @property
    def total(self) -> int:
        """Length in samples."""
        return self.plan.total

    def chunks(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Yield samples ``start`` to ``end`` (default: the whole session); exactly ``end - start`` in all."""
        end = self.plan.total if end is None else end
        cursor = start
        for event in self.plan.speech():
            if event.end <= start:
                continue
            if event.start >= end:
                break
            first, last = max(event.start, start), min(event.end, end)
            yield from _silence(first - cursor)
            text = event.text or ""
            if self.levels is not None:
                yield self.levels.pcm(self.clips, text, first - event.start, last - event.start)
            else:
                yield self.clips[text].pcm[(first - event.start) * BYTES_PER_SAMPLE : (last - event.start) * BYTES_PER_SAMPLE]
            cursor = last
        yield from _silence(end - cursor)

    def part(self, start: int, end: int) -> AudioPart:
        """Samples ``start`` to ``end`` as a source of their own (for one file per stretch)."""
        return AudioPart(self, start, end)

    def silences(self) -> list[tuple[int, int]]:
        """Every stretch with nothing spoken, as (start, end) samples."""
        gaps: list[tuple[int, int]] = []
        cursor = 0
        for event in self.plan.speech():
            if event.start > cursor:
                gaps.append((cursor, event.start))
            cursor = max(cursor, event.end)
        if cursor < self.plan.total:
            gaps.append((cursor, self.plan.total))
        return gaps


@dataclass(frozen=True)
class AudioPart:
    """A range of a session's audio (voice only, or mixed with music), itself a source: sample 0 is ``start``."""

    audio: SessionAudio | Any  # anything with total, chunks(start, end), silences() and optionally channels
    start: int
    end: int

    @property
    def total(self) -> int:
        """Length in samples."""
        return self.end - self.start

    @property
    def channels(self) -> int:
        """As the whole session: 1, or 2 with music."""
        return int(getattr(self.audio, "channels", 1))

    def chunks(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Yield this part's samples ``start`` to ``end``."""
        return self.audio.chunks(self.start + start, self.start + (self.total if end is None else end))

    def silences(self) -> list[tuple[int, int]]:
        """The session's silences inside this part, relative to its start."""
        return [(max(a, self.start) - self.start, min(b, self.end) - self.start)
                for a, b in self.audio.silences() if b > self.start and a < self.end]


def pcm_chunks(plan: Plan, clips: Mapping[Say, Clip]) -> Iterator[bytes]:
    """Yield the whole session as mono 16-bit PCM at ``plan.rate``; exactly ``plan.total`` samples in all."""
    return SessionAudio(plan, clips).chunks()
