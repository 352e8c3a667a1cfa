"""PCM that an encoder reads, and a thread-safe count of what it has encoded (for progress)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol


class PcmSource(Protocol):
    """Audio that can be produced in parts (voiceguide.audio.assemble.SessionAudio): lets MP3 encode on every core."""

    @property
    def total(self) -> int: ...

    def chunks(self, start: int = 0, end: int | None = None) -> Iterator[bytes]: ...

    def silences(self) -> list[tuple[int, int]]: ...


class SampleCounter:
    """Counts samples handed to an encoder, from any thread, and reports the running total."""

    def __init__(self, progress: Callable[[int], None] | None, channels: int = 1) -> None:
        self.progress = progress
        self.frame_bytes = 2 * channels
        self.done = 0
        self.lock = threading.Lock()

    def add(self, samples: int) -> None:
        """Count ``samples`` more and report the total."""
        if self.progress is not None:
            with self.lock:
                self.done += samples
                self.progress(self.done)

    def through(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """Pass ``chunks`` on, counting them as they are consumed."""
        for chunk in chunks:
            yield chunk
            self.add(len(chunk) // self.frame_bytes)
