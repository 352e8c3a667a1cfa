"""The synthesis stage: a processed clip for every distinct line, synthesizing only what the cache lacks."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Iterable, Iterator, MutableMapping, Sequence

from voiceguide.errors import SpeechError
from voiceguide.speech.cache import ClipCache
from voiceguide.speech.engine import Clip, Engine, VoiceSettings, _quote

# What only making speech needs (temporary folders, reading and shaping WAVs, pacing) is imported when speech is
# made: a plan whose lines are all cached reads their headers and nothing else (``voiceguide plan``'s start-up).

# --- The synthesis stage -----------------------------------------------------------


def synthesize(texts: Iterable[str], voice: VoiceSettings, engine: Engine, cache: ClipCache,
               rate: int, progress: Callable[[int, int], None] | None = None,
               into: MutableMapping[str, Clip] | None = None) -> MutableMapping[str, Clip]:
    """Return a processed clip for every distinct text, synthesizing only what the cache lacks.

    The clips go into ``into`` (default: a new dict), one at a time as each is
    processed, so a store that keeps them out of memory keeps the whole stage flat.
    ``progress(done, total)`` is called as lines become available (cached ones at once).
    A clip whose length is implausible for its text (voiceguide.speech.pacing) is
    spoken once more; if it is still implausible that is a SpeechError, and it
    is never cached.
    """
    from voiceguide.speech.pacing import pace_fault

    identity = engine.identity()
    wanted = list(dict.fromkeys(texts))
    clips: MutableMapping[str, Clip] = {} if into is None else into
    missing: list[str] = []
    for text in wanted:
        clip = cache.get(cache.key(identity, voice, rate, text))
        if clip is None:
            missing.append(text)
        else:
            clips[text] = clip
    finished: set[str] = set(clips)
    lock = threading.Lock()

    def line_done(text: str) -> None:
        with lock:  # engines call this from their worker threads
            if text in finished:  # a line spoken again is counted once
                return
            finished.add(text)
            if progress is not None:
                progress(len(finished), len(wanted))

    if progress is not None:
        progress(len(finished), len(wanted))
    faults: dict[str, str] = {}
    for _attempt in range(2):  # a second time only for clips whose length was implausible
        spoken = _speak(list(faults) or missing, voice, engine, rate, line_done)
        faults = {}
        for text, clip in spoken:
            fault = pace_fault(text, clip.samples / rate, voice, bool(getattr(engine, "paced", False)))
            if fault:
                faults[text] = fault
            else:
                cache.put(cache.key(identity, voice, rate, text), clip)
                clips[text] = clip
        if not faults:
            return clips
    text, fault = next(iter(faults.items()))
    raise SpeechError(f"speech engine fault on line {_quote(text)}: {fault}, twice")


def _speak(texts: Sequence[str], voice: VoiceSettings, engine: Engine, rate: int,
           on_done: Callable[[str], None]) -> Iterator[tuple[str, Clip]]:
    """Speak ``texts`` (nothing to do for none), then process the files one at a time: (text, clip) pairs."""
    if not texts:
        return
    from voiceguide.leftovers import temp_folder
    from voiceguide.speech.clip import process_clip, read_clip

    # The folder's name carries our pid, so a later render can tell it is abandoned should we be killed;
    # removal tolerates an engine still finishing a file after an interrupt.
    folder = temp_folder("speech")
    # An engine that shapes its own lines (speech.shaping, in its workers while the others speak) writes the
    # clips themselves; for any other the WAVs are processed here, one after another.
    shaped = getattr(engine, "synthesize_shaped", None)
    try:
        if shaped is not None:
            paths = shaped(texts, voice, folder, rate, on_done=on_done)
        else:
            paths = engine.synthesize(texts, voice, folder, on_done=on_done)
        for text in texts:
            try:
                clip = read_clip(paths[text], rate) if shaped is not None else process_clip(paths[text], rate)
            except SpeechError as exc:
                raise SpeechError(f"speech for line {_quote(text)}: {exc}") from None
            yield text, clip
    finally:
        shutil.rmtree(folder, ignore_errors=True)


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
