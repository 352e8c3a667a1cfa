"""Clips read from the cache when assembly reaches them, so a session of hours never holds all its speech.

A render used to keep every distinct line in memory (and a levelled copy of
each): peak memory grew with the unique speech. ``CachedClips`` keeps only
lengths and content digests (from the cache files' headers) and a small,
byte-bounded set of recently used clips; the rest stay on disk until needed.
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

from voiceguide.errors import SpeechError
from voiceguide.plan.blocks import Say
from voiceguide.speech.cache import ClipCache
from voiceguide.speech.engine import Clip

if TYPE_CHECKING:
    from voiceguide.audio.energies import Analysis

KEEP_BYTES = 8 << 20  # recently used clips kept in memory (lines said again soon: "Switch sides.", numbers)


class CachedClips(Mapping[Say, Clip]):
    """text -> Clip, loaded from ``cache`` on demand; ``held`` clips (tones, lines the cache could not store) stay in memory.

    ``key(text)`` is the clip's cache key and ``lengths`` every text's length in
    samples, as planned. Safe to read from several encoder threads at once.
    """

    def __init__(self, cache: ClipCache, key: Callable[[Say], str], lengths: Mapping[Say, int], rate: int,
                 held: Mapping[Say, Clip] | None = None, keep_bytes: int = KEEP_BYTES,
                 spilled: Mapping[Say, Clip] | None = None, analysis: Analysis | None = None) -> None:
        self.cache = cache
        self.key = key
        self.lengths = dict(lengths)
        self.rate = rate
        self.held = dict(held or {})
        self.spilled: Mapping[Say, Clip] = spilled if spilled is not None else {}  # read from there, not the cache
        self.keep_bytes = keep_bytes
        self._analysis = analysis  # every clip measured for levelling as it was made (MeteredClips), if it was
        self._recent: OrderedDict[Say, Clip] = OrderedDict()
        self._recent_bytes = 0
        self._lock = threading.Lock()
        # Each clip's digest once: a limited line's stored copy is looked up by it every time the line is said,
        # and a line just synthesized has no cache header to read it from (its PCM would be hashed each time).
        self._digests: dict[Say, bytes] = {}

    def __getitem__(self, text: Say) -> Clip:
        return self._read(text, keep=True)

    def read_once(self, text: Say) -> Clip:
        """A clip, not kept among the recently used ones: one read for a single use (the limiter's: the limited
        copy is what is used again), which would otherwise hold memory the recent lines need."""
        return self._read(text, keep=False)

    def _read(self, text: Say, keep: bool) -> Clip:
        if text in self.held:
            return self.held[text]
        if text in self.spilled:
            return self.spilled[text]
        if text not in self.lengths:
            raise KeyError(text)
        with self._lock:
            clip = self._recent.get(text)
            if clip is not None:
                self._recent.move_to_end(text)
                return clip
        clip = self.cache.get(self.key(text))
        if clip is None or clip.samples != self.lengths[text] or clip.rate != self.rate:
            # Removed or changed under us (a concurrent `cache clear`, a damaged file): the plan no longer holds.
            raise SpeechError(f"the cached speech for {str(text)[:60]!r} changed during the render; render again")
        if not keep:
            return clip
        with self._lock:
            if clip.samples * 2 <= self.keep_bytes // 4 and text not in self._recent:
                self._recent[text] = clip
                self._recent_bytes += len(clip.pcm)
                while self._recent_bytes > self.keep_bytes:
                    _, old = self._recent.popitem(last=False)
                    self._recent_bytes -= len(old.pcm)
        return clip

    def __iter__(self) -> Iterator[Say]:
        return iter(self.lengths.keys() | self.held.keys())

    def __len__(self) -> int:
        return len(self.lengths.keys() | self.held.keys())

    def samples(self, text: Say) -> int:
        """A clip's length without loading it."""
        return self.held[text].samples if text in self.held else self.lengths[text]

    def take_analysis(self) -> Analysis | None:
        """The clips' levelling measurements made while they were synthesized, handed over once (then let go:
        they are as large as a few per cent of the speech)."""
        analysis, self._analysis = self._analysis, None
        return analysis

    def digest(self, text: Say) -> bytes:
        """The SHA-256 of a clip's PCM, from the cache file's header when it has one (no PCM read); worked out
        once per clip."""
        found = self._digests.get(text)
        if found is None:
            if text not in self.held and text not in self.spilled:
                found = self.cache.digest(self.key(text))
            if found is None:
                found = hashlib.sha256(self[text].pcm).digest()
            self._digests[text] = found
        return found


class SpilledClips(MutableMapping[Say, Clip]):
    """Clips kept in an unnamed temporary file rather than in memory: the lines a render has just synthesized.

    They cannot simply be read back from the cache (a concurrent render may replace an entry, the cache may
    be unwritable), and held in memory they made peak memory grow with the unique speech. The file has no
    name (it is gone when closed, or if the process dies) and lives in ``folder`` (the cache's), else the
    temporary folder. If it cannot be written (a full disk), clips stay in memory and the render goes on.
    Safe to read from several encoder threads at once.
    """

    def __init__(self, folder: Path | None = None) -> None:
        self._where: dict[Say, tuple[int, int, int]] = {}  # text -> offset, bytes, sample rate
        self._memory: dict[Say, Clip] = {}  # what the file could not take
        self._end = 0
        self._lock = threading.Lock()
        try:
            # Kept open for as long as the clips are needed (no context manager): closed by close() or with us.
            self._file: IO[bytes] | None = tempfile.TemporaryFile(  # noqa: SIM115
                dir=folder if folder and folder.is_dir() else None)
        except OSError:
            self._file = None

    def __setitem__(self, text: Say, clip: Clip) -> None:
        with self._lock:
            self._where.pop(text, None)
            self._memory.pop(text, None)
            if self._file is not None:
                try:
                    self._file.seek(self._end)
                    self._file.write(clip.pcm)
                    self._file.flush()
                except OSError:
                    pass  # no room on disk: keep this one in memory
                else:
                    self._where[text] = (self._end, len(clip.pcm), clip.rate)
                    self._end += len(clip.pcm)
                    return
            self._memory[text] = clip

    def __getitem__(self, text: Say) -> Clip:
        with self._lock:
            if text in self._memory:
                return self._memory[text]
            offset, size, rate = self._where[text]
            assert self._file is not None
            self._file.seek(offset)
            pcm = self._file.read(size)
        if len(pcm) != size:
            raise SpeechError(f"the synthesized speech for {str(text)[:60]!r} could not be read back")
        return Clip(pcm, rate)

    def __delitem__(self, text: Say) -> None:
        with self._lock:
            if self._memory.pop(text, None) is None:
                del self._where[text]

    def __iter__(self) -> Iterator[Say]:
        return iter([*self._where, *self._memory])

    def __len__(self) -> int:
        return len(self._where) + len(self._memory)

    def samples(self, text: Say) -> int:
        """A clip's length in samples without reading it."""
        return self._memory[text].samples if text in self._memory else self._where[text][1] // 2

    def close(self) -> None:
        """Remove the file now (it goes anyway when this object does)."""
        if self._file is not None:
            self._file.close()


class MeteredClips(MutableMapping[Say, Clip]):
    """A store for the clips a render makes (``store``: SpilledClips) that also measures every clip of the session
    for levelling (audio.energies.ClipMeter) as the new ones come in: the K-weighting runs in ffmpeg beside the
    processing of the next line, instead of after all of it.

    ``order`` is every clip of the session in ``analysis_order``; ``other(text)`` gives a clip that is not being
    made (read from the cache, a tone generated) or None. The new clips must arrive in that order (synthesis
    stores them in the order it was given them); the others are fed in between. One out of order or missing
    (a line spoken again, a cached one gone) ends the measuring: ``finish`` then leaves ``analysis`` None, and
    levelling measures the clips itself. Close it (or finish it) so the ffmpeg never outlives an error.
    """

    def __init__(self, store: MutableMapping[Say, Clip], order: Sequence[Say], other: Callable[[Say], Clip | None],
                 rate: int) -> None:
        from voiceguide.audio.energies import ClipMeter

        self.store = store
        self.analysis: Analysis | None = None
        self._order = list(order)
        self._position = {text: i for i, text in enumerate(self._order)}
        self._other = other
        self._meter: ClipMeter | None = ClipMeter(rate)
        self._next = 0  # the position in ``order`` the meter has reached

    def __setitem__(self, text: Say, clip: Clip) -> None:
        if self._meter is not None:
            at = self._position.get(text, -1)
            if at < self._next or not self._feed_others(at):
                self.close()  # out of order: levelling will measure
            else:
                self._meter.add(text, clip)
                self._next = at + 1
        self.store[text] = clip

    def _feed_others(self, until: int) -> bool:
        """Feed the clips before position ``until`` that nobody stores here; False if one cannot be had."""
        assert self._meter is not None
        for text in self._order[self._next : until]:
            clip = self._other(text)
            if clip is None:
                return False
            self._meter.add(text, clip)
            self._next += 1
        return True

    def finish(self) -> Analysis | None:
        """Feed the rest of the session's clips and keep what was measured as ``analysis`` (None if given up)."""
        if self._meter is not None and self._feed_others(len(self._order)):
            meter, self._meter = self._meter, None
            self.analysis = meter.finish()
        self.close()
        return self.analysis

    def close(self) -> None:
        """Stop measuring (the ffmpeg is stopped if it runs)."""
        meter, self._meter = self._meter, None
        if meter is not None:
            meter.close()

    def __getitem__(self, text: Say) -> Clip:
        return self.store[text]

    def __delitem__(self, text: Say) -> None:
        del self.store[text]

    def __iter__(self) -> Iterator[Say]:
        return iter(self.store)

    def __len__(self) -> int:
        return len(self.store)


def clip_samples(clips: Mapping[Say, Clip], text: Say) -> int:
    """A clip's length in samples, without loading it when the clips are read from the cache."""
    return clips.samples(text) if isinstance(clips, CachedClips) else clips[text].samples


def clip_once(clips: Mapping[Say, Clip], text: Say) -> Clip:
    """A clip read for a single use: not kept in memory when the clips are read from the cache."""
    return clips.read_once(text) if isinstance(clips, CachedClips) else clips[text]


def clip_digest(clips: Mapping[Say, Clip], text: Say) -> bytes:
    """The SHA-256 of a clip's PCM (from the cache header when possible)."""
    return clips.digest(text) if isinstance(clips, CachedClips) else hashlib.sha256(clips[text].pcm).digest()
