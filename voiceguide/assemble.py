"""Assembly: the plan and its clips become one stream of PCM, in order, sample-exact.

Nothing is concatenated in memory: silence comes from one shared buffer of
zeros and clips are yielded as they are, so memory stays flat however long
the session is.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from voiceguide.speech import Clip
from voiceguide.timeline import Plan

BYTES_PER_SAMPLE = 2  # mono 16-bit


def _silence(samples: int, zeros: bytes) -> Iterator[bytes]:
    size = len(zeros) // BYTES_PER_SAMPLE
    while samples > 0:
        step = min(samples, size)
        yield zeros[: step * BYTES_PER_SAMPLE]
        samples -= step


def pcm_chunks(plan: Plan, clips: Mapping[str, Clip]) -> Iterator[bytes]:
    """Yield the session as mono 16-bit PCM at ``plan.rate``; exactly ``plan.total`` samples in all."""
    zeros = bytes(plan.rate * BYTES_PER_SAMPLE)  # one second, shared by every gap
    cursor = 0
    for event in plan.speech():
        clip = clips[event.text or ""]
        if clip.rate != plan.rate or clip.samples != event.end - event.start or event.start < cursor:
            raise ValueError(f"clip for {event.text!r} does not match the plan")  # a bug, not user error
        yield from _silence(event.start - cursor, zeros)
        yield clip.pcm
        cursor = event.end
    yield from _silence(plan.total - cursor, zeros)
