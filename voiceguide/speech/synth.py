"""The synthesis stage: a processed clip for every distinct line, synthesizing only what the cache lacks."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Iterable

from voiceguide.errors import SpeechError
from voiceguide.leftovers import temp_folder
from voiceguide.speech.cache import ClipCache
from voiceguide.speech.clip import process_clip
from voiceguide.speech.engine import Clip, Engine, VoiceSettings, _quote

# --- The synthesis stage -----------------------------------------------------------


def synthesize(texts: Iterable[str], voice: VoiceSettings, engine: Engine, cache: ClipCache,
               rate: int, progress: Callable[[int, int], None] | None = None) -> dict[str, Clip]:
    """Return a processed clip for every distinct text, synthesizing only what the cache lacks.

    ``progress(done, total)`` is called as lines become available (cached ones at once).
    """
    identity = engine.identity()
    wanted = list(dict.fromkeys(texts))
    clips: dict[str, Clip] = {}
    missing: list[str] = []
    for text in wanted:
        clip = cache.get(cache.key(identity, voice, rate, text))
        if clip is None:
            missing.append(text)
        else:
            clips[text] = clip
    done = [len(clips)]
    lock = threading.Lock()

    def line_done(_text: str) -> None:
        with lock:  # engines call this from their worker threads
            done[0] += 1
            if progress is not None:
                progress(done[0], len(wanted))

    if progress is not None:
        progress(done[0], len(wanted))
    if missing:
        # The folder's name carries our pid, so a later render can tell it is abandoned should we be killed;
        # removal tolerates an engine still finishing a file after an interrupt.
        folder = temp_folder("speech")
        try:
            paths = engine.synthesize(missing, voice, folder, on_done=line_done)
            for text in missing:
                try:
                    clip = process_clip(paths[text], rate)
                except SpeechError as exc:
                    raise SpeechError(f"speech for line {_quote(text)}: {exc}") from None
                cache.put(cache.key(identity, voice, rate, text), clip)
                clips[text] = clip
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return clips


def cached_lengths(texts: Iterable[str], voice: VoiceSettings, engine: Engine, cache: ClipCache,
                   rate: int) -> dict[str, int]:
    """Lengths (in samples) of the texts already in the cache, read from headers only."""
    identity = engine.identity()
    found: dict[str, int] = {}
    for text in dict.fromkeys(texts):
        length = cache.length(cache.key(identity, voice, rate, text))
        if length is not None:
            found[text] = length
    return found
